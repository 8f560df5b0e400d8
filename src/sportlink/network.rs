//! What the Sportlink app itself fetched, observed through the browser (CDP Network events and
//! response bodies). The executor never builds a data request of its own: it reads the answers
//! the page's own script received (sportlink.md: "read what the app itself fetched").
//!
//! One observer per tab. It records every XHR/fetch response with its method, status and body, in
//! arrival order, and counts the requests still in flight, so the page model can tell "the app is
//! still loading" from "the page has settled".

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chromiumoxide::cdp::browser_protocol::network::{
    EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent, EventResponseReceived,
    GetResponseBodyParams, RequestId, ResourceType,
};
use chromiumoxide::Page;
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Responses kept per tab; older ones are dropped (a member page needs a handful).
const KEEP: usize = 200;
/// Bodies larger than this are not kept (member data is a few kilobytes).
const MAX_BODY: usize = 512 * 1024;

/// One answer the app received.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Position in arrival order; compare with [`NetworkLog::mark`].
    pub seq: u64,
    pub method: String,
    pub url: String,
    pub status: u16,
    /// The body as text, when it could be read (`None` for failed loads or unreadable bodies).
    pub body: Option<String>,
}

impl Observed {
    /// The URL's path (no scheme, host, query or fragment).
    pub fn path(&self) -> &str {
        path_of(&self.url)
    }

    pub fn is_read(&self) -> bool {
        self.method.eq_ignore_ascii_case("GET")
    }

    /// The body parsed as JSON (`None` when it is not JSON).
    pub fn json(&self) -> Option<serde_json::Value> {
        let body = self.body.as_deref()?.trim();
        if body.is_empty() {
            return None;
        }
        serde_json::from_str(body).ok()
    }
}

pub fn path_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let path_start = after_scheme.find('/').map_or(after_scheme.len(), |i| i);
    let path = &after_scheme[path_start..];
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

/// What is known of one request so far. CDP's events arrive on separate streams, so a request's
/// "finished" may be seen before its "sent" or "received": the record completes in any order.
#[derive(Debug, Default)]
struct Partial {
    sent: Option<(String, String)>,
    received: Option<(u16, String)>,
    /// `Some(body)` once finished (`None` inside: no readable body); `failed` for a failed load.
    finished: Option<Option<String>>,
    failed: bool,
    started: Option<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    next_seq: u64,
    responses: Vec<Observed>,
    partial: HashMap<String, Partial>,
    last_activity: Option<Instant>,
}

impl Inner {
    fn partial(&mut self, id: &str) -> &mut Partial {
        self.partial.entry(id.to_owned()).or_default()
    }

    /// Move a request to the log once it was sent and has finished (or failed).
    fn complete(&mut self, id: &str) {
        let ready = self
            .partial
            .get(id)
            .is_some_and(|p| p.sent.is_some() && (p.finished.is_some() || p.failed));
        if !ready {
            return;
        }
        let Some(p) = self.partial.remove(id) else {
            return;
        };
        let Some((method, request_url)) = p.sent else {
            return;
        };
        let (status, url) = match p.received {
            Some(r) => r,
            None => (0, request_url),
        };
        let body = if p.failed { None } else { p.finished.flatten() };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.responses.push(Observed {
            seq,
            method,
            url,
            status,
            body,
        });
        if self.responses.len() > KEEP {
            let drop = self.responses.len() - KEEP;
            self.responses.drain(..drop);
        }
    }
}

/// A request without an answer for this long no longer counts as "the app is loading".
const STALLED: std::time::Duration = std::time::Duration::from_secs(30);

/// The shared log of one tab's observed responses.
#[derive(Debug, Clone, Default)]
pub struct NetworkLog {
    inner: Arc<Mutex<Inner>>,
}

impl NetworkLog {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The sequence number the next response will get: responses with `seq >= mark` arrived
    /// after this call.
    pub fn mark(&self) -> u64 {
        self.lock().next_seq
    }

    /// Responses that arrived at or after `mark`, oldest first.
    pub fn since(&self, mark: u64) -> Vec<Observed> {
        self.lock()
            .responses
            .iter()
            .filter(|r| r.seq >= mark)
            .cloned()
            .collect()
    }

    /// Requests of the app still waiting for their answer (stalled ones not counted).
    pub fn in_flight(&self) -> usize {
        self.lock()
            .partial
            .values()
            .filter(|p| p.sent.is_some() && p.finished.is_none() && !p.failed)
            .filter(|p| p.started.is_some_and(|t| t.elapsed() < STALLED))
            .count()
    }

    /// Time since the last request started or finished (`None`: nothing seen yet).
    pub fn quiet_for(&self) -> Option<std::time::Duration> {
        self.lock().last_activity.map(|t| t.elapsed())
    }

    fn started(&self, id: &str, method: String, url: String) {
        let mut g = self.lock();
        let now = Instant::now();
        g.last_activity = Some(now);
        let p = g.partial(id);
        p.sent = Some((method, url));
        p.started = Some(now);
        g.complete(id);
    }

    fn answered(&self, id: &str, status: u16, url: String) {
        let mut g = self.lock();
        g.partial(id).received = Some((status, url));
        g.complete(id);
    }

    fn finished(&self, id: &str, body: Option<String>, failed: bool) {
        let mut g = self.lock();
        g.last_activity = Some(Instant::now());
        let p = g.partial(id);
        if failed {
            p.failed = true;
        } else {
            p.finished = Some(body);
        }
        g.complete(id);
    }

    /// A request that turned out not to be the app's: drop what was recorded of it.
    fn discard(&self, id: &str) {
        self.lock().partial.remove(id);
    }

    /// Forget requests of a document that is gone (navigation): they never finish.
    pub fn forget_in_flight(&self) {
        self.lock().partial.clear();
    }
}

fn is_app_request(kind: Option<&ResourceType>) -> bool {
    matches!(kind, Some(ResourceType::Xhr) | Some(ResourceType::Fetch))
}

/// Start observing `page`. The returned task ends when the page's event streams end.
pub async fn observe(page: &Page, log: NetworkLog) -> Result<JoinHandle<()>, String> {
    let mut sent = page
        .event_listener::<EventRequestWillBeSent>()
        .await
        .map_err(|e| e.to_string())?;
    let mut received = page
        .event_listener::<EventResponseReceived>()
        .await
        .map_err(|e| e.to_string())?;
    let mut finished = page
        .event_listener::<EventLoadingFinished>()
        .await
        .map_err(|e| e.to_string())?;
    let mut failed = page
        .event_listener::<EventLoadingFailed>()
        .await
        .map_err(|e| e.to_string())?;
    let page = page.clone();
    Ok(tokio::spawn(async move {
        // Ids of requests that are not the app's (documents, scripts, images...): ignored. An id
        // not seen at all yet may still be the app's (events of one request arrive on separate
        // streams, in any order): its body is read when it finishes, and kept only if its
        // "sent" shows an app request.
        let mut not_app: HashSet<String> = HashSet::new();
        loop {
            tokio::select! {
                biased;
                ev = sent.next() => {
                    let Some(ev) = ev else { break };
                    let id = ev.request_id.inner().clone();
                    if is_app_request(ev.r#type.as_ref()) {
                        log.started(&id, ev.request.method.clone(), ev.request.url.clone());
                    } else {
                        log.discard(&id);
                        not_app.insert(id);
                    }
                }
                ev = received.next() => {
                    let Some(ev) = ev else { break };
                    let id = ev.request_id.inner();
                    if !not_app.contains(id) && is_app_request(Some(&ev.r#type)) {
                        let status = u16::try_from(ev.response.status).unwrap_or(0);
                        log.answered(id, status, ev.response.url.clone());
                    }
                }
                ev = finished.next() => {
                    let Some(ev) = ev else { break };
                    let id = ev.request_id.inner().clone();
                    if !not_app.remove(&id) {
                        let body = read_body(&page, ev.request_id.clone()).await;
                        log.finished(&id, body, false);
                    }
                }
                ev = failed.next() => {
                    let Some(ev) = ev else { break };
                    let id = ev.request_id.inner().clone();
                    if !not_app.remove(&id) && is_app_request(Some(&ev.r#type)) {
                        log.finished(&id, None, true);
                    }
                }
            }
        }
    }))
}

async fn read_body(page: &Page, id: RequestId) -> Option<String> {
    let answer = page.execute(GetResponseBodyParams::new(id)).await.ok()?;
    let body = &answer.result;
    if body.base64_encoded {
        return None;
    }
    if body.body.len() > MAX_BODY {
        return None;
    }
    Some(body.body.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_ignore_query_and_host() {
        assert_eq!(
            path_of("http://127.0.0.1:9/member/persondata/MemberCommunication?personId=X&a=b"),
            "/member/persondata/MemberCommunication"
        );
        assert_eq!(path_of("/a/b#c"), "/a/b");
        assert_eq!(path_of("https://h"), "");
    }

    #[test]
    fn the_log_orders_answers_and_counts_requests_in_flight() {
        let log = NetworkLog::default();
        let mark = log.mark();
        log.started("1", "GET".into(), "http://h/a?x=1".into());
        log.started("2", "POST".into(), "http://h/b".into());
        assert_eq!(log.in_flight(), 2);
        log.answered("1", 200, "http://h/a?x=1".into());
        log.finished("1", Some("{\"k\":1}".into()), false);
        log.finished("2", None, true);
        assert_eq!(log.in_flight(), 0);
        let seen = log.since(mark);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].path(), "/a");
        assert_eq!(seen[0].json(), Some(serde_json::json!({"k": 1})));
        assert_eq!(seen[1].status, 0);
        assert!(!seen[1].is_read());
        assert!(log.since(log.mark()).is_empty());
    }

    #[test]
    fn events_of_one_request_complete_it_in_any_order() {
        // CDP's events come on separate streams: "finished" may be handled before "sent".
        let log = NetworkLog::default();
        log.finished("7", Some("{}".into()), false);
        log.answered("7", 204, "http://h/x".into());
        assert_eq!(log.in_flight(), 0);
        assert!(log.since(0).is_empty(), "not complete without its request");
        log.started("7", "GET".into(), "http://h/x".into());
        assert_eq!(log.in_flight(), 0, "never counted as loading");
        let seen = log.since(0);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].status, 204);
        // A request that turns out not to be the app's leaves nothing behind.
        log.finished("8", None, false);
        log.discard("8");
        assert_eq!(log.since(0).len(), 1);
    }
}
