//! HTTP-level tests of the Sportlink simulator: login, JSON endpoints, saves and fault switches.
//! Everything runs against 127.0.0.1 with per-test simulators; no test sleeps to synchronise.

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use rrs_standins::simulator::{
    totp_code, Faults, FlagEncoding, LoginErrorElement, MemberIdIn, MissingSection, SaveAnswer,
    SaveMethod, SimConfig, SimMember, Simulator, Variant, SEED_ENV,
};
use serde_json::{json, Value};

const USER: &str = "clubadmin";
const PASSWORD: &str = "correct horse";
const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const MEMBER: &str = "ABC1234";
const COMMUNICATION: &str = "/member/persondata/MemberCommunication";
const ADDRESSES: &str = "/member/persondata/MemberAddresses";
const FREE_FIELDS: &str = "/remarks/MemberFreeFields";
const HEADER: &str = "/member/MemberHeader";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The code an authenticator shows `steps_ahead` windows from now (the server accepts +1).
fn code(steps_ahead: u64) -> String {
    totp_code(SECRET, now() + 30 * steps_ahead).expect("valid test secret")
}

fn seeded_member() -> SimMember {
    let mut m = SimMember::new(MEMBER, "Jan Jansen");
    m.communication.email1 = "jan@example.nl".into();
    m.communication.mobile1 = "+31612345678".into();
    m.address.street_name = "Dorpsstraat".into();
    m.address.address_number = "1".into();
    m.address.city = "Ergens".into();
    m.set_remark(3, "1042");
    m.set_remark(8, "2023-10-30");
    m
}

async fn start() -> Simulator {
    let sim = Simulator::start(SimConfig {
        username: USER.into(),
        password: PASSWORD.into(),
        otp_secret_base32: SECRET.into(),
        port: 0,
        clock: rondo_reverse_sync::clock::system(),
    })
    .await
    .expect("simulator starts");
    sim.state().seed_member(seeded_member());
    sim
}

/// A browser-like client: no automatic redirects, one session cookie carried by hand.
struct Client {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Client {
    fn new(sim: &Simulator) -> Client {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        Client {
            http,
            base: sim.base_url(),
            cookie: None,
        }
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(cookie) => request.header(COOKIE, cookie),
            None => request,
        }
    }

    async fn get(&self, path: &str) -> Response {
        let request = self.with_cookie(self.http.get(self.url(path)));
        request.send().await.expect("GET")
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        let request = self.with_cookie(self.http.post(self.url(path)).form(form));
        request.send().await.expect("POST form")
    }

    async fn post_raw(&self, path: &str, body: &str) -> Response {
        let request = self
            .http
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/json");
        let request = self.with_cookie(request.body(body.to_owned()));
        request.send().await.expect("POST json")
    }

    async fn save(&self, endpoint: &str, body: &Value) -> Response {
        let path = format!("{endpoint}?PersonId={MEMBER}");
        self.post_raw(&path, &body.to_string()).await
    }

    async fn read(&self, endpoint: &str) -> Response {
        self.get(&format!("{endpoint}?PersonId={MEMBER}")).await
    }

    /// Password step from a login page; returns the response to the form POST.
    async fn submit_password(&self, login_page_url: &str, user: &str, password: &str) -> Response {
        let page = self.get(login_page_url).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("login page");
        for id in [r#"id="username""#, r#"id="password""#, r#"id="kc-login""#] {
            assert!(html.contains(id), "login page lacks {id}");
        }
        let action = form_action(&html);
        self.post_form(&action, &[("username", user), ("password", password)])
            .await
    }

    /// OTP step: opens the code form and submits `otp`.
    async fn submit_otp(&self, otp_page_url: &str, otp: &str) -> Response {
        let page = self.get(otp_page_url).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("otp page");
        assert!(html.contains(r#"id="otp""#) && html.contains(r#"id="kc-login""#));
        self.post_form(&form_action(&html), &[("otp", otp)]).await
    }

    /// The whole login, starting from a protected page; keeps the session cookie.
    async fn login(&mut self, start_path: &str, otp: &str) -> Response {
        let redirect = self.get(start_path).await;
        assert_eq!(redirect.status(), StatusCode::FOUND);
        let login_url = location(&redirect);
        let after_password = self.submit_password(&login_url, USER, PASSWORD).await;
        assert_eq!(after_password.status(), StatusCode::FOUND);
        let after_otp = self.submit_otp(&location(&after_password), otp).await;
        if let Some(cookie) = session_cookie(&after_otp) {
            self.cookie = Some(cookie);
        }
        after_otp
    }

    async fn logged_in(sim: &Simulator) -> Client {
        let mut client = Client::new(sim);
        let response = client.login("/", &code(0)).await;
        assert_eq!(response.status(), StatusCode::FOUND, "login succeeds");
        client
    }
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

fn session_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| {
            pair.starts_with("SPORTLINK_SESSION=") && pair.len() > "SPORTLINK_SESSION=".len()
        })
        .map(str::to_owned)
}

/// The `action` of the page's form, HTML-unescaped.
fn form_action(html: &str) -> String {
    let start = html.find(r#"action=""#).expect("a form action") + r#"action=""#.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].replace("&amp;", "&")
}

async fn json_of(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

#[tokio::test]
async fn login_with_totp_returns_to_the_requested_page() {
    let sim = start().await;
    let mut client = Client::new(&sim);
    let page = format!("/member/member-details/{MEMBER}/general");

    let response = client.login(&page, &code(0)).await;

    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), page);
    assert!(client.cookie.is_some(), "a session cookie is set");
    let shell = client.get(&page).await;
    assert_eq!(shell.status(), StatusCode::OK);
    let html = shell.text().await.expect("page");
    assert!(html.contains("Wijzig lidsoort"));
    assert!(
        !html.contains("<section"),
        "sections are rendered by JS, not served"
    );
    let dashboard = client.get("/").await.text().await.expect("dashboard");
    assert!(dashboard.contains(r#"id="panelHeader-dashboard""#) && dashboard.contains("<nav"));
    assert!(dashboard.contains(&format!("/member/member-details/{MEMBER}/general")));
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_password_stays_on_the_login_page_with_an_error() {
    let sim = start().await;
    let client = Client::new(&sim);
    let login_url = location(&client.get("/").await);
    assert!(login_url.starts_with("/auth/realms/club/protocol/openid-connect/auth?redirect_uri="));

    let response = client.submit_password(&login_url, USER, "wrong").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(session_cookie(&response).is_none());
    let html = response.text().await.expect("page");
    assert!(html.contains(r#"id="input-error""#));
    assert!(html.contains("Ongeldige gebruikersnaam of wachtwoord."));
    assert!(html.contains(r#"id="password""#), "still the password form");
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_and_reused_codes_are_refused_and_the_next_window_works() {
    let sim = start().await;
    let first = code(0);
    let _client = Client::logged_in(&sim).await;

    let mut second = Client::new(&sim);
    let reused = second.login("/", &first).await;
    assert_eq!(reused.status(), StatusCode::OK, "reused code refused");
    let html = reused.text().await.expect("page");
    assert!(html.contains("Ongeldige authenticatiecode.") && html.contains(r#"id="otp""#));

    let mut third = Client::new(&sim);
    let wrong = third.login("/", "000000x").await;
    assert_eq!(wrong.status(), StatusCode::OK);

    let mut fourth = Client::new(&sim);
    let next_window = fourth.login("/", &code(1)).await;
    assert_eq!(
        next_window.status(),
        StatusCode::FOUND,
        "next window's code is fine"
    );

    sim.state().update_faults(|f| f.refuse_reused_totp = false);
    let mut fifth = Client::new(&sim);
    let allowed = fifth.login("/", &code(1)).await;
    assert_eq!(
        allowed.status(),
        StatusCode::FOUND,
        "reuse allowed when the fault is off"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn login_secrets_are_never_logged() {
    let sim = start().await;
    let otp = code(0);
    let mut client = Client::new(&sim);
    client.login("/", &otp).await;

    let log = sim.state().request_log();
    let text = format!("{log:?}");
    assert!(!text.contains(PASSWORD), "password leaked into the log");
    assert!(!text.contains(&otp), "OTP code leaked into the log");
    let password_post = log
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/authenticate"))
        .expect("password POST logged");
    assert_eq!(password_post.field("password"), Some("[redacted]"));
    assert_eq!(password_post.field("username"), Some(USER));
    sim.shutdown().await;
}

#[tokio::test]
async fn json_endpoints_return_the_seeded_member() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;

    let communication = json_of(client.read(COMMUNICATION).await).await;
    assert_eq!(communication["Email1"], "jan@example.nl");
    assert_eq!(communication["Mobile1"], "+31612345678");
    assert_eq!(communication["Telephone2"], "");
    let addresses = json_of(client.read(ADDRESSES).await).await;
    assert_eq!(addresses["Addresses"][0]["AddressType"], "Home");
    assert_eq!(addresses["Addresses"][0]["StreetName"], "Dorpsstraat");
    assert_eq!(addresses["Addresses"][0]["CountryCode"], "NL");
    let free = json_of(client.read(FREE_FIELDS).await).await;
    assert_eq!(free["FreeFields"]["Remarks3"]["Value"], "1042");
    assert_eq!(free["FreeFields"]["Remarks8"]["Value"], "2023-10-30");
    let header = json_of(client.read(HEADER).await).await;
    assert_eq!(header["PersonId"], MEMBER);
    assert_eq!(header["FullName"], "Jan Jansen");
    assert_eq!(header["MemberStatus"], "Actief");
    assert_eq!(header["HasFinancialTransferBlockOwnClub"], false);
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_members_and_bad_input_are_answered_not_panicked() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;

    let unknown = client.get(&format!("{COMMUNICATION}?PersonId=NOPE")).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        client.get(COMMUNICATION).await.status(),
        StatusCode::BAD_REQUEST
    );
    let page = client.get("/member/member-details/NOPE/general").await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let tab = client
        .get(&format!("/member/member-details/{MEMBER}/bogus"))
        .await;
    assert_eq!(tab.status(), StatusCode::NOT_FOUND);
    for body in [
        "{not json",
        "[1,2]",
        r#"{"City":"X"}"#,
        r#"{"Email1":{"a":1}}"#,
    ] {
        let path = format!("{COMMUNICATION}?PersonId={MEMBER}");
        let response = client.post_raw(&path, body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "body {body}");
        assert!(json_of(response).await["message"].is_string());
    }
    let bad_flag = client
        .save(HEADER, &json!({"HasFinancialTransferBlockOwnClub": 3}))
        .await;
    assert_eq!(bad_flag.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        sim.state().member(MEMBER),
        Some(seeded_member()),
        "store untouched"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_save_updates_the_store_and_is_logged() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;

    let response = client
        .save(
            COMMUNICATION,
            &json!({"Email1": "nieuw@example.nl", "Mobile1": "0687654321"}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let answer = json_of(response).await;
    assert_eq!(answer["Email1"], "nieuw@example.nl");
    let member = sim.state().member(MEMBER).expect("member");
    assert_eq!(member.communication.email1, "nieuw@example.nl");
    assert_eq!(member.communication.mobile1, "0687654321");
    let saves = sim.state().saves_for(MEMBER);
    assert_eq!(saves.len(), 1);
    assert_eq!(saves[0].status, 200);
    assert_eq!(saves[0].path, COMMUNICATION);
    assert_eq!(saves[0].field("Email1"), Some("nieuw@example.nl"));
    assert!(saves[0].session_id.is_some());
    assert!(sim.state().saves_for("OTHER").is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn saves_in_the_app_shapes_normalise_dates_and_flags() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;

    let free =
        json!({"FreeFields": {"Remarks8": {"Value": "01-02-2024"}, "Remarks3": {"Value": "77"}}});
    assert_eq!(
        client.save(FREE_FIELDS, &free).await.status(),
        StatusCode::OK
    );
    let address =
        json!({"Addresses": [{"AddressType": "Home", "ZipCode": "9999 ZZ", "CountryCode": "be"}]});
    assert_eq!(
        client.save(ADDRESSES, &address).await.status(),
        StatusCode::OK
    );
    let flag = json!({"HasFinancialTransferBlockOwnClub": true});
    let header = json_of(client.save(HEADER, &flag).await).await;
    assert_eq!(header["HasFinancialTransferBlockOwnClub"], true);

    let member = sim.state().member(MEMBER).expect("member");
    assert_eq!(
        member.remark(8),
        Some("2024-02-01"),
        "dates stored as yyyy-mm-dd"
    );
    assert_eq!(member.remark(3), Some("77"));
    assert_eq!(member.address.zip_code, "9999 ZZ");
    assert_eq!(member.address.country_code, "BE");
    assert_eq!(
        member.address.street_name, "Dorpsstraat",
        "keys not posted are kept"
    );
    assert!(member.has_financial_block);
    sim.shutdown().await;
}

#[tokio::test]
async fn validation_errors_refuse_the_save() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;

    let bad_email = client
        .save(COMMUNICATION, &json!({"Email1": "geen-apenstaartje"}))
        .await;
    assert_eq!(bad_email.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(bad_email).await["message"], "Ongeldig e-mailadres");
    let bad_date = client
        .save(
            FREE_FIELDS,
            &json!({"FreeFields": {"Remarks8": {"Value": "31-02-2024"}}}),
        )
        .await;
    assert_eq!(bad_date.status(), StatusCode::BAD_REQUEST);

    sim.state()
        .update_faults(|f| f.validation_error_on_save = Some("Postcode onbekend".into()));
    let forced = client
        .save(COMMUNICATION, &json!({"Email1": "ok@example.nl"}))
        .await;
    assert_eq!(forced.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(forced).await["message"], "Postcode onbekend");
    assert_eq!(
        sim.state().member(MEMBER),
        Some(seeded_member()),
        "nothing stored"
    );

    let after = client
        .save(COMMUNICATION, &json!({"Email1": "ok@example.nl"}))
        .await;
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "the forced error is one-shot"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn server_error_fault_fails_the_next_saves_then_recovers() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;
    sim.state().update_faults(|f| f.server_error_on_saves = 2);
    let body = json!({"Email1": "ok@example.nl"});

    assert_eq!(
        client.save(COMMUNICATION, &body).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        client.save(COMMUNICATION, &body).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(sim.state().member(MEMBER), Some(seeded_member()));
    assert_eq!(
        client.save(COMMUNICATION, &body).await.status(),
        StatusCode::OK
    );
    let statuses: Vec<u16> = sim
        .state()
        .saves_for(MEMBER)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [500, 500, 200]);
    sim.shutdown().await;
}

#[tokio::test]
async fn session_expires_after_n_requests() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;
    sim.state()
        .update_faults(|f| f.session_expire_after_requests = Some(3));
    let page = format!("/member/member-details/{MEMBER}/other");

    // The login's own redirect target was not fetched, so three requests remain.
    for _ in 0..3 {
        assert_eq!(client.read(HEADER).await.status(), StatusCode::OK);
    }
    let navigation = client.get(&page).await;
    assert_eq!(navigation.status(), StatusCode::FOUND);
    assert!(location(&navigation).starts_with("/auth/realms/"));
    assert!(location(&navigation).contains("redirect_uri=/member/member-details/ABC1234/other"));
    let save = client
        .post_raw(
            &format!("{COMMUNICATION}?PersonId={MEMBER}"),
            r#"{"Email1":"x@y.nl"}"#,
        )
        .await;
    assert_eq!(save.status(), StatusCode::UNAUTHORIZED);
    let redirect = json_of(save).await["redirect"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(redirect.starts_with("/auth/realms/"), "got {redirect}");
    assert_eq!(sim.state().member(MEMBER), Some(seeded_member()));
    sim.shutdown().await;
}

#[tokio::test]
async fn session_expires_by_age_and_on_demand() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;
    sim.state()
        .update_faults(|f| f.session_expire_after = Some(Duration::ZERO));
    assert_eq!(client.get("/").await.status(), StatusCode::FOUND);

    sim.state().update_faults(|f| f.session_expire_after = None);
    let mut again = Client::new(&sim);
    assert_eq!(again.login("/", &code(1)).await.status(), StatusCode::FOUND);
    assert_eq!(again.get("/").await.status(), StatusCode::OK);
    sim.state().expire_all_sessions();
    assert_eq!(again.get("/").await.status(), StatusCode::FOUND);
    sim.shutdown().await;
}

#[tokio::test]
async fn expire_session_on_next_save_answers_401_once() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;
    sim.state()
        .update_faults(|f| f.expire_session_on_next_save = true);

    let save = client
        .save(COMMUNICATION, &json!({"Email1": "x@y.nl"}))
        .await;

    assert_eq!(save.status(), StatusCode::UNAUTHORIZED);
    assert!(json_of(save).await["redirect"]
        .as_str()
        .is_some_and(|r| r.starts_with("/auth/realms/")));
    assert_eq!(
        client.get("/").await.status(),
        StatusCode::FOUND,
        "the session is gone"
    );
    assert!(
        !sim.state().faults().expire_session_on_next_save,
        "one-shot"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn former_member_saves_are_refused() {
    let sim = start().await;
    sim.state().seed_member(seeded_member().former());
    let client = Client::logged_in(&sim).await;

    let header = json_of(client.read(HEADER).await).await;
    assert_eq!(header["MemberStatus"], "Oud bondslid");
    let save = client
        .save(COMMUNICATION, &json!({"Email1": "x@y.nl"}))
        .await;

    assert_eq!(save.status(), StatusCode::FORBIDDEN);
    assert_eq!(sim.state().member(MEMBER), Some(seeded_member().former()));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_missing_section_has_no_data_and_cannot_be_saved() {
    let sim = start().await;
    sim.state()
        .seed_member(seeded_member().without_section(rrs_standins::simulator::Section::Address));
    let client = Client::logged_in(&sim).await;

    let header = json_of(client.read(HEADER).await).await;
    let sections = header["Sections"].as_array().cloned().unwrap_or_default();
    assert!(!sections.contains(&json!("Adres")) && sections.contains(&json!("Communicatie")));
    assert_eq!(client.read(ADDRESSES).await.status(), StatusCode::NOT_FOUND);
    let save = client.save(ADDRESSES, &json!({"City": "X"})).await;
    assert_eq!(save.status(), StatusCode::NOT_FOUND);
    sim.shutdown().await;
}

#[tokio::test]
async fn store_differs_stores_another_value_once() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;
    sim.state()
        .update_faults(|f| f.store_differs = Some("inputRemarks8".into()));

    let body = json!({"FreeFields": {"Remarks8": {"Value": "15-03-2024"}}});
    let answer = json_of(client.save(FREE_FIELDS, &body).await).await;

    assert_eq!(
        answer["FreeFields"]["Remarks8"]["Value"], "2024-03-16",
        "the answer shows the truth"
    );
    assert_eq!(
        sim.state().member(MEMBER).expect("m").remark(8),
        Some("2024-03-16")
    );
    assert_eq!(
        sim.state().saves_for(MEMBER)[0].field("Remarks8"),
        Some("15-03-2024"),
        "typed value logged"
    );
    client.save(FREE_FIELDS, &body).await;
    assert_eq!(
        sim.state().member(MEMBER).expect("m").remark(8),
        Some("2024-03-15")
    );

    sim.state()
        .update_faults(|f| f.store_differs = Some("Email1".into()));
    client
        .save(COMMUNICATION, &json!({"Email1": "a@b.nl"}))
        .await;
    assert_eq!(
        sim.state().member(MEMBER).expect("m").communication.email1,
        "a@b.n"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn page_shell_reflects_header_and_rendering_faults() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;
    sim.state().set_faults(Faults {
        extra_header_button: true,
        old_input_names: true,
        render_delay_ms: 750,
        date_display: rrs_standins::simulator::DateDisplay::DutchDot,
        ..Faults::default()
    });

    let html = client
        .get(&format!("/member/member-details/{MEMBER}/other"))
        .await
        .text()
        .await
        .expect("page");

    assert_eq!(
        html.matches(r#"class="header-action">Wijzig</button>"#)
            .count(),
        2
    );
    assert!(html.contains(r#""oldInputNames":true"#));
    assert!(html.contains(r#""renderDelayMs":750"#));
    assert!(html.contains(r#""dateDisplay":"dutch-dot""#));
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_responses_are_delayed() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;
    sim.state().update_faults(|f| f.slow_response_ms = 300);

    let started = Instant::now();
    let response = client.read(HEADER).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Variants: the incidental shape of the site is drawn per run; only sportlink.md's promises hold.

/// Unwraps a data answer from the variant's wrapper.
fn unwrapped(variant: &Variant, body: Value) -> Value {
    match variant.json_wrapper.key() {
        Some(key) => body[key].clone(),
        None => body,
    }
}

fn save_request(
    client: &Client,
    variant: &Variant,
    url: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    let method =
        reqwest::Method::from_bytes(variant.save_method.as_str().as_bytes()).expect("a method");
    let request = client
        .http
        .request(method, client.url(url))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string());
    client.with_cookie(request)
}

#[tokio::test]
async fn drawn_variants_serve_data_only_in_their_own_format() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;
    for seed in 0..8u64 {
        let variant = Variant::draw(seed);
        let hint = variant.repeat_hint();
        sim.state().seed_member(seeded_member());
        sim.state().set_variant(variant.clone());
        sim.state().clear_log();

        let url = variant.data_url(HEADER, MEMBER);
        let response = client.get(&url).await;
        assert_eq!(response.status(), StatusCode::OK, "{hint}: GET {url}");
        let header = unwrapped(&variant, json_of(response).await);
        assert_eq!(header["FullName"], "Jan Jansen", "{hint}");
        assert_eq!(
            header.get("Sections").is_some(),
            variant.missing_section == MissingSection::HeaderList,
            "{hint}"
        );
        let flag = &header["HasFinancialTransferBlockOwnClub"];
        let expected_flag = match variant.flag_encoding {
            FlagEncoding::Bool => json!(false),
            FlagEncoding::Text => json!("false"),
            FlagEncoding::Number => json!(0),
        };
        assert_eq!(flag, &expected_flag, "{hint}");
        let free = unwrapped(
            &variant,
            json_of(client.get(&variant.data_url(FREE_FIELDS, MEMBER)).await).await,
        );
        let freescout = &free["FreeFields"]["Remarks3"]["Value"];
        if variant.numbers_as_numbers {
            assert_eq!(freescout, &json!(1042), "{hint}");
        } else {
            assert_eq!(freescout, &json!("1042"), "{hint}");
        }

        // The plain format is refused unless it is this variant's format.
        let plain_url = Variant::plain().data_url(HEADER, MEMBER);
        if plain_url != url {
            let refused = client.get(&plain_url).await.status();
            assert!(
                refused == StatusCode::NOT_FOUND || refused == StatusCode::BAD_REQUEST,
                "{hint}: {plain_url} answered {refused}"
            );
        }

        // A save in the variant's method and URL; the other method is refused.
        let comm_url = variant.data_url(COMMUNICATION, MEMBER);
        let body = json!({"Email1": format!("seed{seed}@example.nl")});
        let saved = save_request(&client, &variant, &comm_url, &body)
            .send()
            .await
            .expect("save");
        let expected_status = match variant.save_answer {
            SaveAnswer::NoContent => StatusCode::NO_CONTENT,
            SaveAnswer::Stored | SaveAnswer::Success => StatusCode::OK,
        };
        assert_eq!(saved.status(), expected_status, "{hint}");
        let answer = saved.text().await.expect("answer");
        match variant.save_answer {
            SaveAnswer::Stored => {
                let stored = unwrapped(&variant, serde_json::from_str(&answer).expect("json"));
                assert_eq!(stored["Email1"], body["Email1"], "{hint}");
            }
            SaveAnswer::Success => assert_eq!(answer, r#"{"success":true}"#, "{hint}"),
            SaveAnswer::NoContent => assert!(answer.is_empty(), "{hint}"),
        }
        let other_method = match variant.save_method {
            SaveMethod::Post => reqwest::Method::PUT,
            SaveMethod::Put => reqwest::Method::POST,
        };
        let wrong = client
            .with_cookie(client.http.request(other_method, client.url(&comm_url)))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("wrong method");
        assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED, "{hint}");
        assert_eq!(
            sim.state().member(MEMBER).expect("m").communication.email1,
            format!("seed{seed}@example.nl"),
            "{hint}"
        );
        let saves = sim.state().saves_for(MEMBER);
        assert_eq!(saves.len(), 1, "{hint}: {saves:?}");
        assert_eq!(saves[0].endpoint.as_deref(), Some(COMMUNICATION), "{hint}");
        assert!(
            !saves[0].app_marked,
            "{hint}: this client never sends the app's header"
        );

        // A refused save answers under the variant's error key.
        let bad = save_request(
            &client,
            &variant,
            &comm_url,
            &json!({"Email1": "geen-apenstaartje"}),
        )
        .send()
        .await
        .expect("bad save");
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{hint}");
        assert_eq!(
            json_of(bad).await[variant.error_key.as_str()],
            "Ongeldig e-mailadres",
            "{hint}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn requests_in_another_format_are_refused() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;
    let variant = Variant {
        path_prefix: "/club/api/v2".into(),
        member_id_in: MemberIdIn::Query("relationCode".into()),
        ..Variant::plain()
    };
    sim.state().set_variant(variant.clone());

    let good = client.get(&variant.data_url(COMMUNICATION, MEMBER)).await;
    assert_eq!(good.status(), StatusCode::OK);
    let casing = client
        .get(&format!(
            "/club/api/v2{COMMUNICATION}?RelationCode={MEMBER}"
        ))
        .await;
    assert_eq!(casing.status(), StatusCode::BAD_REQUEST);
    let no_prefix = client
        .get(&format!("{COMMUNICATION}?relationCode={MEMBER}"))
        .await;
    assert_eq!(no_prefix.status(), StatusCode::NOT_FOUND);
    let in_path = client
        .get(&format!("/club/api/v2{COMMUNICATION}/{MEMBER}"))
        .await;
    assert_eq!(in_path.status(), StatusCode::NOT_FOUND);
    let log = sim.state().request_log();
    let refused: Vec<_> = log.iter().filter(|r| r.status >= 400).collect();
    assert!(refused
        .iter()
        .all(|r| r.endpoint.is_none() && r.member_id.is_none()));

    sim.state().set_variant(Variant {
        member_id_in: MemberIdIn::Path,
        ..variant
    });
    let path_url = format!("/club/api/v2{COMMUNICATION}/{MEMBER}");
    assert_eq!(client.get(&path_url).await.status(), StatusCode::OK);
    let query = client
        .get(&format!(
            "/club/api/v2{COMMUNICATION}?relationCode={MEMBER}"
        ))
        .await;
    assert_eq!(query.status(), StatusCode::NOT_FOUND);
    let last = sim.state().request_log();
    let ok = last.iter().rev().find(|r| r.status == 200).expect("logged");
    assert_eq!(ok.member_id.as_deref(), Some(MEMBER));
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_sections_show_as_the_variant_says() {
    let sim = start().await;
    sim.state()
        .seed_member(seeded_member().without_section(rrs_standins::simulator::Section::Address));
    let client = Client::logged_in(&sim).await;
    for (missing, status, listed) in [
        (MissingSection::HeaderList, StatusCode::NOT_FOUND, true),
        (MissingSection::NoContent, StatusCode::NO_CONTENT, false),
        (MissingSection::NotFound, StatusCode::NOT_FOUND, false),
    ] {
        sim.state().set_variant(Variant {
            missing_section: missing,
            ..Variant::plain()
        });
        assert_eq!(client.read(ADDRESSES).await.status(), status, "{missing:?}");
        let header = json_of(client.read(HEADER).await).await;
        assert_eq!(header.get("Sections").is_some(), listed, "{missing:?}");
        let save = client.save(ADDRESSES, &json!({"City": "X"})).await;
        assert_eq!(save.status(), StatusCode::NOT_FOUND, "{missing:?}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn the_login_returns_to_the_dashboard_when_the_variant_says_so() {
    let sim = start().await;
    sim.state().set_variant(Variant {
        login_returns_to_requested_page: false,
        ..Variant::plain()
    });
    let mut client = Client::new(&sim);
    let page = format!("/member/member-details/{MEMBER}/general");
    let response = client.login(&page, &code(0)).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_varied_page_shell_has_no_stable_ids_but_keeps_the_promised_parts() {
    let sim = start().await;
    let client = Client::logged_in(&sim).await;
    let variant = Variant {
        random_ids: true,
        ..Variant::draw(3)
    };
    sim.state().set_variant(variant);
    sim.state().update_faults(|f| f.extra_header_button = true);
    let page = format!("/member/member-details/{MEMBER}/general");
    let first = client.get(&page).await.text().await.expect("page");
    let second = client.get(&page).await.text().await.expect("page");

    for fixed in [
        "member-name",
        "member-status",
        "member-sections",
        "sim-config",
        "header-action",
    ] {
        assert!(!first.contains(fixed), "{fixed} should not be stable");
    }
    assert!(first.contains("<h1"), "the member name is in an h1");
    assert!(first.contains("Wijzig lidsoort") || first.contains("Wijzig\u{a0}lidsoort"));
    let ids = |html: &str| -> Vec<String> {
        html.split(r#"id=""#)
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .filter(|id| id != "main-nav")
            .collect()
    };
    let (a, b) = (ids(&first), ids(&second));
    assert!(!a.is_empty());
    assert!(
        a.iter().all(|id| !b.contains(id)),
        "ids change per load: {a:?} vs {b:?}"
    );
    sim.shutdown().await;
}

#[test]
fn the_same_seed_gives_the_same_variant_and_the_env_var_pins_it() {
    assert_eq!(Variant::draw(12345), Variant::draw(12345));
    assert_ne!(Variant::draw(1), Variant::draw(2));
    // The variable is read in a child process: setting it here would race with other tests.
    let print_variant = |seed: Option<&str>| {
        let mut command = std::process::Command::new(
            rrs_testkit::workspace_bin("sportlink-sim").expect("the simulator binary"),
        );
        command.arg("--print-variant").env_remove(SEED_ENV);
        if let Some(seed) = seed {
            command.env(SEED_ENV, seed);
        }
        let output = command.output().expect("sportlink-sim runs");
        assert!(output.status.success(), "{output:?}");
        (
            String::from_utf8(output.stdout).expect("utf-8"),
            String::from_utf8(output.stderr).expect("utf-8"),
        )
    };
    let (pinned, hint) = print_variant(Some("987654321"));
    assert_eq!(pinned.trim(), format!("{:#?}", Variant::draw(987_654_321)));
    assert!(hint.contains(
        "sportlink simulator variant seed 987654321 (set SPORTLINK_SIM_SEED=987654321 to repeat)"
    ));
    let (a, _) = print_variant(None);
    let (b, _) = print_variant(None);
    assert_ne!(a, b, "unpinned seeds are random");
    let bad = std::process::Command::new(
        rrs_testkit::workspace_bin("sportlink-sim").expect("the simulator binary"),
    )
    .arg("--print-variant")
    .env(SEED_ENV, "not-a-number")
    .output()
    .expect("sportlink-sim runs");
    assert!(!bad.status.success(), "a bad pin is an error, not ignored");
}

#[tokio::test]
async fn a_refused_login_shows_its_message_in_the_variants_element() {
    let sim = start().await;
    sim.state().set_variant(Variant {
        login_error: LoginErrorElement::Alert,
        ..Variant::plain()
    });
    let client = Client::new(&sim);
    let login_url = location(&client.get("/").await);

    let response = client.submit_password(&login_url, USER, "wrong").await;

    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.expect("page");
    assert!(html.contains(r#"role="alert">Ongeldige gebruikersnaam of wachtwoord.</div>"#));
    assert!(!html.contains("input-error"), "no fixed id in this variant");
    assert!(html.contains(r#"id="password""#), "still the password form");
    sim.shutdown().await;
}
