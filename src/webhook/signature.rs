//! Standard Webhooks verification over the raw request, before anything is parsed.
//!
//! Signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`, signed with HMAC-SHA256 keyed
//! by the base64-decoded part of a `whsec_…` secret. `webhook-signature` holds one or more
//! space-separated `v1,<base64>` entries (a sender rotating its secret signs with both), and the
//! receiver may hold two secrets at once while it rotates its own.

use std::fmt;

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How far a `webhook-timestamp` may be from our clock, either way.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 5 * 60;

const ID_HEADER: &str = "webhook-id";
const TIMESTAMP_HEADER: &str = "webhook-timestamp";
const SIGNATURE_HEADER: &str = "webhook-signature";
const MAX_ID_LEN: usize = 256;

/// A signing secret. `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret(SecretSlice<u8>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a webhook secret must look like whsec_<base64>")]
    MissingPrefix,
    #[error("the part of the webhook secret after whsec_ is not valid base64")]
    NotBase64,
    #[error("the webhook secret is empty")]
    Empty,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`. Errors never contain the secret.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or(SecretError::MissingPrefix)?;
        let key = BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self(key.into()))
    }

    /// `v1,<base64>` for the given message: what a sender puts in `webhook-signature`.
    pub fn sign(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            BASE64.encode(self.mac(webhook_id, &timestamp.to_string(), body))
        )
    }

    fn mac(&self, webhook_id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.0.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// Why a request was not accepted as coming from Rondo Club. All of these answer 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    #[error("webhook-timestamp is more than {tolerance} seconds away from the server's clock")]
    TimestampOutOfTolerance { tolerance: i64 },
    #[error("no signature matches")]
    NoMatchingSignature,
}

/// A body whose signature was checked: the only thing an event can be parsed from.
#[derive(Debug, Clone)]
pub struct VerifiedBody {
    webhook_id: String,
    timestamp: i64,
    body: Bytes,
}

impl VerifiedBody {
    pub fn webhook_id(&self) -> &str {
        &self.webhook_id
    }

    /// The sender's `webhook-timestamp` (Unix seconds).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    pub fn bytes(&self) -> &Bytes {
        &self.body
    }
}

/// Checks signatures against one or two secrets (two while rotating).
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Vec<WebhookSecret>,
    tolerance_seconds: i64,
}

impl Verifier {
    pub fn new(secrets: Vec<WebhookSecret>, tolerance_seconds: i64) -> Self {
        Self {
            secrets,
            tolerance_seconds,
        }
    }

    /// Verifies `headers` + raw `body` as of `now` (Unix seconds).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        now: i64,
    ) -> Result<VerifiedBody, VerifyError> {
        let webhook_id = header(headers, ID_HEADER)?;
        if webhook_id.len() > MAX_ID_LEN || webhook_id.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(VerifyError::MalformedHeader(ID_HEADER));
        }
        let timestamp_text = header(headers, TIMESTAMP_HEADER)?;
        let signatures = header(headers, SIGNATURE_HEADER)?;

        let timestamp = parse_timestamp(timestamp_text)?;
        if now.abs_diff(timestamp) > self.tolerance_seconds.unsigned_abs() {
            return Err(VerifyError::TimestampOutOfTolerance {
                tolerance: self.tolerance_seconds,
            });
        }

        let candidates: Vec<Vec<u8>> = signatures
            .split_ascii_whitespace()
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|encoded| BASE64.decode(encoded).ok())
            .collect();
        if candidates.is_empty() {
            return Err(VerifyError::MalformedHeader(SIGNATURE_HEADER));
        }

        // Every secret is tried against every entry, without stopping early, so the time taken
        // says nothing about which (if any) matched.
        let mut matched = subtle::Choice::from(0);
        for secret in &self.secrets {
            let expected = secret.mac(webhook_id, timestamp_text, &body);
            for candidate in &candidates {
                matched |= expected.as_slice().ct_eq(candidate.as_slice());
            }
        }
        if !bool::from(matched) {
            return Err(VerifyError::NoMatchingSignature);
        }
        Ok(VerifiedBody {
            webhook_id: webhook_id.to_owned(),
            timestamp,
            body,
        })
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(VerifyError::MissingHeader(name))?;
    // Two copies of a header leave it open which one a proxy, this service and the sender
    // meant (which id is the idempotency key?); several signatures go space-separated in one.
    if values.next().is_some() {
        return Err(VerifyError::MalformedHeader(name));
    }
    let text = value
        .to_str()
        .map_err(|_| VerifyError::MalformedHeader(name))?
        .trim();
    if text.is_empty() {
        return Err(VerifyError::MissingHeader(name));
    }
    Ok(text)
}

fn parse_timestamp(text: &str) -> Result<i64, VerifyError> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedHeader(TIMESTAMP_HEADER));
    }
    text.parse()
        .map_err(|_| VerifyError::MalformedHeader(TIMESTAMP_HEADER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    // The known answer from the Standard Webhooks specification's own test suite.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            (ID_HEADER, id),
            (TIMESTAMP_HEADER, timestamp),
            (SIGNATURE_HEADER, signature),
        ] {
            headers.insert(name, HeaderValue::from_str(value).expect("test header"));
        }
        headers
    }

    fn verifier(secrets: &[&str]) -> Verifier {
        Verifier::new(
            secrets
                .iter()
                .map(|s| WebhookSecret::parse(s).expect("test secret"))
                .collect(),
            DEFAULT_TOLERANCE_SECONDS,
        )
    }

    #[test]
    fn signs_the_known_answer() {
        let secret = WebhookSecret::parse(SECRET).expect("secret");
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY.as_bytes()), SIGNATURE);
    }

    #[test]
    fn verifies_the_known_answer_at_its_own_time() {
        let verified = verifier(&[SECRET])
            .verify(
                &headers(ID, "1614265330", SIGNATURE),
                Bytes::from_static(BODY.as_bytes()),
                TIMESTAMP,
            )
            .expect("the known answer verifies");
        assert_eq!(verified.webhook_id(), ID);
        assert_eq!(verified.timestamp(), TIMESTAMP);
        assert_eq!(verified.bytes().as_ref(), BODY.as_bytes());
    }

    #[test]
    fn tolerance_is_five_minutes_either_way() {
        let v = verifier(&[SECRET]);
        let h = headers(ID, "1614265330", SIGNATURE);
        let body = Bytes::from_static(BODY.as_bytes());
        assert!(v.verify(&h, body.clone(), TIMESTAMP + 300).is_ok());
        assert!(v.verify(&h, body.clone(), TIMESTAMP - 300).is_ok());
        for now in [TIMESTAMP + 301, TIMESTAMP - 301] {
            assert_eq!(
                v.verify(&h, body.clone(), now).unwrap_err(),
                VerifyError::TimestampOutOfTolerance { tolerance: 300 }
            );
        }
    }

    #[test]
    fn any_change_to_the_signed_content_fails() {
        let v = verifier(&[SECRET]);
        let body = Bytes::from_static(BODY.as_bytes());
        let cases = [
            (headers("msg_other", "1614265330", SIGNATURE), body.clone()),
            (headers(ID, "1614265331", SIGNATURE), body.clone()),
            (
                headers(ID, "1614265330", SIGNATURE),
                Bytes::from_static(br#"{"test": 2432232315}"#),
            ),
            (
                headers(
                    ID,
                    "1614265330",
                    "v1,g1hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                ),
                body.clone(),
            ),
        ];
        for (h, b) in cases {
            assert_eq!(
                v.verify(&h, b, TIMESTAMP).unwrap_err(),
                VerifyError::NoMatchingSignature
            );
        }
    }

    #[test]
    fn one_matching_entry_among_several_is_enough() {
        let v = verifier(&[SECRET]);
        let several = format!("v1,bm90IHRoaXMgb25l v2,whatever {SIGNATURE} v1,%%%");
        assert!(v
            .verify(
                &headers(ID, "1614265330", &several),
                Bytes::from_static(BODY.as_bytes()),
                TIMESTAMP
            )
            .is_ok());
    }

    #[test]
    fn either_of_two_configured_secrets_verifies() {
        let other = "whsec_c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24=";
        let both = verifier(&[other, SECRET]);
        let h = headers(ID, "1614265330", SIGNATURE);
        let body = Bytes::from_static(BODY.as_bytes());
        assert!(both.verify(&h, body.clone(), TIMESTAMP).is_ok());
        let by_other =
            WebhookSecret::parse(other)
                .expect("secret")
                .sign(ID, TIMESTAMP, BODY.as_bytes());
        assert!(both
            .verify(
                &headers(ID, "1614265330", &by_other),
                body.clone(),
                TIMESTAMP
            )
            .is_ok());
        assert_eq!(
            verifier(&[other]).verify(&h, body, TIMESTAMP).unwrap_err(),
            VerifyError::NoMatchingSignature
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let v = verifier(&[SECRET]);
        let body = Bytes::from_static(BODY.as_bytes());
        for name in [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER] {
            let mut h = headers(ID, "1614265330", SIGNATURE);
            h.remove(name);
            assert_eq!(
                v.verify(&h, body.clone(), TIMESTAMP).unwrap_err(),
                VerifyError::MissingHeader(name)
            );
        }
        for (h, name) in [
            (headers(ID, "16142653e0", SIGNATURE), TIMESTAMP_HEADER),
            (headers(ID, "-1614265330", SIGNATURE), TIMESTAMP_HEADER),
            (
                headers(ID, "99999999999999999999", SIGNATURE),
                TIMESTAMP_HEADER,
            ),
            (headers(ID, "1614265330", "g0hM9SsE"), SIGNATURE_HEADER),
            (headers(ID, "1614265330", "v1,***"), SIGNATURE_HEADER),
        ] {
            assert_eq!(
                v.verify(&h, body.clone(), TIMESTAMP).unwrap_err(),
                VerifyError::MalformedHeader(name)
            );
        }
    }

    #[test]
    fn a_header_given_twice_is_malformed() {
        let v = verifier(&[SECRET]);
        let body = Bytes::from_static(BODY.as_bytes());
        for (name, extra) in [
            (ID_HEADER, "msg_other"),
            (TIMESTAMP_HEADER, "1614265330"),
            (SIGNATURE_HEADER, SIGNATURE),
        ] {
            let mut h = headers(ID, "1614265330", SIGNATURE);
            h.append(name, HeaderValue::from_static(extra));
            assert_eq!(
                v.verify(&h, body.clone(), TIMESTAMP).unwrap_err(),
                VerifyError::MalformedHeader(name)
            );
        }
    }

    #[test]
    fn secrets_are_parsed_strictly_and_never_printed() {
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::MissingPrefix
        );
        assert_eq!(
            WebhookSecret::parse("whsec_!!!").unwrap_err(),
            SecretError::NotBase64
        );
        assert_eq!(
            WebhookSecret::parse("whsec_").unwrap_err(),
            SecretError::Empty
        );
        let secret = WebhookSecret::parse(SECRET).expect("secret");
        let shown = format!("{secret:?} {:?}", verifier(&[SECRET]));
        assert!(!shown.contains("MfKQ9r8G"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
