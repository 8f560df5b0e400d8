//! Captures everything logged (at every level) into one buffer for the whole test binary, so
//! tests can check that no secret is ever logged and wait for a log line with a deadline. One
//! global subscriber per process: every test that reads logs goes through here.

use std::io;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

struct Buffer {
    text: Mutex<String>,
    lines: watch::Sender<usize>,
}

fn buffer() -> &'static Buffer {
    static BUFFER: OnceLock<Buffer> = OnceLock::new();
    BUFFER.get_or_init(|| Buffer {
        text: Mutex::new(String::new()),
        lines: watch::channel(0).0,
    })
}

struct Writer;

impl io::Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let b = buffer();
        b.text
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_str(&String::from_utf8_lossy(bytes));
        b.lines.send_modify(|n| *n += 1);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber once per test binary.
pub fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| Writer)
            .init();
    });
}

pub fn text() -> String {
    buffer()
        .text
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Waits until some logged line satisfies `matches`, or panics at the deadline.
pub async fn wait_for_line(matches: impl Fn(&str) -> bool, deadline: Duration) {
    let mut lines = buffer().lines.subscribe();
    let found =
        tokio::time::timeout(deadline, lines.wait_for(|_| text().lines().any(&matches))).await;
    assert!(
        matches!(found, Ok(Ok(_))),
        "no matching log line within {deadline:?}:\n{}",
        text()
    );
}
