//! `GET /api/history`: every change with its story, filtered, newest first, keyset paging.

use super::*;

#[tokio::test]
async fn the_history_filters_pages_by_keyset_and_tells_each_story() {
    let app = App::start().await;
    let failed = seed_failed(&app.store, "HIS0001").await;
    let conflict = seed_conflict_lost(&app.store, "HIS0002").await;
    let pending = seed_pending(&app.store, "HIS0003", "h3@example.nl").await;

    let (status, body) = app.api(Method::GET, "/api/history", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<i64> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![pending.0, conflict.0, failed.0], "newest first");
    assert!(body["next_before"].is_null());

    // The story: the conflict's decision, the failure's attempts and error.
    let (_, body) = app
        .api(Method::GET, "/api/history?status=conflict_lost", None)
        .await;
    let row = &body["changes"][0];
    assert_eq!(row["id"], conflict.0);
    assert_eq!(row["conflict_winner"], "sportlink");
    assert_eq!(row["conflict_sportlink_value"], "sportlink@example.nl");
    assert!(row["resolved_at"].is_string(), "{row}");
    let (_, body) = app
        .api(Method::GET, "/api/history?q=his0001&field=email", None)
        .await;
    let row = &body["changes"][0];
    assert_eq!(row["id"], failed.0);
    assert_eq!(row["status"], "failed");
    assert_eq!(row["attempts"], 1);
    assert!(row["last_error"].is_string());

    // A prefix of the KNVB id finds all three; paging by keyset, one at a time.
    let mut seen = Vec::new();
    let mut path = "/api/history?q=HIS&limit=1".to_string();
    loop {
        let (status, body) = app.api(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = body["changes"].as_array().unwrap();
        assert!(page.len() <= 1);
        seen.extend(page.iter().map(|c| c["id"].as_i64().unwrap()));
        match body["next_before"].as_i64() {
            Some(before) => path = format!("/api/history?q=HIS&limit=1&before={before}"),
            None => break,
        }
    }
    assert_eq!(seen, vec![pending.0, conflict.0, failed.0]);

    // Time: nothing detected before yesterday, everything since then.
    let yesterday = (Utc::now() - TimeDelta::days(1)).format("%Y-%m-%d");
    let (_, body) = app
        .api(
            Method::GET,
            &format!("/api/history?to={yesterday}&from=2020-01-01"),
            None,
        )
        .await;
    assert!(body["changes"].as_array().unwrap().is_empty(), "{body}");
    let (_, body) = app
        .api(Method::GET, &format!("/api/history?from={yesterday}"), None)
        .await;
    assert_eq!(body["changes"].as_array().unwrap().len(), 3);

    // Bad input: a 400 that names the part.
    for (query, words) in [
        ("status=lost", "unknown status"),
        ("field=shoe_size", "unknown field"),
        ("q=A%27%3B--", "q:"),
        ("from=yesterday", "from"),
        ("from=2026-02-02&to=2026-01-01", "from must be before to"),
        ("before=-3", "before"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
    ] {
        let (status, body) = app
            .api(Method::GET, &format!("/api/history?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(error_of(&body).contains(words), "{query}: {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_history_and_member_status() {
    let app = App::start().await;
    let (status, doc) = app.api(Method::GET, "/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/history",
        "/api/member-status",
        "/api/member-status/{knvb_id}",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
    assert!(doc["components"]["securitySchemes"]["read_token"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn the_operator_page_is_dutch_unless_the_browser_or_the_switch_asks_for_english() {
    let app = App::start().await;
    seed_failed(&app.store, "LNG0001").await;
    let get = |path: &str, headers: &[(&str, &str)]| {
        // Replaces the client's default (English) for these requests; none asked: none sent.
        let accept = headers
            .iter()
            .find(|(name, _)| *name == "accept-language")
            .map_or("", |(_, value)| *value);
        let mut request = app
            .client
            .get(app.url(path))
            .bearer_auth(TOKEN)
            .header("accept-language", accept);
        for (name, value) in headers.iter().filter(|(n, _)| *n != "accept-language") {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let dutch = get("/", &[]).await.unwrap().text().await.unwrap();
    assert!(dutch.contains("<html lang=\"nl\""), "{dutch}");
    assert!(dutch.contains("Mislukt, conflict verloren en overgeslagen (1)"));
    let english = get("/", &[("accept-language", "en-GB,en;q=0.9,nl;q=0.5")])
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("Failed, conflict lost and skipped (1)"));
    // The switch: ?lang=en answers in English and remembers it.
    let switched = get("/history?lang=en", &[]).await.unwrap();
    let cookie = switched.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("rrs_lang=en;"), "{cookie}");
    assert!(switched
        .text()
        .await
        .unwrap()
        .contains("Every change with its story"));
    let remembered = get("/members/LNG0001", &[("cookie", "rrs_lang=en")])
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(remembered.contains("Member LNG0001"), "{remembered}");
    // Bad input on the pages: a 400 that says what was wrong, in the reader's language.
    let bad = get("/members/no%20such", &[]).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("is geen KNVB-id"));
    let bad = get("/history/requeue?status=lost", &[("accept-language", "en")])
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad
        .text()
        .await
        .unwrap()
        .contains("The filter is not right: unknown status"));
    app.stop().await;
}

#[tokio::test]
async fn the_history_is_searchable_by_name() {
    let app = App::start().await;
    let named = |knvb: &str, email: &str, modified, origin| {
        let mut json = person_json(knvb, email, modified);
        json["acf"]["first_name"] = json!("Anne-Fleur");
        json["acf"]["infix"] = json!("van 't");
        json["acf"]["last_name"] = json!("Hof");
        Sighting {
            person: Person::from_json(&json).unwrap(),
            source: Source::Webhook,
            origin,
        }
    };
    see(
        &app.store,
        named("NAM0001", "old@example.nl", minutes_ago(60), None),
    )
    .await;
    let ids = see(
        &app.store,
        named(
            "NAM0001",
            "new@example.nl",
            minutes_ago(30),
            Some(Origin::UserEdit),
        ),
    )
    .await;
    seed_pending(&app.store, "NAM0002", "other@example.nl").await;
    for q in ["hof", "Anne-Fleur", "van%20%27t%20Hof", "NAM0001"] {
        let (status, body) = app
            .api(Method::GET, &format!("/api/history?q={q}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        let found: Vec<i64> = body["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(found, vec![ids[0].0], "{q}: {body}");
        assert_eq!(body["changes"][0]["member_name"], "Anne-Fleur van 't Hof");
    }
    // Wildcards are letters here, not patterns.
    let (status, body) = app.api(Method::GET, "/api/history?q=%25", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, _, page) = app
        .send(Method::GET, "/members/NAM0001", Some(TOKEN), None)
        .await;
    assert!(
        page.contains("Anne-Fleur van &#39;t Hof") || page.contains("Anne-Fleur van 't Hof"),
        "{page}"
    );
    app.stop().await;
}
