//! Removes configured secrets from text that leaves the process (errors, saved HTML).
//!
//! The Sportlink pages never contain the password, the OTP secret or the session cookie, but an
//! artefact is written to disk and read by people, so every known secret is replaced anyway, in
//! the spellings it could take in HTML, URLs and JSON.

const REDACTED: &str = "[redacted]";

#[derive(Clone, Default)]
pub struct Scrubber {
    needles: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("needles", &self.needles.len())
            .finish()
    }
}

impl Scrubber {
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut s = Self::default();
        for secret in secrets {
            s.add(secret.as_ref());
        }
        s
    }

    /// Add a secret (and its encoded spellings). Very short values are ignored: replacing every
    /// "a" in a page would destroy it without protecting anything.
    pub fn add(&mut self, secret: &str) {
        if secret.chars().count() < 4 {
            return;
        }
        let variants = [
            secret.to_owned(),
            html_escape(secret),
            percent_encode(secret),
            json_inner(secret),
        ];
        for v in variants {
            if !self.needles.contains(&v) {
                self.needles.push(v);
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    pub fn with_extra<I, S>(&self, extra: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut s = self.clone();
        for e in extra {
            s.add(e.as_ref());
        }
        s
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), REDACTED);
            }
        }
        out
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn json_inner(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_all_spellings() {
        let s = Scrubber::new(["p&ss \"word\"<1>"]);
        let text = "a p&ss \"word\"<1> b p&amp;ss &quot;word&quot;&lt;1&gt; c p%26ss%20%22word%22%3C1%3E d p&ss \\\"word\\\"<1>";
        let out = s.scrub(text);
        assert!(!out.contains("word"), "{out}");
        assert_eq!(out.matches(REDACTED).count(), 4);
    }

    #[test]
    fn ignores_tiny_values() {
        let s = Scrubber::new(["ab", ""]);
        assert_eq!(s.scrub("abc"), "abc");
    }
}
