//! The read-only token (`admin.read_token`) reads member status and nothing else: one test per
//! action it must not take, each checking that nothing happened behind the refusal, and one
//! that it reads what the WordPress box shows. (That it cannot resume a paused executor is in
//! `paused`, on a really tripped one.)

use super::*;

/// Sends `method path` with the read-only token and asserts a 401 that names no token.
async fn refused(app: &App, method: Method, path: &str, body: Option<Value>) {
    let (status, headers, text) = app.send(method.clone(), path, Some(READ_TOKEN), body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {text}");
    assert!(
        headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer")),
        "{method} {path}"
    );
    assert!(
        !text.contains(READ_TOKEN) && !text.contains(TOKEN),
        "{text}"
    );
}

#[tokio::test]
async fn the_read_only_token_cannot_requeue() {
    let app = App::start().await;
    let failed = seed_failed(&app.store, "RDO0001").await;
    refused(
        &app,
        Method::POST,
        &format!("/api/changes/{failed}/requeue"),
        None,
    )
    .await;
    refused(
        &app,
        Method::POST,
        "/api/changes/requeue",
        Some(json!({"ids": [failed.0]})),
    )
    .await;
    assert_eq!(change_status(&app.store, failed).await, "failed");
    assert!(!app.woken());
    app.stop().await;
}

#[tokio::test]
async fn the_read_only_token_cannot_replay_or_redetect() {
    let app = App::start().await;
    seed_delivery(
        &app.store,
        "d-read-only",
        "person.updated",
        person_json("RDO0002", "replayed@example.nl", minutes_ago(1)),
    )
    .await;
    refused(
        &app,
        Method::POST,
        "/api/deliveries/d-read-only/replay",
        None,
    )
    .await;
    refused(&app, Method::POST, "/api/members/RED0001/redetect", None).await;
    let changes = app
        .store
        .read(|db| db.list_changes(&[], None, 10, 0))
        .await
        .unwrap();
    assert!(changes.is_empty(), "nothing was detected: {changes:?}");
    assert!(!app.woken());
    app.stop().await;
}

#[tokio::test]
async fn the_read_only_token_cannot_start_a_poll() {
    let app = App::start().await;
    refused(&app, Method::POST, "/api/poll", Some(json!({"full": true}))).await;
    refused(&app, Method::POST, "/api/poll", None).await;
    assert_eq!(app.rondo_requests(), 0, "Rondo Club was not asked");
    assert!(app.poll_runs().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_read_only_token_cannot_report_forward_sync_writes() {
    let app = App::start().await;
    refused(
        &app,
        Method::POST,
        "/api/forward-sync/report",
        Some(json!({"knvb_id": "RDO0003", "fields": {"email": "a@b.nl"},
                    "rondo_club_modified": "2026-11-26T10:00:00Z"})),
    )
    .await;
    let member = app
        .store
        .read(|db| db.member(&KnvbId::parse("RDO0003").unwrap()))
        .await
        .unwrap();
    assert!(member.is_none());
    app.stop().await;
}

#[tokio::test]
async fn the_read_only_token_reads_nothing_but_member_status() {
    let app = App::start().await;
    seed_failed(&app.store, "RDO0004").await;
    for path in [
        "/api/members/RDO0004",
        "/api/changes?status=failed",
        "/api/changes",
        "/api/conflicts",
        "/api/runs",
        "/api/status",
        "/api/history",
        "/api/history?q=RDO0004",
        "/api/openapi.json",
        "/api/no-such-endpoint",
        "/metrics",
    ] {
        let (status, _, text) = app.send(Method::GET, path, Some(READ_TOKEN), None).await;
        if path == "/metrics" {
            // `/metrics` is not behind a token at all (it stays local behind the proxy), and
            // holds no member.
            assert!(!text.contains("RDO0004"), "{path}: {text}");
            continue;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED, "GET {path}: {text}");
        assert!(!text.contains("RDO0004"), "GET {path}: {text}");
    }
    // The operator page: neither as a bearer token nor at the sign-in form.
    let (status, _, text) = app.send(Method::GET, "/", Some(READ_TOKEN), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!text.contains("RDO0004"), "{text}");
    let response = app
        .client
        .post(app.url("/login"))
        .form(&[("token", READ_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("set-cookie").is_none());
    app.stop().await;
}

#[tokio::test]
async fn the_read_only_token_reads_member_status_in_the_box_terms() {
    let app = App::start().await;
    let pending = seed_pending(&app.store, "RDO0005", "nieuw@example.nl").await;
    let refused_id = seed_pending(&app.store, "RDO0006", "fout@example.nl").await;
    let now = Utc::now();
    app.store
        .write(move |db| {
            db.record_failure(
                &[refused_id],
                "page general: Sportlink refused the save of section \"Communicatie\": Ongeldig e-mailadres",
                now + TimeDelta::hours(1),
                5,
                now,
            )
        })
        .await
        .unwrap();

    let (status, _, text) = app
        .send(
            Method::GET,
            "/api/member-status/rdo0005",
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["knvb_id"], "RDO0005");
    assert_eq!(body["known"], true);
    assert_eq!(body["fields"][0]["field"], "email");
    assert_eq!(body["fields"][0]["state"], "waiting");
    assert_eq!(body["fields"][0]["value"], "nieuw@example.nl");
    assert_eq!(change_status(&app.store, pending).await, "pending");

    let (_, _, text) = app
        .send(
            Method::GET,
            "/api/member-status/RDO0006",
            Some(READ_TOKEN),
            None,
        )
        .await;
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["fields"][0]["state"], "refused");
    assert_eq!(
        body["fields"][0]["sportlink_message"],
        "Ongeldig e-mailadres"
    );

    // Someone never seen: known false, nothing to show. A bad id: 400 with a reason.
    let (status, _, text) = app
        .send(
            Method::GET,
            "/api/member-status/NEW0001",
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({"knvb_id": "NEW0001", "known": false, "fields": []})
    );
    let (status, _, text) = app
        .send(
            Method::GET,
            "/api/member-status/no%20such",
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    let (status, _, _) = app
        .send(
            Method::GET,
            "/api/member-status/RDO0005?days=0",
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The dashboard's counts.
    let (status, _, text) = app
        .send(Method::GET, "/api/member-status", Some(READ_TOKEN), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let counts: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(counts["waiting"], 1, "{counts}");
    assert_eq!(counts["refused"], 1, "{counts}");

    // The admin token reads it too; a wrong token does not.
    let (status, _) = app
        .api(Method::GET, "/api/member-status/RDO0005", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for token in [None, Some("wrong-token"), Some(WEBHOOK_SECRET)] {
        let (status, _, _) = app
            .send(Method::GET, "/api/member-status/RDO0005", token, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    app.stop().await;
}
