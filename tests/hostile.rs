//! Hostile input against the real router, a bounded randomized fuzz of signature-header and
//! payload parsing, and a check that distinctive secrets never leak.
//!
//! `corpus`: every request gets the status the interface promises, nothing is recorded for a
//! request that was not verified (a verified but malformed body is recorded as `rejected`, as the
//! audit trail wants, and creates no change), nothing panics, and the service still works after.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::config::{Secret, Settings};
use rondo_reverse_sync::startup;
use rondo_reverse_sync::store::Store;
use rondo_reverse_sync::webhook::WebhookSecret;
use rrs_standins::loadgen;
use rrs_testkit::service::TestService;

use rrs_testkit::signing;

const SECRET: &str = "whsec_SE9TVElMRS1URVNULUtFWS1ET05PVC1MRUFLLTAxMjM0NTY3";
const OTHER_SECRET: &str = "whsec_b3RoZXIgc2VjcmV0IG9mIHNvbWVib2R5IGVsc2U=";

struct App {
    port: u16,
    store: Store,
    service: Option<TestService>,
    dir: TempDir,
    secret: WebhookSecret,
}

impl App {
    async fn start(settings_for: impl FnOnce(&mut Settings)) -> App {
        rrs_testkit::logs::capture();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::default();
        settings.database.path = dir.path().join("hostile.sqlite3");
        settings.webhook.secret = Secret::new(SECRET);
        settings_for(&mut settings);
        // The database is created as `migrate` does; the service starts as `serve` does.
        let service = TestService::start(&settings, 0)
            .await
            .expect("the service starts");
        App {
            port: service.port,
            store: service.store.clone(),
            service: Some(service),
            dir,
            secret: WebhookSecret::parse(settings.webhook.secret.expose()).expect("secret"),
        }
    }

    async fn stop(mut self) {
        if let Some(service) = self.service.take() {
            service.stop().await.expect("the service stops cleanly");
        }
    }

    async fn delivery_count(&self) -> u64 {
        self.store
            .read(|db| db.delivery_count())
            .await
            .expect("count")
    }

    async fn outcome(&self, id: &str) -> Option<String> {
        let id = id.to_owned();
        self.store
            .read(move |db| db.delivery(&id))
            .await
            .expect("delivery")
            .map(|d| d.outcome.to_string())
    }

    async fn change_total(&self) -> u64 {
        let counts = self
            .store
            .read(|db| db.change_counts())
            .await
            .expect("counts");
        let v = serde_json::to_value(counts).expect("counts as json");
        v.as_object()
            .expect("object")
            .values()
            .filter_map(Value::as_u64)
            .sum()
    }
}

/// One raw HTTP/1.1 exchange; the status (0 if the server closed without answering) and body.
async fn raw(port: u16, request: &[u8]) -> (u16, String) {
    exchange(port, request, None).await
}

async fn exchange(port: u16, request: &[u8], trickle: Option<Duration>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    match trickle {
        None => {
            // The server may answer (and close) before reading everything, e.g. on a 413.
            let _ = stream.write_all(request).await;
        }
        Some(pause) => {
            let head_end = find(request, b"\r\n\r\n").expect("head") + 4;
            let _ = stream.write_all(&request[..head_end]).await;
            let mut buf = [0u8; 256];
            for byte in &request[head_end..] {
                // Stop as soon as the server has answered.
                if let Ok(Ok(n)) = tokio::time::timeout(pause, stream.read(&mut buf)).await {
                    return parse_response(&buf[..n]);
                }
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
            }
        }
    }
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response))
        .await
        .expect("the server answers within 20 s");
    parse_response(&response)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_response(response: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(response);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A request, with `Content-Length` unless `headers` name one (or `Transfer-Encoding`).
fn request(method: &str, path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n")
        .into_bytes();
    let framed = headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
    });
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !framed {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn now() -> i64 {
    Utc::now().timestamp()
}

fn valid_body(member: u64, edit: u64) -> Vec<u8> {
    loadgen::person_updated_body(member, edit).0
}

/// A correctly signed POST to the webhook, with extra headers.
fn signed(secret: &WebhookSecret, id: &str, body: &[u8], extra: &[(&str, &[u8])]) -> Vec<u8> {
    let ts = now();
    let sig = secret.sign(id, ts, body);
    let ts = ts.to_string();
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("content-type", b"application/json"),
        ("webhook-id", id.as_bytes()),
        ("webhook-timestamp", ts.as_bytes()),
        ("webhook-signature", sig.as_bytes()),
    ];
    headers.extend_from_slice(extra);
    request("POST", "/webhooks/rondo-club", &headers, body)
}

/// POST with the given webhook headers and body (nothing computed).
fn webhook(id: &str, ts: &str, sig: &str, body: &[u8]) -> Vec<u8> {
    request(
        "POST",
        "/webhooks/rondo-club",
        &[
            ("content-type", b"application/json"),
            ("webhook-id", id.as_bytes()),
            ("webhook-timestamp", ts.as_bytes()),
            ("webhook-signature", sig.as_bytes()),
        ],
        body,
    )
}

/// What a case must come to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stored {
    /// No row at all.
    Nothing,
    /// A row under this webhook id with this outcome.
    Row(&'static str),
}

struct Case {
    name: String,
    request: Vec<u8>,
    status: u16,
    id: String,
    stored: Stored,
    /// Whether new changes may appear.
    changes: bool,
}

fn event(data: Value) -> Vec<u8> {
    json!({"type": "person.updated", "timestamp": "2026-11-26T12:00:00Z", "data": data})
        .to_string()
        .into_bytes()
}

fn person(acf: Value) -> Value {
    json!({"id": 77, "modified_gmt": "2026-11-26T11:00:00", "origin": "user_edit",
           "user": "vrijwilliger", "acf": acf})
}

/// Case `index` of the corpus, built (and so timed) now: each case is sent with a timestamp
/// read just before it, however long the cases before it took.
fn fresh_case(secret: &WebhookSecret, index: usize) -> Case {
    corpus(secret).swap_remove(index)
}

fn corpus(secret: &WebhookSecret) -> Vec<Case> {
    let other = WebhookSecret::parse(OTHER_SECRET).expect("other secret");
    let body = valid_body(1, 1);
    let ts = now();
    let good_sig = |id: &str| secret.sign(id, ts, &body);
    let mut cases = Vec::new();
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("msg_hostile_{n:03}")
    };

    // Not verified: 401, nothing stored.
    let mut unverified = |name: &str, request: Vec<u8>, id: String| {
        cases.push(Case {
            name: name.into(),
            request,
            status: 401,
            id,
            stored: Stored::Nothing,
            changes: false,
        })
    };
    let i = id();
    unverified(
        "no webhook headers",
        request("POST", "/webhooks/rondo-club", &[], &body),
        i,
    );
    let i = id();
    unverified(
        "missing webhook-id",
        request(
            "POST",
            "/webhooks/rondo-club",
            &[
                ("webhook-timestamp", ts.to_string().as_bytes()),
                ("webhook-signature", good_sig("").as_bytes()),
            ],
            &body,
        ),
        i,
    );
    let i = id();
    unverified(
        "missing webhook-timestamp",
        request(
            "POST",
            "/webhooks/rondo-club",
            &[
                ("webhook-id", i.as_bytes()),
                ("webhook-signature", good_sig(&i).as_bytes()),
            ],
            &body,
        ),
        i,
    );
    let i = id();
    unverified(
        "missing webhook-signature",
        request(
            "POST",
            "/webhooks/rondo-club",
            &[
                ("webhook-id", i.as_bytes()),
                ("webhook-timestamp", ts.to_string().as_bytes()),
            ],
            &body,
        ),
        i,
    );
    let i = id();
    unverified(
        "forged signature (random MAC)",
        webhook(
            &i,
            &ts.to_string(),
            "v1,3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            &body,
        ),
        i,
    );
    let i = id();
    let by_other = other.sign(&i, ts, &body);
    unverified(
        "signed with another secret",
        webhook(&i, &ts.to_string(), &by_other, &body),
        i,
    );
    let i = id();
    let sig = good_sig(&i);
    unverified(
        "truncated signature",
        webhook(&i, &ts.to_string(), &sig[..sig.len() - 10], &body),
        i,
    );
    let i = id();
    let sig = good_sig(&i);
    unverified(
        "signature cut to its version",
        webhook(&i, &ts.to_string(), "v1,", &body),
        i,
    );
    let _ = sig;
    let i = id();
    let sig = good_sig(&i).replacen("v1,", "v2,", 1);
    unverified(
        "right MAC under an unknown version",
        webhook(&i, &ts.to_string(), &sig, &body),
        i,
    );
    let i = id();
    unverified(
        "signature not base64",
        webhook(&i, &ts.to_string(), "v1,***not base64***", &body),
        i,
    );
    let i = id();
    unverified(
        "empty signature",
        webhook(&i, &ts.to_string(), "", &body),
        i,
    );
    let i = id();
    let sig = good_sig(&i);
    let mut tampered = body.clone();
    let at = find(&tampered, b"lid1.").expect("email in body");
    tampered[at] = b'L';
    unverified(
        "body changed after signing",
        webhook(&i, &ts.to_string(), &sig, &tampered),
        i,
    );
    let i = id();
    unverified(
        "signature of another id",
        webhook(&i, &ts.to_string(), &good_sig("msg_someone_else"), &body),
        i,
    );
    let i = id();
    unverified(
        "signature of another timestamp",
        webhook(&i, &(ts + 1).to_string(), &good_sig(&i), &body),
        i,
    );
    // Far outside the tolerance, from the shared builder (webhook.rs uses it too).
    for k in 0..2 {
        let i = id();
        let (name, timestamp, signature) =
            signing::outside_tolerance(secret, &i, &body).swap_remove(k);
        unverified(
            name,
            webhook(&i, &timestamp.to_string(), &signature, &body),
            i,
        );
    }
    let i = id();
    unverified(
        "timestamp zero",
        webhook(&i, "0", &secret.sign(&i, 0, &body), &body),
        i,
    );
    let i = id();
    unverified(
        "negative timestamp",
        webhook(&i, "-5", &good_sig(&i), &body),
        i,
    );
    let i = id();
    unverified(
        "timestamp not a number",
        webhook(&i, "yesterday", &good_sig(&i), &body),
        i,
    );
    let i = id();
    unverified(
        "timestamp overflowing i64",
        webhook(&i, "99999999999999999999999", &good_sig(&i), &body),
        i,
    );
    let i = id();
    unverified(
        "fractional timestamp",
        webhook(&i, &format!("{ts}.5"), &good_sig(&i), &body),
        i,
    );
    let i = id();
    let millis = ts * 1000;
    unverified(
        "timestamp in milliseconds",
        webhook(
            &i,
            &millis.to_string(),
            &secret.sign(&i, millis, &body),
            &body,
        ),
        i,
    );
    let long_id = format!("msg_{}", "x".repeat(300));
    unverified(
        "webhook-id of 304 characters, correctly signed",
        webhook(&long_id, &ts.to_string(), &good_sig(&long_id), &body),
        long_id.clone(),
    );
    let spaced = "msg with spaces".to_owned();
    unverified(
        "webhook-id with spaces, correctly signed",
        webhook(&spaced, &ts.to_string(), &good_sig(&spaced), &body),
        spaced.clone(),
    );
    let i = id();
    let mut latin1 = i.clone().into_bytes();
    latin1.push(0xE9);
    unverified(
        "webhook-id with a non-UTF-8 byte",
        request(
            "POST",
            "/webhooks/rondo-club",
            &[
                ("webhook-id", &latin1),
                ("webhook-timestamp", ts.to_string().as_bytes()),
                ("webhook-signature", good_sig(&i).as_bytes()),
            ],
            &body,
        ),
        i,
    );
    for (header, name) in [
        ("webhook-id", "webhook-id given twice"),
        ("webhook-timestamp", "webhook-timestamp given twice"),
        ("webhook-signature", "webhook-signature given twice"),
    ] {
        let i = id();
        let value = match header {
            "webhook-id" => "msg_the_other_one".to_owned(),
            "webhook-timestamp" => (ts - 100).to_string(),
            _ => good_sig(&i),
        };
        unverified(
            name,
            signed(secret, &i, &body, &[(header, value.as_bytes())]),
            i,
        );
    }
    let i = id();
    let forged_first = request(
        "POST",
        "/webhooks/rondo-club",
        &[
            ("webhook-id", i.as_bytes()),
            ("webhook-timestamp", ts.to_string().as_bytes()),
            ("webhook-signature", b"v1,AAAA"),
            ("webhook-signature", good_sig(&i).as_bytes()),
        ],
        &body,
    );
    unverified(
        "forged signature header before a valid one",
        forged_first,
        i,
    );
    let i = id();
    unverified(
        "unsigned form post",
        request(
            "POST",
            "/webhooks/rondo-club",
            &[("content-type", b"application/x-www-form-urlencoded")],
            b"type=person.updated&data=1",
        ),
        i,
    );
    let i = id();
    unverified(
        "URL-encoded CRLF appended to a signed id",
        webhook(&format!("{i}%0d%0a"), &ts.to_string(), &good_sig(&i), &body),
        i.clone(),
    );

    // Malformed HTTP, rejected by the HTTP layer (400) or the size check (413): nothing stored.
    let mut framing = |name: &str, request: Vec<u8>, status: u16, id: String| {
        cases.push(Case {
            name: name.into(),
            request,
            status,
            id,
            stored: Stored::Nothing,
            changes: false,
        })
    };
    let i = id();
    framing(
        "declared Content-Length over the limit",
        signed(secret, &i, &body, &[("content-length", b"2097152")]),
        413,
        i,
    );
    let i = id();
    let huge = {
        let filler = "x".repeat(2 * 1024 * 1024);
        event(person(json!({"knvb-id": "HUGE001", "notes": filler})))
    };
    framing("2 MiB signed JSON", signed(secret, &i, &huge, &[]), 413, i);
    let i = id();
    let mut chunked = Vec::new();
    for chunk in huge.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    framing(
        "2 MiB chunked body without Content-Length",
        {
            let ts = now();
            let sig = secret.sign(&i, ts, &huge);
            request(
                "POST",
                "/webhooks/rondo-club",
                &[
                    ("transfer-encoding", b"chunked"),
                    ("webhook-id", i.as_bytes()),
                    ("webhook-timestamp", ts.to_string().as_bytes()),
                    ("webhook-signature", sig.as_bytes()),
                ],
                &chunked,
            )
        },
        413,
        i,
    );
    let i = id();
    framing(
        "Content-Length not a number",
        signed(secret, &i, &body, &[("content-length", b"lots")]),
        400,
        i,
    );
    let i = id();
    framing(
        "negative Content-Length",
        signed(secret, &i, &body, &[("content-length", b"-1")]),
        400,
        i,
    );
    let i = id();
    framing(
        "Content-Length and Transfer-Encoding together",
        signed(
            secret,
            &i,
            &body,
            &[("content-length", b"5"), ("transfer-encoding", b"chunked")],
        ),
        400,
        i,
    );
    let i = id();
    let folded = request(
        "POST",
        "/webhooks/rondo-club",
        &[
            ("webhook-id", i.as_bytes()),
            ("webhook-timestamp", ts.to_string().as_bytes()),
            (
                "webhook-signature",
                format!("v1,AAAA\r\n {}", good_sig(&i)).as_bytes(),
            ),
        ],
        &body,
    );
    framing("obsolete line folding in a header", folded, 400, i);
    let i = id();
    let short = {
        let mut r = signed(secret, &i, &body, &[]);
        let at = find(&r, b"content-length: ").expect("length") + 16;
        let end = at + find(&r[at..], b"\r\n").expect("eol");
        r.splice(at..end, (body.len() / 2).to_string().into_bytes());
        r
    };
    framing("Content-Length shorter than the body", short, 401, i);

    // Verified but not an event we understand: 400 with a reason, recorded as rejected, no change.
    let mut malformed = |name: &str, body: Vec<u8>| {
        let i = id();
        cases.push(Case {
            name: name.into(),
            request: signed(secret, &i, &body, &[]),
            status: 400,
            id: i,
            stored: Stored::Row("rejected"),
            changes: false,
        });
    };
    malformed("empty body", Vec::new());
    malformed("truncated JSON", body[..body.len() / 2].to_vec());
    malformed("invalid UTF-8 in the body", {
        let mut b = body.clone();
        let at = find(&b, b"Jan").expect("name");
        b[at] = 0xFF;
        b
    });
    malformed("byte order mark before the JSON", {
        let mut b = vec![0xEF, 0xBB, 0xBF];
        b.extend_from_slice(&body);
        b
    });
    malformed(
        "100 000 nested arrays",
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
    );
    malformed("acf nested 200 levels deep", {
        let mut v = json!("deep");
        for _ in 0..200 {
            v = json!({ "a": v });
        }
        event(person(json!({"knvb-id": "DEEP001", "nest": v})))
    });
    malformed("a JSON array", b"[1,2,3]".to_vec());
    malformed("a JSON string", b"\"person.updated\"".to_vec());
    malformed("JSON null", b"null".to_vec());
    malformed(
        "no type",
        json!({"data": person(json!({"knvb-id": "T0001"}))})
            .to_string()
            .into_bytes(),
    );
    malformed(
        "type is a number",
        json!({"type": 7, "data": person(json!({}))})
            .to_string()
            .into_bytes(),
    );
    malformed(
        "person.updated without data",
        json!({"type": "person.updated"}).to_string().into_bytes(),
    );
    malformed("data is a string", event(json!("person")));
    malformed("data without id", {
        let mut p = person(json!({"knvb-id": "T0002"}));
        p.as_object_mut().expect("object").remove("id");
        event(p)
    });
    malformed("negative post id", {
        let mut p = person(json!({"knvb-id": "T0003"}));
        p["id"] = json!(-4);
        event(p)
    });
    malformed("post id as a string", {
        let mut p = person(json!({"knvb-id": "T0004"}));
        p["id"] = json!("77");
        event(p)
    });
    malformed("post id beyond u64", {
        let text = event(person(json!({"knvb-id": "T0005"})));
        String::from_utf8(text)
            .expect("utf8")
            .replace("\"id\":77", "\"id\":184467440737095516150")
            .into_bytes()
    });
    malformed("data without origin", {
        let mut p = person(json!({"knvb-id": "T0006"}));
        p.as_object_mut().expect("object").remove("origin");
        event(p)
    });
    malformed("unknown origin", {
        let mut p = person(json!({"knvb-id": "T0007"}));
        p["origin"] = json!("hacker");
        event(p)
    });
    malformed("origin claiming this service's own write", {
        let mut p = person(json!({"knvb-id": "T0008"}));
        p["origin"] = json!("sync_rondo_club_to_sportlink");
        event(p)
    });
    malformed("acf is a string", {
        let mut p = person(json!({}));
        p["acf"] = json!("knvb-id=T0009");
        event(p)
    });
    malformed("modified_gmt not a date", {
        let mut p = person(json!({"knvb-id": "T0010", "email_1": "x@example.nl"}));
        p["modified_gmt"] = json!("yesterday at noon");
        event(p)
    });
    malformed("origin is a number", {
        let mut p = person(json!({"knvb-id": "T0011"}));
        p["origin"] = json!(1);
        event(p)
    });

    // Verified, understood, but nothing to do: 2xx, recorded, no change.
    let mut harmless =
        |name: &str, body: Vec<u8>, outcome: &'static str, extra: &[(&str, &[u8])]| {
            let i = id();
            cases.push(Case {
                name: name.into(),
                request: signed(secret, &i, &body, extra),
                status: 200,
                id: i,
                stored: Stored::Row(outcome),
                changes: false,
            });
        };
    harmless(
        "unknown event type",
        json!({"type": "person.exploded", "data": {}})
            .to_string()
            .into_bytes(),
        "ignored",
        &[],
    );
    harmless(
        "empty event type",
        json!({"type": ""}).to_string().into_bytes(),
        "ignored",
        &[],
    );
    harmless(
        "knvb-id with markup (not a member)",
        event(person(json!({"knvb-id": "<script>alert(1)</script>"}))),
        "processed",
        &[],
    );
    harmless(
        "30 000 untracked keys",
        event(person(
            (0..30_000)
                .map(|k| (format!("extra_{k}"), json!(k)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        )),
        "processed",
        &[],
    );
    // The signature covers the bytes; the declared type of a verified body does not matter.
    harmless(
        "valid delivery labelled text/plain",
        valid_body(2, 1),
        "processed",
        &[("content-type", b"text/plain")],
    );

    // Method and path.
    let i = id();
    cases.push(Case {
        name: "GET on the webhook".into(),
        request: request("GET", "/webhooks/rondo-club", &[], b""),
        status: 405,
        id: i,
        stored: Stored::Nothing,
        changes: false,
    });
    let i = id();
    cases.push(Case {
        name: "PUT on the webhook, correctly signed".into(),
        request: {
            let mut r = signed(secret, &i, &body, &[]);
            r.splice(0..4, b"PUT".iter().copied());
            r
        },
        status: 405,
        id: i,
        stored: Stored::Nothing,
        changes: false,
    });
    let i = id();
    cases.push(Case {
        name: "trailing slash".into(),
        request: {
            let mut r = signed(secret, &i, &body, &[]);
            let at = find(&r, b" HTTP/1.1").expect("request line");
            r.insert(at, b'/');
            r
        },
        status: 404,
        id: i,
        stored: Stored::Nothing,
        changes: false,
    });
    cases
}

#[tokio::test]
async fn the_corpus_gets_the_right_answers_and_stores_nothing_it_should_not() {
    let app = App::start(|_| {}).await;
    let count = corpus(&app.secret).len();
    assert!(count >= 50, "only {count} cases");

    let mut failures = Vec::new();
    for index in 0..count {
        let case = fresh_case(&app.secret, index);
        let rows_before = app.delivery_count().await;
        let changes_before = app.change_total().await;
        let (status, body) = raw(app.port, &case.request).await;
        let rows_after = app.delivery_count().await;
        let changes_after = app.change_total().await;
        let outcome = app.outcome(&case.id).await;
        let mut wrong = Vec::new();
        if status != case.status {
            wrong.push(format!("status {status}, want {}", case.status));
        }
        // Our own answers explain themselves; the HTTP layer's 400s for broken framing have no
        // body to speak of.
        if (400..500).contains(&status)
            && !body.is_empty()
            && serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .is_none_or(|reason| reason.is_empty())
        {
            wrong.push(format!("4xx without a reason: {body:?}"));
        }
        match case.stored {
            Stored::Nothing => {
                if rows_after != rows_before || outcome.is_some() {
                    wrong.push(format!("stored a row ({rows_before} → {rows_after})"));
                }
            }
            Stored::Row(want) => {
                if rows_after != rows_before + 1 || outcome.as_deref() != Some(want) {
                    wrong.push(format!(
                        "want one {want} row, got {outcome:?} ({rows_before} → {rows_after})"
                    ));
                }
            }
        }
        if !case.changes && changes_after != changes_before {
            wrong.push(format!("changes {changes_before} → {changes_after}"));
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", case.name, wrong.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        count,
        failures.join("\n")
    );

    still_healthy(&app).await;
    app.stop().await;
}

/// Replays: the same id again (even with another correctly signed body) does nothing twice.
#[tokio::test]
async fn replayed_ids_are_acknowledged_and_do_nothing() {
    let app = App::start(|_| {}).await;
    let first = signed(&app.secret, "msg_replay_1", &valid_body(3, 1), &[]);
    assert_eq!(raw(app.port, &first).await.0, 200);
    let rows = app.delivery_count().await;
    let changes = app.change_total().await;
    for again in [
        first.clone(),
        signed(&app.secret, "msg_replay_1", &valid_body(3, 2), &[]),
        signed(&app.secret, "msg_replay_1", &valid_body(4, 9), &[]),
    ] {
        let (status, body) = raw(app.port, &again).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("json")["status"],
            "duplicate"
        );
    }
    assert_eq!(app.delivery_count().await, rows);
    assert_eq!(app.change_total().await, changes);
    app.stop().await;
}

/// A client trickling its body cannot hold a request open for ever: 408 within the deadline,
/// nothing stored, and the service answers others meanwhile.
#[tokio::test]
async fn a_trickled_body_is_cut_off() {
    let app = App::start(|_| {}).await;
    let body = valid_body(5, 1);
    let slow = signed(&app.secret, "msg_slow_1", &body, &[]);
    let started = Instant::now();
    let port = app.port;
    let trickler =
        tokio::spawn(async move { exchange(port, &slow, Some(Duration::from_millis(200))).await });
    // Meanwhile a normal delivery goes through.
    let quick = signed(&app.secret, "msg_quick_1", &valid_body(6, 1), &[]);
    assert_eq!(raw(app.port, &quick).await.0, 200);
    let (status, answer) = tokio::time::timeout(Duration::from_secs(30), trickler)
        .await
        .expect("the trickled request ends within 30 s")
        .expect("join");
    assert_eq!(status, 408, "{answer}");
    eprintln!(
        "the trickled request was cut off after {:?}",
        started.elapsed()
    );
    assert_eq!(app.outcome("msg_slow_1").await, None);
    still_healthy(&app).await;
    app.stop().await;
}

async fn still_healthy(app: &App) {
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", app.port);
    for path in ["/healthz", "/readyz"] {
        let r = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect(path);
        assert_eq!(r.status(), 200, "{path}");
    }
    let id = format!("msg_after_{}", rand::random::<u32>());
    let (status, body) = raw(app.port, &signed(&app.secret, &id, &valid_body(9, 1), &[])).await;
    assert_eq!(status, 200, "{body}");
    // A second edit of the same member is a change.
    let id2 = format!("{id}_b");
    let (status, body) = raw(app.port, &signed(&app.secret, &id2, &valid_body(9, 2), &[])).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(answer["status"], "processed", "{answer}");
    assert!(
        !answer["change_ids"].as_array().expect("ids").is_empty(),
        "{answer}"
    );
    assert_eq!(app.outcome(&id2).await.as_deref(), Some("processed"));
    let _ = &app.dir;
}

/// A randomized fuzz of signature-header and payload parsing that runs on stable Rust (cargo-fuzz
/// needs nightly): mutated headers must never verify unless a correct MAC is among them, mutated
/// (correctly signed) bodies go through event parsing, person parsing, extraction and hashing,
/// and every 64th through the whole ingest transaction. No input may panic. Time budget:
/// `RRS_FUZZ_SECS` (default 10); seed: `RRS_FUZZ_SEED` (default random, printed).
mod fuzz {
    use super::*;
    use axum::body::Bytes;
    use axum::http::{HeaderMap, HeaderValue};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rondo_reverse_sync::detect::{extract, tracked_hash, Person};
    use rondo_reverse_sync::webhook::{ingest, Event, Verifier};

    const TOKENS: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b",",
        b":",
        b"null",
        b"true",
        b"1e999",
        b"-0",
        b"18446744073709551616",
        b"\\u0000",
        b"\\ud800",
        b"\xff",
        b"\xc3\x28",
        b"\"acf\"",
        b"\"knvb-id\"",
        b"\"origin\"",
        b"\"user_edit\"",
        b"\"sync_sportlink_to_rondo_club\"",
        b"\"type\":\"person.trashed\"",
        b"\"type\":\"person.created\"",
        b"\"data\"",
        b"\"id\"",
        b"\"modified_gmt\":\"2026-13-45T99:99:99\"",
        b"\"contact_info\"",
        b"\"addresses\"",
        b"{\"address_label\":\"Home\"}",
        b"\"email_1\"",
        b"   ",
        b"\n",
        b"\x00",
    ];

    fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..rng.gen_range(1..=4) {
            let at = if out.is_empty() {
                0
            } else {
                rng.gen_range(0..=out.len())
            };
            match rng.gen_range(0..6) {
                0 if !out.is_empty() => {
                    let i = at.min(out.len() - 1);
                    out[i] ^= 1 << rng.gen_range(0..8);
                }
                1 if !out.is_empty() => {
                    let end = (at + rng.gen_range(1..32)).min(out.len());
                    out.drain(at.min(end)..end);
                }
                2 => {
                    let token = TOKENS[rng.gen_range(0..TOKENS.len())];
                    out.splice(at..at, token.iter().copied());
                }
                3 if !out.is_empty() => {
                    let start = rng.gen_range(0..out.len());
                    let end = (start + rng.gen_range(1..64)).min(out.len());
                    let piece = out[start..end].to_vec();
                    out.splice(at..at, piece);
                }
                4 => out.truncate(at),
                _ => {
                    let byte = rng.gen();
                    out.insert(at, byte);
                }
            }
        }
        out
    }

    fn header_value(rng: &mut StdRng, valid: &str) -> Option<HeaderValue> {
        let bytes = match rng.gen_range(0..4) {
            0 => valid.as_bytes().to_vec(),
            1 => mutate(rng, valid.as_bytes()),
            2 => (0..rng.gen_range(0..80)).map(|_| rng.gen()).collect(),
            _ => {
                let mut v = valid.as_bytes().to_vec();
                v.extend_from_slice(b" ");
                v.extend_from_slice(&mutate(rng, valid.as_bytes()));
                v
            }
        };
        HeaderValue::from_bytes(&bytes).ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fuzz_signature_and_payload_parsing() {
        let secs: u64 = std::env::var("RRS_FUZZ_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        let seed: u64 = std::env::var("RRS_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        eprintln!("fuzz: seed {seed} (RRS_FUZZ_SEED), {secs} s (RRS_FUZZ_SECS)");
        let mut rng = StdRng::seed_from_u64(seed);
        let app = App::start(|_| {}).await;
        let secret = app.secret.clone();
        let verifier = Verifier::new(vec![secret.clone()], 300);
        let catalogue = Catalogue::builtin();
        let seeds: Vec<Vec<u8>> = vec![
            valid_body(1, 1),
            valid_body(2, 5),
            event(person(json!({"knvb-id": "FZ0001", "email_1": "a@b.nl",
                "contact_info": [{"contact_type": "mobile", "contact_value": "0612345678"}]}))),
            json!({"type": "person.trashed", "data": person(json!({"knvb-id": "FZ0002"}))})
                .to_string()
                .into_bytes(),
            json!({"type": "something.else"}).to_string().into_bytes(),
        ];
        let started = Instant::now();
        let budget = Duration::from_secs(secs);
        let (mut iterations, mut verified, mut events, mut persons, mut ingested) =
            (0u64, 0, 0, 0, 0);
        while started.elapsed() < budget {
            iterations += 1;
            let base = &seeds[rng.gen_range(0..seeds.len())];
            let body = if rng.gen_bool(0.9) {
                mutate(&mut rng, base)
            } else {
                base.clone()
            };
            let id = format!("msg_fuzz_{iterations}");
            let ts = Utc::now().timestamp();
            let sig = secret.sign(&id, ts, &body);

            // Headers: mostly intact (so bodies reach parsing), sometimes mutated.
            let mut headers = HeaderMap::new();
            let mutate_headers = rng.gen_bool(0.3);
            for (name, valid) in [
                ("webhook-id", id.clone()),
                ("webhook-timestamp", ts.to_string()),
                ("webhook-signature", sig.clone()),
            ] {
                let value = if mutate_headers {
                    header_value(&mut rng, &valid)
                } else {
                    HeaderValue::from_str(&valid).ok()
                };
                if let Some(value) = value {
                    headers.insert(name, value);
                }
            }
            let result = verifier.verify(&headers, Bytes::from(body.clone()), ts);
            let Ok(body_ok) = result else { continue };
            verified += 1;
            // Whatever the headers became, a success means a correct MAC was among them.
            let used_id = body_ok.webhook_id().to_owned();
            let expected = secret.sign(&used_id, body_ok.timestamp(), &body);
            let sig_header = headers
                .get("webhook-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            assert!(
                sig_header.split_ascii_whitespace().any(|s| s == expected),
                "verified without a correct signature: {headers:?}"
            );
            assert_eq!(body_ok.bytes().as_ref(), body.as_slice());

            if let Ok(event) = Event::parse(&body_ok) {
                events += 1;
                if let Event::PersonCreated(data) | Event::PersonUpdated(data) = event {
                    if let Ok(p) = Person::from_json(&data.person_json()) {
                        persons += 1;
                        let values = extract(&catalogue, &p);
                        if let Some(knvb) = p.knvb_id() {
                            let h1 = tracked_hash(&knvb, &values);
                            assert_eq!(h1, tracked_hash(&knvb, &extract(&catalogue, &p)));
                        }
                    }
                }
            }
            if iterations % 64 == 0 {
                ingested += 1;
                // The whole transaction: never a store error for any verified body.
                ingest(&app.store, body_ok, Utc::now())
                    .await
                    .unwrap_or_else(|e| panic!("ingest failed on {body:?}: {e}"));
            }
        }
        eprintln!(
            "fuzz: {iterations} inputs in {:.1} s ({:.0}/s): {verified} verified, {events} events, \
             {persons} persons, {ingested} through ingest",
            started.elapsed().as_secs_f64(),
            iterations as f64 / started.elapsed().as_secs_f64()
        );
        assert!(iterations > 100 && events > 10, "the fuzzer did too little");
        still_healthy(&app).await;
        app.stop().await;
    }
}

/// Distinctive secret values never show up in a log line (debug and up, from every test in this
/// binary), an HTTP answer (webhook, health, metrics, admin API, operator page), a stored row or
/// any file the service wrote.
mod secrets {
    use super::*;

    const ADMIN_TOKEN: &str = "ADMIN-TOKEN-CANARY-7c1e5b";
    const SPORTLINK_PASSWORD: &str = "SPORTLINK-PASS-CANARY";
    const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPCANARY23";
    const SMTP_PASSWORD: &str = "SMTP-PASS-CANARY-91";
    // Decodes to "HOSTILE-TEST-KEY-DONOT-LEAK-01234567".
    const KEY_TEXT: &str = "HOSTILE-TEST-KEY-DONOT-LEAK-01234567";

    fn canaries() -> Vec<&'static str> {
        vec![
            SECRET,
            SECRET.trim_start_matches("whsec_"),
            KEY_TEXT,
            ADMIN_TOKEN,
            SPORTLINK_PASSWORD,
            TOTP_SECRET,
            SMTP_PASSWORD,
        ]
    }

    fn leaks(haystack: &[u8]) -> Vec<&'static str> {
        canaries()
            .into_iter()
            .filter(|c| find(haystack, c.as_bytes()).is_some())
            .collect()
    }

    #[tokio::test]
    async fn no_secret_in_logs_answers_rows_or_files() {
        let app = App::start(|s| {
            s.admin.token = Secret::new(ADMIN_TOKEN);
            s.sportlink.password = Secret::new(SPORTLINK_PASSWORD);
            s.sportlink.otp_secret = Secret::new(TOTP_SECRET);
            s.alerts.smtp_password = Secret::new(SMTP_PASSWORD);
            s.webhook.previous_secret = Secret::new(OTHER_SECRET);
        })
        .await;
        let mut settings = Settings::default();
        settings.webhook.secret = Secret::new(SECRET);
        settings.admin.token = Secret::new(ADMIN_TOKEN);
        settings.sportlink.password = Secret::new(SPORTLINK_PASSWORD);
        settings.sportlink.otp_secret = Secret::new(TOTP_SECRET);
        settings.alerts.smtp_password = Secret::new(SMTP_PASSWORD);
        // What a careless `?settings` or `{:?}` of the verifier would print.
        tracing::info!(?settings, verifier = ?startup::verifier(&settings.webhook), "settings");
        let bad_secret = WebhookSecret::parse("whsec_!!!").map(|_| ());
        tracing::warn!(?bad_secret, "a bad secret");

        let mut answers = Vec::new();
        for index in 0..corpus(&app.secret).len() {
            let case = fresh_case(&app.secret, index);
            let (status, body) = raw(app.port, &case.request).await;
            answers.extend_from_slice(format!("{status} {body}\n").as_bytes());
        }
        let client = reqwest::Client::new();
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/changes",
            "/api/status",
            "/api/runs",
            "/api/openapi.json",
            "/",
        ] {
            let r = client
                .get(format!("http://127.0.0.1:{}{path}", app.port))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .expect(path);
            // The admin API and metrics really answered (the token was accepted).
            if path.starts_with("/api/") || path == "/metrics" {
                assert_eq!(r.status(), 200, "{path}");
            }
            answers.extend_from_slice(format!("{:?}", r.headers()).as_bytes());
            answers.extend_from_slice(&r.bytes().await.unwrap_or_default());
        }
        assert_eq!(leaks(&answers), Vec::<&str>::new(), "in HTTP answers");

        let rows = app
            .store
            .read(|db| {
                let mut text = String::new();
                for post in [77, 10_001] {
                    for d in db.deliveries_for_post(post)? {
                        text.push_str(&format!("{d:?}"));
                    }
                }
                Ok(text)
            })
            .await
            .expect("rows");
        assert!(!rows.is_empty(), "the corpus recorded deliveries");
        assert_eq!(leaks(rows.as_bytes()), Vec::<&str>::new(), "in stored rows");

        let mut files = Vec::new();
        for entry in std::fs::read_dir(app.dir.path()).expect("dir") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            files.push(path.display().to_string());
            assert_eq!(leaks(&bytes), Vec::<&str>::new(), "in {}", path.display());
        }
        assert!(files.iter().any(|f| f.ends_with(".sqlite3")), "{files:?}");

        let text = rrs_testkit::logs::text();
        assert!(text.contains("webhook rejected"), "logs were captured");
        assert!(text.contains("settings"), "the settings line was captured");
        assert_eq!(leaks(text.as_bytes()), Vec::<&str>::new(), "in logs");
        app.stop().await;
    }
}

/// Issue 15, item 12: a crowd of idle sockets (connected, never a byte sent) cannot shut out
/// webhooks and `/healthz`: the server holds at most `server.max_connections` of them, closes
/// the rest at once and the held ones after the header-read timeout, and answers real requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_cannot_shut_out_webhooks_or_health() {
    const CAP: usize = 16;
    let app = App::start(|settings| {
        settings.server.max_connections = CAP;
        settings.server.header_read_timeout_secs = 1;
    })
    .await;
    let open = || {
        app.service
            .as_ref()
            .expect("running")
            .service()
            .open_connections()
    };
    let mut idle = Vec::new();
    for _ in 0..CAP * 8 {
        idle.push(
            TcpStream::connect(("127.0.0.1", app.port))
                .await
                .expect("connect"),
        );
    }
    assert!(open() <= CAP, "{} connections held", open());

    // Real requests get through (a request refused at the cap is tried again, each time on a
    // new connection, until the deadline).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (status, _) = raw(
            app.port,
            b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
        )
        .await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no /healthz after {attempts} attempts"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        let id = format!("msg_idle_{}", rand::random::<u32>());
        let (status, body) =
            raw(app.port, &signed(&app.secret, &id, &valid_body(11, 1), &[])).await;
        if status == 200 {
            break;
        }
        assert!(status == 0, "{status} {body}");
        assert!(Instant::now() < deadline, "no webhook answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(open() <= CAP, "{} connections held", open());

    // Every idle socket was closed by the server (end of stream or reset), none kept.
    for stream in &mut idle {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("the server closes an idle socket");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    still_healthy(&app).await;
    app.stop().await;
}
