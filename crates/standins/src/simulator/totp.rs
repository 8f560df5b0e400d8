//! TOTP as Keycloak checks it: RFC 6238, HMAC-SHA1, 6 digits, 30 s step, ±1 step.

use totp_rs::{Algorithm, Secret, TOTP};

const DIGITS: usize = 6;
const STEP_SECONDS: u64 = 30;

/// Verifies codes and tells which time step a code belongs to, so that a code can be refused
/// when its step was already used.
#[derive(Debug)]
pub(crate) struct TotpVerifier {
    totp: TOTP,
}

impl TotpVerifier {
    /// Fails when the secret is not valid base32.
    pub(crate) fn from_base32(secret: &str) -> Result<TotpVerifier, String> {
        Ok(TotpVerifier {
            totp: totp_from_base32(secret)?,
        })
    }

    /// The step (`unix_time / 30`) whose code equals `code`, within ±1 step of `now`.
    pub(crate) fn matching_step(&self, code: &str, now: u64) -> Option<u64> {
        let current = now / STEP_SECONDS;
        [
            current.saturating_sub(1),
            current,
            current.saturating_add(1),
        ]
        .into_iter()
        .find(|step| {
            let expected = self.totp.generate(step * STEP_SECONDS);
            // Length first: constant-time comparison needs equal lengths to be meaningful.
            code.len() == expected.len()
                && subtle::ConstantTimeEq::ct_eq(code.as_bytes(), expected.as_bytes()).into()
        })
    }
}

/// The 6-digit code for `secret_base32` at `unix_time`, as an authenticator app would show it.
/// `None` when the secret is not valid base32. Tests use it to log in.
pub fn totp_code(secret_base32: &str, unix_time: u64) -> Option<String> {
    totp_from_base32(secret_base32)
        .ok()
        .map(|totp| totp.generate(unix_time))
}

fn totp_from_base32(secret: &str) -> Result<TOTP, String> {
    let cleaned: String = secret
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bytes = Secret::Encoded(cleaned)
        .to_bytes()
        .map_err(|e| format!("OTP secret is not valid base32: {e:?}"))?;
    if bytes.is_empty() {
        return Err("OTP secret is empty".to_owned());
    }
    // Unchecked: short secrets (80 bits, common in authenticator set-ups) must work too.
    Ok(TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECONDS,
        bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B test secret "12345678901234567890" in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn matches_rfc_6238_vector() {
        // RFC 6238: T = 59 → 94287082 (8 digits); the 6-digit code is its last six digits.
        assert_eq!(totp_code(RFC_SECRET, 59).as_deref(), Some("287082"));
    }

    #[test]
    fn accepts_neighbouring_steps_only() {
        let verifier = TotpVerifier::from_base32(RFC_SECRET).expect("valid secret");
        let now = 1_700_000_000;
        let code = totp_code(RFC_SECRET, now).expect("code");
        assert_eq!(verifier.matching_step(&code, now), Some(now / 30));
        assert_eq!(verifier.matching_step(&code, now + 30), Some(now / 30));
        assert_eq!(verifier.matching_step(&code, now + 90), None);
        assert_eq!(verifier.matching_step("12345", now), None);
    }

    #[test]
    fn rejects_bad_secret() {
        assert!(TotpVerifier::from_base32("not base32!").is_err());
        assert!(totp_code("", 0).is_none());
    }
}
