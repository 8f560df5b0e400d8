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

#[derive(Debug, Default)]
struct Inner {
    next_seq: u64,
    responses: Vec<Observed>,
    in_flight: HashSet<String>,
    /// Method and URL of requests whose response has not been read yet.
    requests: HashMap<String, (String, String)>,
    /// Status of responses whose body is still loading.
    statuses: HashMap<String, (u16, String)>,
    last_activity: Option<Instant>,
}

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

    /// Requests of the app still waiting for their answer.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// Time since the last request started or finished (`None`: nothing seen yet).
    pub fn quiet_for(&self) -> Option<std::time::Duration> {
        self.lock().last_activity.map(|t| t.elapsed())
    }

    fn started(&self, id: &str, method: String, url: String) {
        let mut g = self.lock();
        g.in_flight.insert(id.to_owned());
        g.requests.insert(id.to_owned(), (method, url));
        g.last_activity = Some(Instant::now());
    }

    fn answered(&self, id: &str, status: u16, url: String) {
        let mut g = self.lock();
        if g.requests.contains_key(id) {
            g.statuses.insert(id.to_owned(), (status, url));
        }
    }

    fn finished(&self, id: &str, body: Option<String>, failed: bool) {
        let mut g = self.lock();
        g.in_flight.remove(id);
        g.last_activity = Some(Instant::now());
        let Some((method, request_url)) = g.requests.remove(id) else {
            return;
        };
        let (status, url) = match g.statuses.remove(id) {
            Some(s) => s,
            None if failed => (0, request_url),
            None => return,
        };
        let seq = g.next_seq;
        g.next_seq += 1;
        g.responses.push(Observed {
            seq,
            method,
            url,
            status,
            body,
        });
        if g.responses.len() > KEEP {
            let drop = g.responses.len() - KEEP;
            g.responses.drain(..drop);
        }
    }

    /// Forget requests of a document that is gone (navigation): they never finish.
    pub fn forget_in_flight(&self) {
        let mut g = self.lock();
        g.in_flight.clear();
        g.requests.clear();
        g.statuses.clear();
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
        // Ids of app requests (XHR/fetch) whose body we want.
        let mut wanted: HashSet<String> = HashSet::new();
        loop {
            tokio::select! {
                ev = sent.next() => {
                    let Some(ev) = ev else { break };
                    if is_app_request(ev.r#type.as_ref()) {
                        let id = ev.request_id.inner().clone();
                        wanted.insert(id.clone());
                        log.started(&id, ev.request.method.clone(), ev.request.url.clone());
                    }
                }
                ev = received.next() => {
                    let Some(ev) = ev else { break };
                    let id = ev.request_id.inner();
                    if wanted.contains(id) {
                        let status = u16::try_from(ev.response.status).unwrap_or(0);
                        log.answered(id, status, ev.response.url.clone());
                    }
                }
                ev = finished.next() => {
                    let Some(ev) = ev else { break };
                    let id = ev.request_id.inner().clone();
                    if wanted.remove(&id) {
                        let body = read_body(&page, ev.request_id.clone()).await;
                        log.finished(&id, body, false);
                    }
                }
                ev = failed.next() => {
                    let Some(ev) = ev else { break };
                    let id = ev.request_id.inner().clone();
                    if wanted.remove(&id) {
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
}
