//! Alerts end to end: the real alerter sends digests to an SMTP sink and a webhook receiver written
//! here, both on 127.0.0.1. Conditions are awaited with deadlines; nothing sleeps to synchronise.

#[path = "alerts/smtp_sink.rs"]
mod smtp_sink;
#[path = "alerts/webhook_receiver.rs"]
mod webhook_receiver;

use std::time::Duration;

use rondo_reverse_sync::alerts::{AlertEvent, AlertSender, Alerter};
use rondo_reverse_sync::config::{AlertSettings, Secret};
use rondo_reverse_sync::domain::{ChangeId, FieldName, KnvbId};
use rrs_testkit::logs;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use smtp_sink::SmtpSink;
use webhook_receiver::WebhookReceiver;

const SMTP_PASSWORD: &str = "smtp-pw-9f3k-DO-NOT-LEAK";
const WEBHOOK_TOKEN: &str = "T0K3N-in-the-path";
const DEADLINE: Duration = Duration::from_secs(10);

fn smtp_settings(sink: &SmtpSink) -> AlertSettings {
    AlertSettings {
        smtp_server: sink.address(),
        smtp_security: "none".into(),
        smtp_username: "alerts@example.nl".into(),
        smtp_password: Secret::new(SMTP_PASSWORD),
        from: "Rondo Reverse Sync <alerts@example.nl>".into(),
        to: vec![
            "leden@example.nl".into(),
            "Secretaris <secretaris@example.nl>".into(),
        ],
        cooldown_secs: 1,
        gather_ms: 100,
        retry_backoff_ms: vec![50, 50],
        send_timeout_secs: 2,
        ..AlertSettings::default()
    }
}

fn failed(knvb: &str, change: i64) -> AlertEvent {
    AlertEvent::ChangeFailed {
        change_id: ChangeId(change),
        knvb_id: KnvbId::parse(knvb).unwrap(),
        field: FieldName::parse("email_1").unwrap(),
        reason: format!("section Contact not found (attempt log {change})"),
    }
}

struct Running {
    sender: AlertSender,
    task: JoinHandle<()>,
    cancel: CancellationToken,
}

fn start(settings: &AlertSettings) -> Running {
    logs::capture();
    let cancel = CancellationToken::new();
    let (sender, task) = Alerter::spawn(settings, cancel.clone()).expect("valid alert settings");
    Running {
        sender,
        task,
        cancel,
    }
}

impl Running {
    /// Cancels the alerter and waits for it to flush and stop.
    async fn stop(self) -> Duration {
        let started = Instant::now();
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the alerter stops within its shutdown grace")
            .expect("the alerter task does not panic");
        started.elapsed()
    }
}

fn assert_no_secret(text: &str) {
    assert!(
        !text.contains(SMTP_PASSWORD),
        "SMTP password leaked: {text}"
    );
    assert!(
        !text.contains(WEBHOOK_TOKEN),
        "webhook URL token leaked: {text}"
    );
}

mod smtp {
    use super::*;

    #[tokio::test]
    async fn several_failures_of_one_member_within_the_cooldown_are_one_digest() {
        let sink = SmtpSink::start().await;
        let alerter = start(&smtp_settings(&sink));

        let started = Instant::now();
        alerter.sender.send(failed("ABC1234", 1));
        let first = sink.wait_for(1, DEADLINE).await;
        for change in [2, 3, 4] {
            alerter.sender.send(failed("ABC1234", change));
        }
        alerter.sender.send(AlertEvent::ConflictLost {
            change_id: ChangeId(5),
            knvb_id: KnvbId::parse("ABC1234").unwrap(),
            field: FieldName::parse("mobile_1").unwrap(),
            sportlink_value: "0611111111".into(),
            rondo_club_value: "0622222222".into(),
            reason: "sportlink_newer".into(),
        });
        let mails = sink.wait_for(2, DEADLINE).await;
        // The first message left after the gathering window (100 ms); the digest only when the
        // cool-down (1 s) after that had passed.
        assert!(
            started.elapsed() >= Duration::from_millis(1_100),
            "the digest waited for the end of the cool-down, not {:?}",
            started.elapsed()
        );
        alerter.stop().await;
        let mails_after_stop = sink.mails();
        assert_eq!(
            mails_after_stop.len(),
            2,
            "exactly the first alert and one digest"
        );

        let first = &first[0];
        assert!(
            first.subject().contains("member ABC1234: 1 failed"),
            "{}",
            first.subject()
        );
        assert!(first.body().contains("change 1 (ABC1234, email_1) failed"));
        assert!(!first.body().contains("change 2 "));

        let digest = &mails[1];
        assert_eq!(
            digest.subject(),
            "rondo-reverse-sync: member ABC1234: 1 conflict lost, 3 failed"
        );
        for change in [2, 3, 4] {
            assert!(
                digest
                    .body()
                    .contains(&format!("change {change} (ABC1234, email_1) failed")),
                "change {change} listed in {}",
                digest.body()
            );
        }
        assert!(digest.body().contains("Sportlink keeps \"0611111111\""));
        assert!(
            !digest.body().contains("change 1 "),
            "already sent: {}",
            digest.body()
        );

        for mail in &mails_after_stop {
            assert_eq!(mail.mail_from, "alerts@example.nl");
            assert_eq!(mail.rcpt_to, ["leden@example.nl", "secretaris@example.nl"]);
            assert_no_secret(&mail.data);
        }
        // The password did reach the server (so its absence elsewhere means something).
        assert!(sink.auth_seen().iter().any(|a| a.contains(SMTP_PASSWORD)));
        assert_no_secret(&logs::text());
    }

    #[tokio::test]
    async fn two_members_get_separate_messages() {
        let sink = SmtpSink::start().await;
        let alerter = start(&smtp_settings(&sink));
        alerter.sender.send(failed("AAA111", 1));
        alerter.sender.send(failed("BBB222", 2));
        alerter.sender.send(failed("AAA111", 3));
        sink.wait_for(2, DEADLINE).await;
        alerter.stop().await;

        let mails = sink.mails();
        assert_eq!(mails.len(), 2);
        let a = mails
            .iter()
            .find(|m| m.subject().contains("AAA111"))
            .expect("a message about AAA111");
        let b = mails
            .iter()
            .find(|m| m.subject().contains("BBB222"))
            .expect("a message about BBB222");
        assert!(a.body().contains("change 1 (AAA111") && a.body().contains("change 3 (AAA111"));
        assert!(!a.body().contains("BBB222"));
        assert!(b.body().contains("change 2 (BBB222") && !b.body().contains("AAA111"));
        assert_no_secret(&logs::text());
    }

    #[tokio::test]
    async fn the_circuit_breaker_is_alerted_and_its_reset_is_flushed_at_shutdown() {
        let sink = SmtpSink::start().await;
        let mut settings = smtp_settings(&sink);
        settings.cooldown_secs = 3_600;
        let alerter = start(&settings);
        alerter.sender.send(AlertEvent::CircuitBreakerTripped {
            reason: "section \"Adres\" not found on MemberAddresses".into(),
            failures: 5,
        });
        let mails = sink.wait_for(1, DEADLINE).await;
        assert_eq!(
            mails[0].subject(),
            "rondo-reverse-sync: circuit breaker: 1 tripped"
        );
        assert!(mails[0]
            .body()
            .contains("circuit breaker tripped after 5 consecutive failures"));
        assert!(mails[0].body().contains("section \"Adres\" not found"));

        // Within the hour-long cool-down the reset waits; shutdown sends it anyway.
        alerter.sender.send(AlertEvent::CircuitBreakerReset);
        alerter.stop().await;
        let mails = sink.mails();
        assert_eq!(mails.len(), 2);
        assert_eq!(
            mails[1].subject(),
            "rondo-reverse-sync: circuit breaker: 1 reset"
        );
    }

    #[tokio::test]
    async fn with_starttls_or_tls_required_the_password_never_goes_over_plain_text() {
        // The sink offers no STARTTLS and speaks no TLS: lettre must refuse before AUTH.
        let sink = SmtpSink::start().await;
        for (security, member) in [("starttls", "STARTTLS1"), ("tls", "TLS1")] {
            let mut settings = smtp_settings(&sink);
            settings.smtp_security = security.into();
            settings.retry_backoff_ms = vec![10];
            let alerter = start(&settings);
            alerter.sender.send(failed(member, 1));
            let target = format!("target={}", sink.address());
            let subject = format!("subject=member {member} ");
            logs::wait_for_line(
                |line| {
                    line.contains("giving up") && line.contains(&target) && line.contains(&subject)
                },
                DEADLINE,
            )
            .await;
            alerter.stop().await;
        }
        assert!(sink.mails().is_empty(), "{:?}", sink.mails());
        assert!(sink.auth_seen().is_empty(), "AUTH was sent over plain text");
        assert_no_secret(&logs::text());
    }
}

mod webhook {
    use super::*;

    fn webhook_settings(receiver: &WebhookReceiver) -> AlertSettings {
        AlertSettings {
            webhook_url: receiver.url(WEBHOOK_TOKEN),
            cooldown_secs: 1,
            gather_ms: 100,
            retry_backoff_ms: vec![20, 20],
            send_timeout_secs: 2,
            ..AlertSettings::default()
        }
    }

    #[tokio::test]
    async fn digests_are_posted_as_json() {
        let receiver = WebhookReceiver::start(200).await;
        let alerter = start(&webhook_settings(&receiver));
        alerter.sender.send(failed("ABC1234", 7));
        alerter.sender.send(AlertEvent::ConflictLost {
            change_id: ChangeId(8),
            knvb_id: KnvbId::parse("abc1234").unwrap(),
            field: FieldName::parse("addresses").unwrap(),
            sportlink_value: "Dorpsstraat 1".into(),
            rondo_club_value: "Kerkstraat 2".into(),
            reason: "sportlink_newer".into(),
        });
        alerter.sender.send(AlertEvent::CircuitBreakerTripped {
            reason: "input not found".into(),
            failures: 3,
        });
        let posts = receiver.wait_for(2, DEADLINE).await;
        alerter.stop().await;
        assert_eq!(receiver.posts().len(), 2);

        let member = posts
            .iter()
            .find(|p| p.body["subject"]["kind"] == "member")
            .expect("a member digest");
        assert_eq!(member.content_type, "application/json");
        assert_eq!(member.body["source"], "rondo-reverse-sync");
        assert_eq!(member.body["subject"]["knvb_id"], "ABC1234");
        assert_eq!(
            member.body["title"],
            "rondo-reverse-sync: member ABC1234: 1 conflict lost, 1 failed"
        );
        let events = member.body["events"].as_array().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["kind"], "change_failed");
        assert_eq!(events[0]["change_id"], 7);
        assert_eq!(events[0]["field"], "email_1");
        assert_eq!(events[1]["kind"], "conflict_lost");
        assert_eq!(events[1]["rondo_club_value"], "Kerkstraat 2");
        assert!(events[1]["at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(member.body["omitted"], 0);

        let breaker = posts
            .iter()
            .find(|p| p.body["subject"]["kind"] == "circuit_breaker")
            .expect("a circuit-breaker digest");
        assert_eq!(breaker.body["events"][0]["kind"], "circuit_breaker_tripped");
        assert_eq!(breaker.body["events"][0]["failures"], 3);
    }

    #[tokio::test]
    async fn a_failing_receiver_is_retried_a_bounded_number_of_times() {
        let receiver = WebhookReceiver::start(503).await;
        let alerter = start(&webhook_settings(&receiver));
        alerter.sender.send(failed("RETRY01", 1));
        receiver.wait_for(3, DEADLINE).await;
        alerter.stop().await;
        assert_eq!(
            receiver.posts().len(),
            3,
            "one attempt and two retries, no more"
        );
        let log = logs::text();
        assert!(
            log.contains("alert send failed; giving up"),
            "the failure is logged: {log}"
        );
        assert_no_secret(&log);
    }
}

mod resilience {
    use super::smtp_sink::Blackhole;
    use super::*;

    #[tokio::test]
    async fn a_transport_that_is_down_does_not_block_or_crash_the_alerter() {
        // An SMTP server that accepts connections and never answers, next to a working webhook.
        let blackhole = Blackhole::start().await;
        let receiver = WebhookReceiver::start(200).await;
        let settings = AlertSettings {
            smtp_server: blackhole.address(),
            smtp_security: "none".into(),
            smtp_username: "alerts@example.nl".into(),
            smtp_password: Secret::new(SMTP_PASSWORD),
            from: "alerts@example.nl".into(),
            to: vec!["leden@example.nl".into()],
            webhook_url: receiver.url(WEBHOOK_TOKEN),
            cooldown_secs: 1,
            gather_ms: 100,
            retry_backoff_ms: vec![50],
            send_timeout_secs: 1,
        };
        let alerter = start(&settings);

        alerter.sender.send(failed("DOWN001", 1));
        receiver.wait_for(1, DEADLINE).await;
        // Still alive after the SMTP attempts time out: a new member's alert gets through.
        let gave_up = format!("target={}", blackhole.address());
        logs::wait_for_line(
            |line| line.contains("giving up") && line.contains(&gave_up),
            DEADLINE,
        )
        .await;
        alerter.sender.send(failed("DOWN002", 2));
        let posts = receiver.wait_for(2, DEADLINE).await;
        assert_eq!(posts[1].body["subject"]["knvb_id"], "DOWN002");

        // A flood beyond the queue never blocks the caller: what does not fit is dropped (and
        // logged, below), and the loop returns.
        for i in 0..5_000 {
            alerter.sender.send(failed("FLOOD01", i));
        }

        let stopping = alerter.stop().await;
        eprintln!("the alerter stopped in {stopping:?} with a dead SMTP server");
        assert!(
            blackhole.connections() >= 2,
            "the SMTP server was tried and retried"
        );
        let log = logs::text();
        assert!(log.contains("alert queue full; alert dropped"), "{log}");
        assert_no_secret(&log);
        for post in receiver.posts() {
            assert_no_secret(&post.body.to_string());
        }
    }

    #[tokio::test]
    async fn the_alerter_stops_when_every_sender_is_dropped_and_flushes() {
        let sink = SmtpSink::start().await;
        let mut settings = smtp_settings(&sink);
        settings.gather_ms = 60_000;
        let alerter = start(&settings);
        alerter.sender.send(failed("LAST001", 1));
        drop(alerter.sender);
        tokio::time::timeout(DEADLINE, alerter.task)
            .await
            .expect("stops without a cancel")
            .unwrap();
        let mails = sink.mails();
        assert_eq!(mails.len(), 1);
        assert!(mails[0].body().contains("change 1 (LAST001"));
    }
}

/// `rondo-reverse-sync test-alert`, configured through the environment as in production.
mod cli {
    use super::smtp_sink::Blackhole;
    use super::*;

    async fn test_alert(env: &[(&str, String)]) -> (Option<i32>, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rondo-reverse-sync"));
        command
            .arg("test-alert")
            .current_dir(dir.path())
            .env_remove("RRS_CONFIG")
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let out = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("test-alert finishes")
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }

    fn smtp_env(server: String) -> Vec<(&'static str, String)> {
        vec![
            ("RRS_ALERTS__SMTP_SERVER", server),
            ("RRS_ALERTS__SMTP_SECURITY", "none".into()),
            ("RRS_ALERTS__SMTP_USERNAME", "alerts@example.nl".into()),
            ("RRS_ALERTS__SMTP_PASSWORD", SMTP_PASSWORD.into()),
            ("RRS_ALERTS__FROM", "alerts@example.nl".into()),
            ("RRS_ALERTS__TO", "[\"leden@example.nl\"]".into()),
            ("RRS_ALERTS__SEND_TIMEOUT_SECS", "1".into()),
        ]
    }

    #[tokio::test]
    async fn test_alert_reaches_every_transport_and_says_so() {
        let sink = SmtpSink::start().await;
        let receiver = WebhookReceiver::start(200).await;
        let mut env = smtp_env(sink.address());
        env.push(("RRS_ALERTS__WEBHOOK_URL", receiver.url(WEBHOOK_TOKEN)));
        let (code, output) = test_alert(&env).await;
        assert_eq!(code, Some(0), "{output}");
        assert!(
            output.contains(&format!("e-mail   {}: sent", sink.address())),
            "{output}"
        );
        assert!(output.contains("webhook  127.0.0.1: sent"), "{output}");
        let mails = sink.mails();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].subject(), "rondo-reverse-sync: test alert");
        assert!(mails[0]
            .body()
            .contains("test alert: sent by `rondo-reverse-sync test-alert`"));
        let posts = receiver.posts();
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].body["subject"]["kind"], "test");
        assert_eq!(posts[0].body["events"][0]["kind"], "test");
        assert_no_secret(&output);
    }

    #[tokio::test]
    async fn a_transport_that_is_down_fails_the_test_alert_without_secrets() {
        let blackhole = Blackhole::start().await;
        let (code, output) = test_alert(&smtp_env(blackhole.address())).await;
        assert_eq!(code, Some(1), "{output}");
        assert!(output.contains("FAILED: no answer within 1s"), "{output}");
        assert!(
            output.contains("1 of 1 alert transports failed"),
            "{output}"
        );
        assert_no_secret(&output);
    }

    #[tokio::test]
    async fn test_alert_without_a_transport_is_a_configuration_error() {
        let (code, output) = test_alert(&[]).await;
        assert_eq!(code, Some(2), "{output}");
        assert!(output.contains("no transport configured"), "{output}");
    }
}
