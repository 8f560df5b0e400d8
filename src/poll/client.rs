//! The Rondo Club REST client: application password over HTTP Basic, the identity check, paging
//! through `/wp/v2/people`, and retries (429 and 5xx with `Retry-After`, timeouts, truncated JSON).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::config::{PollSettings, RondoClubSettings};

/// The longest `Retry-After` honoured; a server asking for more is treated as down for this run.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const PEOPLE_FIELDS: &str = "id,modified_gmt,acf";

#[derive(Debug, thiserror::Error)]
pub enum RondoError {
    #[error(
        "Rondo Club did not accept the application password of user {user:?} \
         (GET /wp-json/wp/v2/users/me answered {status} {code}); check rondo_club.username and \
         rondo_club.application_password"
    )]
    Unauthorized {
        user: String,
        status: u16,
        code: String,
    },
    #[error(
        "Rondo Club says the application password belongs to user {actual:?}, not to the \
         configured rondo_club.username {expected:?}"
    )]
    WrongUser { expected: String, actual: String },
    #[error("GET {path}: Rondo Club answered {status} {code}: {message}")]
    Status {
        path: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("GET {path}: gave up after {attempts} attempts; last: {last}")]
    Exhausted {
        path: String,
        attempts: u32,
        last: String,
    },
    #[error("GET {path}: the answer is not what the REST API sends: {detail}")]
    Malformed { path: String, detail: String },
    #[error("person {0} does not exist in Rondo Club (404)")]
    PersonNotFound(i64),
    #[error("rondo_club.base_url {0:?} is not a usable URL")]
    BadBaseUrl(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// How often and how patiently a request is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First backoff; doubles per attempt.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    pub fn from_settings(poll: &PollSettings) -> Self {
        Self {
            max_attempts: poll.max_retries.max(1),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Who the application password belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: i64,
    pub username: String,
}

/// One page of `/wp/v2/people`, raw person objects (parsed by detection, one at a time).
#[derive(Debug)]
pub struct PeoplePage {
    pub people: Vec<Value>,
    pub total: Option<u64>,
    pub total_pages: Option<u32>,
}

#[derive(Clone)]
pub struct RondoClient {
    http: reqwest::Client,
    base: Url,
    username: String,
    password: crate::config::Secret,
    per_page: u32,
    retry: RetryPolicy,
}

impl std::fmt::Debug for RondoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RondoClient")
            .field("base", &self.base.as_str())
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What an attempt came to: an answer, or a reason to try again.
enum Attempt<T> {
    Done(T),
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
}

impl RondoClient {
    pub fn new(rondo: &RondoClubSettings, poll: &PollSettings) -> Result<Self, RondoError> {
        Self::with_retry(rondo, poll.per_page, RetryPolicy::from_settings(poll))
    }

    pub fn with_retry(
        rondo: &RondoClubSettings,
        per_page: u32,
        retry: RetryPolicy,
    ) -> Result<Self, RondoError> {
        let mut base = Url::parse(rondo.base_url.trim_end_matches('/'))
            .map_err(|_| RondoError::BadBaseUrl(rondo.base_url.clone()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(RondoError::BadBaseUrl(rondo.base_url.clone()));
        }
        // Credentials go in the Authorization header only, never in a URL that errors may print.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(rondo.timeout_secs.max(1)))
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("rondo-reverse-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RondoError::Client(e.to_string()))?;
        Ok(Self {
            http,
            base,
            username: rondo.username.clone(),
            password: rondo.application_password.clone(),
            per_page: per_page.clamp(1, 100),
            retry,
        })
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn per_page(&self) -> u32 {
        self.per_page
    }

    /// `GET /wp-json/wp/v2/users/me`: the identity behind the application password. WordPress
    /// treats a wrong application password as anonymous, which this turns into a loud error.
    pub async fn whoami(&self) -> Result<Identity, RondoError> {
        let path = "/wp-json/wp/v2/users/me";
        let query = [("context", "edit"), ("_fields", "id,username,slug,email")];
        let me = match self.get_json(path, &query).await {
            Ok((value, _)) => value,
            Err(RondoError::Status { status, code, .. }) if status == 401 || status == 403 => {
                return Err(RondoError::Unauthorized {
                    user: self.username.clone(),
                    status,
                    code,
                })
            }
            Err(e) => return Err(e),
        };
        let text = |key: &str| me.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
        let id = me.get("id").and_then(Value::as_i64).unwrap_or(0);
        let username = text("username");
        if id <= 0 {
            return Err(RondoError::Malformed {
                path: path.into(),
                detail: "no user id in the answer".into(),
            });
        }
        let configured = self.username.trim();
        // WordPress accepts the login or the e-mail address as the user of an application password.
        let ours = [&username, &text("email"), &text("slug")]
            .iter()
            .any(|name| !name.is_empty() && name.eq_ignore_ascii_case(configured));
        if !ours {
            return Err(RondoError::WrongUser {
                expected: configured.to_owned(),
                actual: if username.is_empty() {
                    text("slug")
                } else {
                    username
                },
            });
        }
        Ok(Identity { id, username })
    }

    /// One page of people, by post id. `Ok(None)` when `page` is past the end
    /// (WordPress answers 400 `rest_post_invalid_page_number` rather than an empty list).
    pub async fn people_page(
        &self,
        modified_after: Option<DateTime<Utc>>,
        page: u32,
    ) -> Result<Option<PeoplePage>, RondoError> {
        let path = "/wp-json/wp/v2/people";
        let mut query: Vec<(&str, String)> = Vec::with_capacity(7);
        if let Some(after) = modified_after {
            query.push(("modified_after", wp_timestamp(after)));
        }
        query.push(("per_page", self.per_page.to_string()));
        query.push(("page", page.max(1).to_string()));
        query.push(("_fields", PEOPLE_FIELDS.into()));
        // By id, not by modified: MySQL orders ties in `post_modified` differently from one
        // LIMIT/OFFSET query to the next, and the forward sync saves many people within one
        // second, so `orderby=modified` pages overlap and skip people (seen on a real WordPress:
        // 18 of 250). Ids are unique and an edit does not move a person to another page.
        query.push(("orderby", "id".into()));
        query.push(("order", "asc".into()));
        let (value, headers) = match self.get_json(path, &query).await {
            Ok(answer) => answer,
            Err(RondoError::Status {
                status: 400, code, ..
            }) if code == "rest_post_invalid_page_number" => return Ok(None),
            Err(e) => return Err(e),
        };
        let Value::Array(people) = value else {
            return Err(RondoError::Malformed {
                path: path.into(),
                detail: "expected a JSON array of people".into(),
            });
        };
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Ok(Some(PeoplePage {
            people,
            total: header("x-wp-total"),
            total_pages: header("x-wp-totalpages").map(|n| n.min(u32::MAX as u64) as u32),
        }))
    }

    /// `GET /wp-json/wp/v2/people/{id}`.
    pub async fn person(&self, wp_post_id: i64) -> Result<Value, RondoError> {
        let path = format!("/wp-json/wp/v2/people/{wp_post_id}");
        match self.get_json(&path, &[("_fields", PEOPLE_FIELDS)]).await {
            Ok((value, _)) if value.is_object() => Ok(value),
            Ok(_) => Err(RondoError::Malformed {
                path,
                detail: "expected a JSON object".into(),
            }),
            Err(RondoError::Status { status: 404, .. }) => {
                Err(RondoError::PersonNotFound(wp_post_id))
            }
            Err(e) => Err(e),
        }
    }

    /// GET with retries. Non-retryable answers come back as [`RondoError::Status`].
    async fn get_json<Q: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<(Value, HeaderMap), RondoError> {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}{}",
            self.base.path().trim_end_matches('/'),
            path
        ));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.attempt(&url, path, query).await?;
            let (reason, wait) = match outcome {
                Attempt::Done(answer) => return Ok(answer),
                Attempt::Retry { reason, wait } => (reason, wait),
            };
            if attempt >= self.retry.max_attempts {
                return Err(RondoError::Exhausted {
                    path: path.into(),
                    attempts: attempt,
                    last: reason,
                });
            }
            let delay = wait.unwrap_or_else(|| self.retry.backoff(attempt));
            tracing::warn!(path, attempt, delay_ms = delay.as_millis() as u64, %reason, "retrying a Rondo Club request");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt<Q: serde::Serialize + ?Sized>(
        &self,
        url: &Url,
        path: &str,
        query: &Q,
    ) -> Result<Attempt<(Value, HeaderMap)>, RondoError> {
        let sent = self
            .http
            .get(url.clone())
            .query(query)
            .basic_auth(&self.username, Some(self.password.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Ok(Attempt::Retry {
                    reason: transport_reason(&e),
                    wait: None,
                })
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Ok(Attempt::Retry {
                    reason: transport_reason(&e),
                    wait: None,
                })
            }
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let wait = retry_after(&headers).map(|d| d.min(MAX_RETRY_AFTER));
            return Ok(Attempt::Retry {
                reason: format!("{status}"),
                wait,
            });
        }
        if !status.is_success() {
            let (code, message) = wp_error(&body);
            return Err(RondoError::Status {
                path: path.into(),
                status: status.as_u16(),
                code,
                message,
            });
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) => Ok(Attempt::Done((value, headers))),
            // A proxy that cut the body short looks like this; the next attempt may be whole.
            Err(e) => Ok(Attempt::Retry {
                reason: format!("malformed JSON ({} bytes): {e}", body.len()),
                wait: None,
            }),
        }
    }
}

/// UTC with `Z`: WordPress reads a zone-less `modified_after` as the site's local time.
pub fn wp_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn transport_reason(e: &reqwest::Error) -> String {
    // Without the URL: it is ours and the message repeats it.
    let text = e.without_url_ref();
    if e.is_timeout() {
        format!("timed out ({text})")
    } else if e.is_connect() {
        format!("cannot connect ({text})")
    } else {
        text
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        use std::error::Error as _;
        let mut text = String::new();
        let mut source = self.source();
        while let Some(s) = source {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&s.to_string());
            source = s.source();
        }
        if text.is_empty() {
            text = if self.is_timeout() {
                "operation timed out".into()
            } else {
                "request failed".into()
            };
        }
        text
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(raw).ok()?.with_timezone(&Utc);
    Some((at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// WordPress's error body: `{"code": "...", "message": "...", "data": {"status": N}}`.
fn wp_error(body: &[u8]) -> (String, String) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |key: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .map(|s| s.chars().take(200).collect::<String>())
    };
    (
        field("code").unwrap_or_else(|| "(no code)".into()),
        field("message").unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_sent_in_utc_with_z() {
        let t = DateTime::parse_from_rfc3339("2026-11-26T12:30:20+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(wp_timestamp(t), "2026-11-26T11:30:20Z");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(250));
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn wordpress_error_bodies_are_read() {
        let (code, msg) = wp_error(br#"{"code":"rest_post_invalid_page_number","message":"The page number requested is larger than the number of pages available.","data":{"status":400}}"#);
        assert_eq!(code, "rest_post_invalid_page_number");
        assert!(msg.starts_with("The page number"));
        assert_eq!(wp_error(b"<html>").0, "(no code)");
    }
}
