//! One-time codes for Sportlink's Keycloak login (RFC 6238: HMAC-SHA1, 6 digits, 30 s step).
//!
//! Keycloak may refuse a code that was already accepted in its window, so the generator remembers
//! the last time step it handed out and never hands out the same step twice: a second login within
//! one window waits for the next one instead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use totp_rs::{Algorithm, Secret, TOTP};

const STEP_SECS: u64 = 30;
const MIN_SECRET_BYTES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum OtpSetupError {
    #[error("the Sportlink OTP secret is not valid base32")]
    NotBase32,
    #[error("the Sportlink OTP secret is too short (at least 16 base32 characters)")]
    TooShort,
}

/// A code to type, and the time step it belongs to.
pub struct OtpCode {
    pub code: String,
    pub step: u64,
}

// Not `Debug`: the inner TOTP holds the secret.
pub struct OtpGenerator {
    totp: TOTP,
    last_used_step: Option<u64>,
}

impl std::fmt::Debug for OtpGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpGenerator")
            .field("secret", &"[redacted]")
            .field("last_used_step", &self.last_used_step)
            .finish()
    }
}

impl OtpGenerator {
    pub fn new(secret: &SecretString) -> Result<Self, OtpSetupError> {
        let cleaned: String = secret
            .expose_secret()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = Secret::Encoded(cleaned)
            .to_bytes()
            .map_err(|_| OtpSetupError::NotBase32)?;
        // Same floor as the configuration check (16 base32 characters); RFC 4226 recommends
        // 160 bits, which is what Keycloak hands out.
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(OtpSetupError::TooShort);
        }
        let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP_SECS, bytes);
        Ok(Self {
            totp,
            last_used_step: None,
        })
    }

    /// Remember a step known to be used (e.g. persisted by a previous process that held the
    /// account lock). Never moves backwards.
    pub fn remember_used_step(&mut self, step: Option<u64>) {
        self.last_used_step = self.last_used_step.max(step);
    }

    pub fn last_used_step(&self) -> Option<u64> {
        self.last_used_step
    }

    /// How long to wait, from `now`, before a fresh (never used) code is available. Zero when the
    /// current window has not been used yet.
    pub fn wait_before_next(&self, now: SystemTime) -> Duration {
        let secs = unix_secs(now);
        let step = secs / STEP_SECS;
        match self.last_used_step {
            Some(used) if used >= step => {
                let next_start = (used + 1) * STEP_SECS;
                let now_ms = unix_millis(now);
                Duration::from_millis((next_start * 1000).saturating_sub(now_ms))
            }
            _ => Duration::ZERO,
        }
    }

    /// The code for the window containing `now`, marked as used. Returns `None` if that window was
    /// already used: wait [`Self::wait_before_next`] first.
    pub fn take_code(&mut self, now: SystemTime) -> Option<OtpCode> {
        self.take_step(unix_secs(now) / STEP_SECS)
    }

    /// The code of `step`, marked as used, unless that step (or a later one) was used.
    fn take_step(&mut self, step: u64) -> Option<OtpCode> {
        if matches!(self.last_used_step, Some(used) if used >= step) {
            return None;
        }
        self.last_used_step = Some(step);
        Some(OtpCode {
            code: self.totp.generate(step * STEP_SECS),
            step,
        })
    }

    /// The code of the window after `now`'s, marked as used, when that window was not used yet.
    /// RFC 6238 (§5.2) recommends that verifiers accept one step of skew, and Keycloak's default
    /// policy does: a second login within one window need not wait for the next. A caller that
    /// sees it refused gives it back with [`Self::give_back`] and waits instead.
    pub fn take_code_ahead(&mut self, now: SystemTime) -> Option<OtpCode> {
        self.take_step(unix_secs(now) / STEP_SECS + 1)
    }

    /// A code handed out for `step` was refused as not (yet) valid, so it was not used: its
    /// window may be used again. The window before it stays used.
    pub fn give_back(&mut self, step: u64) {
        if self.last_used_step == Some(step) {
            self.last_used_step = step.checked_sub(1);
        }
    }

    /// Record that the code of `now`'s window is burnt (e.g. Sportlink refused it because someone
    /// else used it), so the next attempt waits for the next window.
    pub fn burn_current(&mut self, now: SystemTime) {
        let step = unix_secs(now) / STEP_SECS;
        self.last_used_step = Some(self.last_used_step.map_or(step, |s| s.max(step)));
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B test secret ("12345678901234567890" in ASCII), base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn matches_rfc6238_sha1_vectors() {
        let secret = SecretString::from(RFC_SECRET.to_owned());
        // Appendix B lists 8-digit codes; the 6-digit code is the last six digits.
        for (t, expected8) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (2_000_000_000, "69279037"),
        ] {
            let mut g = OtpGenerator::new(&secret).unwrap();
            let code = g.take_code(at(t)).unwrap();
            assert_eq!(code.code, expected8[2..], "t={t}");
        }
    }

    #[test]
    fn never_hands_out_a_step_twice() {
        let secret = SecretString::from(RFC_SECRET.to_owned());
        let mut g = OtpGenerator::new(&secret).unwrap();
        assert!(g.take_code(at(60)).is_some());
        assert!(g.take_code(at(89)).is_none());
        assert_eq!(g.wait_before_next(at(80)), Duration::from_secs(10));
        assert!(g.take_code(at(90)).is_some());
        assert_eq!(g.wait_before_next(at(95)), Duration::from_secs(25));
    }

    #[test]
    fn a_code_ahead_is_the_next_window_once() {
        let secret = SecretString::from(RFC_SECRET.to_owned());
        let mut g = OtpGenerator::new(&secret).unwrap();
        let now = g.take_code(at(60)).unwrap();
        let ahead = g.take_code_ahead(at(61)).unwrap();
        assert_eq!(ahead.step, now.step + 1);
        assert_eq!(
            ahead.code,
            OtpGenerator::new(&secret)
                .unwrap()
                .take_code(at(90))
                .unwrap()
                .code
        );
        assert!(g.take_code_ahead(at(62)).is_none());
        assert!(g.take_code(at(95)).is_none(), "the window ahead was used");
        g.give_back(ahead.step);
        assert!(
            g.take_code(at(95)).is_some(),
            "a refused code ahead was never used"
        );
    }

    #[test]
    fn burn_forces_next_window() {
        let secret = SecretString::from(RFC_SECRET.to_owned());
        let mut g = OtpGenerator::new(&secret).unwrap();
        g.burn_current(at(61));
        assert!(g.take_code(at(62)).is_none());
        assert_eq!(g.wait_before_next(at(62)), Duration::from_secs(28));
    }

    #[test]
    fn rejects_bad_secrets_without_echoing_them() {
        let bad = SecretString::from("not base32 !!".to_owned());
        let err = OtpGenerator::new(&bad).unwrap_err();
        assert!(!err.to_string().contains("base32 !!"));
        let short = SecretString::from("GEZDGNBV".to_owned());
        assert!(matches!(
            OtpGenerator::new(&short),
            Err(OtpSetupError::TooShort)
        ));
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let secret = SecretString::from(RFC_SECRET.to_owned());
        let g = OtpGenerator::new(&secret).unwrap();
        let shown = format!("{g:?}");
        assert!(!shown.contains(RFC_SECRET));
        assert!(!shown.contains("49, 50, 51"));
    }
}
