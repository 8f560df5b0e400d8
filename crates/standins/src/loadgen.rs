//! Signed webhook deliveries as Rondo Club's snippet sends them, and a load driver that sends them
//! over keep-alive connections at a fixed concurrency (optionally at a fixed rate). Used by the
//! `rrs-load` benchmark and by the reliability tests, so both send exactly what production sees.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{TimeZone as _, Utc};
use serde_json::json;

use rondo_reverse_sync::webhook::WebhookSecret;

/// One signed delivery, ready to send.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: Bytes,
    /// The member the edit is about.
    pub knvb_id: String,
    /// The e-mail address this edit sets.
    pub email: String,
}

impl Delivery {
    /// Signs `body` as `id` at `timestamp` with `secret`.
    pub fn sign(secret: &WebhookSecret, id: String, timestamp: i64, body: Vec<u8>) -> Self {
        let signature = secret.sign(&id, timestamp, &body);
        Self {
            id,
            timestamp,
            signature,
            body: Bytes::from(body),
            knvb_id: String::new(),
            email: String::new(),
        }
    }

    /// A POST of this delivery to `url`, with the Standard Webhooks headers.
    pub fn request(&self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &self.id)
            .header("webhook-timestamp", self.timestamp.to_string())
            .header("webhook-signature", &self.signature)
            .body(self.body.clone())
    }
}

/// The KNVB id of member number `n` of a load run.
pub fn knvb_id(n: u64) -> String {
    format!("LD{n:05}")
}

/// WordPress post id of member number `n`.
pub fn post_id(n: u64) -> u64 {
    10_000 + n
}

/// The mobile number edit `edit` of member `member` sets, as Rondo Club shows it (`06 12345678`).
pub fn mobile(member: u64, edit: u64) -> String {
    format!("06 {:08}", (member * 7919 + edit) % 100_000_000)
}

/// The e-mail address edit `edit` of member `member` sets.
pub fn email(member: u64, edit: u64) -> String {
    format!("lid{member}.v{edit}@voorbeeld.nl")
}

/// A `person.updated` body with the full field layout of a real member: the fixed contact and
/// address fields, a `contact_info` repeater, and the untracked fields a real person carries.
/// `edit` selects the e-mail and mobile values, so every edit of a member is a real change.
pub fn person_updated_body(member: u64, edit: u64) -> (Vec<u8>, String) {
    let email = email(member, edit);
    // modified_gmt moves forward with every edit, one second each, from a fixed day.
    let modified = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .map(|t| t + chrono::Duration::seconds(i64::try_from(edit).unwrap_or(i64::MAX / 2)))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default();
    let body = json!({
        "type": "person.updated",
        "timestamp": Utc::now().to_rfc3339(),
        "data": {
            "id": post_id(member),
            "modified_gmt": modified,
            "origin": "user_edit",
            "user": "vrijwilliger",
            "acf": {
                "knvb-id": knvb_id(member),
                "first_name": "Jan",
                "infix": "van der",
                "last_name": format!("Berg{member}"),
                "email_1": email,
                "email_2": "",
                "mobile_1": mobile(member, edit),
                "mobile_2": null,
                "telephone_1": "020-7654321",
                "telephone_2": "",
                "addresses": [{
                    "address_label": "Home",
                    "street_name": "Dorpsstraat",
                    "house_number": member % 200 + 1,
                    "house_number_addition": "",
                    "postal_code": "1234 AB",
                    "city": "Ergenshuizen",
                    "country_code": "NL"
                }],
                "contact_info": [
                    {"contact_type": "email", "contact_label": "", "contact_value": email},
                    {"contact_type": "website", "contact_label": "", "contact_value": "https://example.nl"}
                ],
                "datum-vog": "2025-10-30",
                "freescout-id": 4000 + member,
                "financiele-blokkade": false,
                "nikki-contributie-status": "betaald",
                "huidig-vrijwilliger": true,
                "lid-sinds": "2012-08-01"
            }
        }
    });
    (body.to_string().into_bytes(), email)
}

/// Makes unique signed deliveries: edit `k` goes to member `k % members`.
pub struct DeliveryFactory {
    secret: WebhookSecret,
    members: u64,
    run_tag: String,
    next: AtomicU64,
}

impl DeliveryFactory {
    /// `run_tag` makes the webhook ids unique across runs against the same database.
    pub fn new(secret: WebhookSecret, members: u64, run_tag: impl Into<String>) -> Self {
        Self {
            secret,
            members: members.max(1),
            run_tag: run_tag.into(),
            next: AtomicU64::new(0),
        }
    }

    /// The next delivery, signed now.
    pub fn next_delivery(&self) -> Delivery {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        self.delivery(k)
    }

    /// Delivery number `k` (the same `k` gives the same id and body), signed now.
    pub fn delivery(&self, k: u64) -> Delivery {
        let member = k % self.members;
        let (body, email) = person_updated_body(member, k);
        let mut delivery = Delivery::sign(
            &self.secret,
            format!("msg_{}_{k:08}", self.run_tag),
            Utc::now().timestamp(),
            body,
        );
        delivery.knvb_id = knvb_id(member);
        delivery.email = email;
        delivery
    }
}

/// How a load run went.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub sent: u64,
    /// Answers with a 2xx status.
    pub ok: u64,
    /// Non-2xx answers and transport errors.
    pub failed: u64,
    pub elapsed: Duration,
    /// Per request, sorted: from when it was due (its slot, in a rate-limited run) to its answer.
    pub latencies: Vec<Duration>,
    /// Ids of the deliveries answered 2xx.
    pub acknowledged: Vec<String>,
}

impl LoadReport {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile (0..=1) of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies.len() as f64 - 1.0) * q.clamp(0.0, 1.0)).round() as usize;
        self.latencies[rank]
    }
}

/// What to send, how hard.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub url: String,
    pub total: u64,
    pub concurrency: usize,
    /// Requests per second across all workers; `None` sends as fast as answers come back.
    pub rate: Option<f64>,
}

/// Sends `plan.total` deliveries from `factory`, `plan.concurrency` at a time, over one pooled
/// keep-alive client.
pub async fn run_load(
    client: &reqwest::Client,
    factory: Arc<DeliveryFactory>,
    plan: &LoadPlan,
) -> LoadReport {
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency.max(1) {
        let client = client.clone();
        let factory = factory.clone();
        let issued = issued.clone();
        let plan = plan.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut acknowledged = Vec::new();
            let mut failed = 0u64;
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= plan.total {
                    break;
                }
                let due = match plan.rate {
                    Some(rate) => {
                        let due = start + Duration::from_secs_f64(n as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                let delivery = factory.next_delivery();
                match delivery.request(&client, &plan.url).send().await {
                    Ok(response) if response.status().is_success() => {
                        // Reading the (small) answer keeps the connection reusable.
                        let _ = response.bytes().await;
                        acknowledged.push(delivery.id);
                    }
                    Ok(response) => {
                        let _ = response.bytes().await;
                        failed += 1;
                    }
                    Err(_) => failed += 1,
                }
                latencies.push(due.elapsed());
            }
            (latencies, acknowledged, failed)
        });
    }
    let mut report = LoadReport {
        sent: 0,
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        acknowledged: Vec::new(),
    };
    while let Some(joined) = workers.join_next().await {
        // A worker cannot panic short of a bug in this function; count it as lost work if so.
        if let Ok((latencies, acknowledged, failed)) = joined {
            report.sent += latencies.len() as u64;
            report.failed += failed;
            report.ok += acknowledged.len() as u64;
            report.latencies.extend(latencies);
            report.acknowledged.extend(acknowledged);
        }
    }
    report.elapsed = start.elapsed();
    report.latencies.sort_unstable();
    report
}

/// A client for load: a pool as large as the concurrency, kept alive, no proxy.
pub fn client(concurrency: usize) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
}
