//! Where digests go: e-mail over SMTP (lettre) and a JSON POST (reqwest). Each send is bounded by
//! a timeout and retried after the configured pauses; failures are logged without secrets (the
//! SMTP password never leaves lettre's AUTH exchange, and the webhook URL, which may carry a
//! token, is never logged — only its host).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Digest;
use crate::config::{parse_host_port, AlertSettings};

/// A setting the alerter cannot use; `Settings::validate` rejects these first.
#[derive(Debug, thiserror::Error)]
pub enum AlertSetupError {
    #[error("alerts.smtp_server: {0:?} is not host:port")]
    SmtpServer(String),
    #[error("alerts.smtp_security: {0:?} is not one of starttls, tls, none")]
    SmtpSecurity(String),
    #[error("alerts.smtp_server: TLS setup failed")]
    Tls(#[source] lettre::transport::smtp::Error),
    #[error("alerts.{setting}: {value:?} is not an e-mail address")]
    Address {
        setting: &'static str,
        value: String,
    },
    #[error("alerts.webhook_url: must be an http(s) URL with a host")]
    WebhookUrl,
    #[error("alerts: HTTP client setup failed")]
    HttpClient(#[source] reqwest::Error),
}

/// One way of delivering a digest.
pub enum Transport {
    Smtp {
        mailer: AsyncSmtpTransport<Tokio1Executor>,
        server: String,
        from: Mailbox,
        to: Vec<Mailbox>,
    },
    Webhook {
        client: reqwest::Client,
        url: reqwest::Url,
    },
}

/// Why one attempt to send a digest failed. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("building the message failed: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("{0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("{0}")]
    Http(reqwest::Error),
    #[error("the receiver answered {0}")]
    Status(reqwest::StatusCode),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// How each digest is sent: the deadline of one attempt and the pauses before the retries.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    pub timeout: Duration,
    pub backoff: Vec<Duration>,
}

impl SendPolicy {
    pub fn from_settings(settings: &AlertSettings) -> Self {
        Self {
            timeout: Duration::from_secs(settings.send_timeout_secs.max(1)),
            backoff: settings
                .retry_backoff_ms
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
        }
    }
}

impl Transport {
    /// The transports the settings enable: e-mail when `smtp_server` is set, the webhook when
    /// `webhook_url` is.
    pub fn from_settings(settings: &AlertSettings) -> Result<Vec<Transport>, AlertSetupError> {
        let timeout = Duration::from_secs(settings.send_timeout_secs.max(1));
        let mut transports = Vec::new();
        if !settings.smtp_server.trim().is_empty() {
            transports.push(smtp(settings, timeout)?);
        }
        if !settings.webhook_url.is_empty() {
            let url = reqwest::Url::parse(&settings.webhook_url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or(AlertSetupError::WebhookUrl)?;
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("rondo-reverse-sync/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(AlertSetupError::HttpClient)?;
            transports.push(Transport::Webhook { client, url });
        }
        Ok(transports)
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            Transport::Smtp { .. } => "e-mail",
            Transport::Webhook { .. } => "webhook",
        }
    }

    /// Where it sends, safe to log.
    pub(super) fn target(&self) -> String {
        match self {
            Transport::Smtp { server, .. } => server.clone(),
            Transport::Webhook { url, .. } => url.host_str().unwrap_or_default().to_string(),
        }
    }

    /// Sends one digest, each attempt bounded by the policy's timeout, retrying after each of its
    /// pauses; gives up with a log line.
    pub async fn deliver(&self, digest: &Digest, policy: &SendPolicy) {
        let attempts = policy.backoff.len() + 1;
        for attempt in 1..=attempts {
            match self.send_with_deadline(digest, policy).await {
                Ok(()) => {
                    tracing::info!(
                        transport = self.name(),
                        target = %self.target(),
                        subject = %digest.subject,
                        attempt,
                        "alert sent"
                    );
                    return;
                }
                Err(e) if attempt < attempts => {
                    tracing::warn!(
                        transport = self.name(),
                        target = %self.target(),
                        subject = %digest.subject,
                        attempt,
                        error = %e,
                        "alert send failed; retrying"
                    );
                    tokio::time::sleep(policy.backoff[attempt - 1]).await;
                }
                Err(e) => {
                    tracing::error!(
                        transport = self.name(),
                        target = %self.target(),
                        subject = %digest.subject,
                        attempt,
                        error = %e,
                        "alert send failed; giving up: {}",
                        digest.title()
                    );
                }
            }
        }
    }

    /// One attempt. lettre bounds only the TCP connect: a server that accepts and never speaks
    /// would hold the send for ever, so the whole conversation gets the policy's deadline.
    pub(super) async fn send_with_deadline(
        &self,
        digest: &Digest,
        policy: &SendPolicy,
    ) -> Result<(), SendError> {
        tokio::time::timeout(policy.timeout, self.send_once(digest))
            .await
            .unwrap_or(Err(SendError::Timeout(policy.timeout)))
    }

    async fn send_once(&self, digest: &Digest) -> Result<(), SendError> {
        match self {
            Transport::Smtp {
                mailer, from, to, ..
            } => {
                let mut builder = Message::builder()
                    .from(from.clone())
                    .subject(digest.title())
                    .header(ContentType::TEXT_PLAIN);
                for recipient in to {
                    builder = builder.to(recipient.clone());
                }
                mailer.send(builder.body(digest.text())?).await?;
                Ok(())
            }
            Transport::Webhook { client, url } => {
                let response = client
                    .post(url.clone())
                    .json(&digest.payload())
                    .send()
                    .await
                    .map_err(|e| SendError::Http(e.without_url()))?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(SendError::Status(response.status()))
                }
            }
        }
    }
}

fn smtp(settings: &AlertSettings, timeout: Duration) -> Result<Transport, AlertSetupError> {
    let (host, port) = parse_host_port(&settings.smtp_server)
        .ok_or_else(|| AlertSetupError::SmtpServer(settings.smtp_server.clone()))?;
    let tls_parameters = || TlsParameters::new(host.clone()).map_err(AlertSetupError::Tls);
    let tls = match settings.smtp_security.as_str() {
        "starttls" => Tls::Required(tls_parameters()?),
        "tls" => Tls::Wrapper(tls_parameters()?),
        "none" => Tls::None,
        other => return Err(AlertSetupError::SmtpSecurity(other.to_string())),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
        .port(port)
        .tls(tls)
        .timeout(Some(timeout));
    if !settings.smtp_username.trim().is_empty() {
        builder = builder.credentials(Credentials::new(
            settings.smtp_username.clone(),
            settings.smtp_password.expose().to_string(),
        ));
    }
    let mailbox = |setting: &'static str, value: &str| {
        value
            .parse::<Mailbox>()
            .map_err(|_| AlertSetupError::Address {
                setting,
                value: value.to_string(),
            })
    };
    Ok(Transport::Smtp {
        mailer: builder.build(),
        server: format!("{host}:{port}"),
        from: mailbox("from", &settings.from)?,
        to: settings
            .to
            .iter()
            .map(|to| mailbox("to", to))
            .collect::<Result<_, _>>()?,
    })
}
