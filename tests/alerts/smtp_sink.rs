//! A minimal SMTP server for tests: speaks EHLO/HELO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET,
//! NOOP and QUIT on 127.0.0.1, and records every message. Plus a "blackhole" that accepts
//! connections and never answers, like a hung mail server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Headers and body as sent, dot-unstuffed.
    pub data: String,
}

impl Mail {
    fn headers_and_body(&self) -> (&str, &str) {
        self.data.split_once("\r\n\r\n").unwrap_or((&self.data, ""))
    }

    pub fn subject(&self) -> String {
        let (headers, _) = self.headers_and_body();
        headers
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_string()
    }

    /// The body, decoded when it is quoted-printable (lettre's choice for non-ASCII text).
    pub fn body(&self) -> String {
        let (headers, body) = self.headers_and_body();
        if headers.contains("Content-Transfer-Encoding: quoted-printable") {
            decode_quoted_printable(body)
        } else {
            body.to_string()
        }
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Default)]
struct Recorded {
    mails: Vec<Mail>,
    /// Decoded AUTH exchanges, to prove the password reached the server.
    auth: Vec<String>,
}

pub struct SmtpSink {
    address: String,
    recorded: Arc<Mutex<Recorded>>,
    count: watch::Receiver<usize>,
    server: JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let (count_tx, count) = watch::channel(0);
        let count_tx = Arc::new(count_tx);
        let shared = Arc::clone(&recorded);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorded = Arc::clone(&shared);
                let count_tx = Arc::clone(&count_tx);
                tokio::spawn(async move {
                    // A client that misbehaves only ends its own session.
                    let _ = session(stream, &recorded, &count_tx).await;
                });
            }
        });
        SmtpSink {
            address,
            recorded,
            count,
            server,
        }
    }

    pub fn address(&self) -> String {
        self.address.clone()
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.recorded.lock().unwrap().mails.clone()
    }

    pub fn auth_seen(&self) -> Vec<String> {
        self.recorded.lock().unwrap().auth.clone()
    }

    /// Waits until at least `n` messages have arrived, or panics at the deadline.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Mail> {
        let mut count = self.count.clone();
        let arrived = tokio::time::timeout(deadline, count.wait_for(|&c| c >= n)).await;
        assert!(
            matches!(arrived, Ok(Ok(_))),
            "expected {n} messages within {deadline:?}, got {:?}",
            self.mails()
        );
        self.mails()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn session(
    stream: TcpStream,
    recorded: &Mutex<Recorded>,
    count: &watch::Sender<usize>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut mail = Mail::default();
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") || upper == "NOOP" {
            b"250 OK\r\n"
        } else if let Some(initial) = upper.strip_prefix("AUTH PLAIN") {
            let encoded = match initial.trim() {
                "" => {
                    write.write_all(b"334 \r\n").await?;
                    lines.next_line().await?.unwrap_or_default()
                }
                _ => line[10..].trim().to_string(),
            };
            recorded.lock().unwrap().auth.push(decode(&encoded));
            b"235 2.7.0 Authentication successful\r\n"
        } else if upper.starts_with("AUTH LOGIN") {
            write.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            let user = lines.next_line().await?.unwrap_or_default();
            write.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            let password = lines.next_line().await?.unwrap_or_default();
            let exchange = format!("{}:{}", decode(&user), decode(&password));
            recorded.lock().unwrap().auth.push(exchange);
            b"235 2.7.0 Authentication successful\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail = Mail {
                mail_from: address_in(&line),
                ..Mail::default()
            };
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.rcpt_to.push(address_in(&line));
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = Vec::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push(line.strip_prefix('.').map(str::to_string).unwrap_or(line));
            }
            mail.data = data.join("\r\n");
            let mut r = recorded.lock().unwrap();
            r.mails.push(std::mem::take(&mut mail));
            count.send_replace(r.mails.len());
            b"250 OK queued\r\n"
        } else if upper == "RSET" {
            mail = Mail::default();
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

fn decode(b64: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).replace('\0', ":")
}

/// `MAIL FROM:<a@b> SIZE=…` → `a@b`.
fn address_in(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_string())
        .unwrap_or_default()
}

/// Accepts connections and holds them open without a word.
pub struct Blackhole {
    address: String,
    connections: Arc<AtomicUsize>,
    server: JoinHandle<()>,
}

impl Blackhole {
    pub async fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        Blackhole {
            address,
            connections,
            server,
        }
    }

    pub fn address(&self) -> String {
        self.address.clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.server.abort();
    }
}
