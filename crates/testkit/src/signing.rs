//! Correctly signed deliveries with a timestamp outside the verifier's tolerance, for the
//! webhook tests and the hostile corpus (one builder, not a copy in each).
//!
//! The time is read when a case is built, so build each case right before it is sent; the
//! offsets are an hour beyond the tolerance, so no pause of the test run can bring a case back
//! inside it. (The exact boundary is a unit test of the verifier with an injected clock.)

#![allow(dead_code)]

use rondo_reverse_sync::webhook::WebhookSecret;

/// The verifier's default tolerance (`webhook.tolerance_secs`).
pub const TOLERANCE_SECS: i64 = 300;
/// How far beyond the tolerance the cases lie.
pub const MARGIN_SECS: i64 = 3_600;

/// A stale and a future delivery of `body` under `id`, correctly signed with `secret`:
/// (label, `webhook-timestamp`, `webhook-signature`), timed from now.
pub fn outside_tolerance(
    secret: &WebhookSecret,
    id: &str,
    body: &[u8],
) -> Vec<(&'static str, i64, String)> {
    let now = chrono::Utc::now().timestamp();
    [
        ("stale timestamp, correctly signed", -1),
        ("future timestamp, correctly signed", 1),
    ]
    .into_iter()
    .map(|(label, sign)| {
        let timestamp = now + sign * (TOLERANCE_SECS + MARGIN_SECS);
        (label, timestamp, secret.sign(id, timestamp, body))
    })
    .collect()
}
