//! The browser layer alone: session, login, page model, driver.

use std::time::Duration;

use rondo_reverse_sync::sportlink::browser::SportlinkSession;
use rondo_reverse_sync::sportlink::driver::{
    ChromiumDriver, FormField, FormSpec, MemberPage, SportlinkDriver,
};
use rrs_standins::simulator::SimMember;

use crate::support::chromium::*;

fn communication_form() -> FormSpec {
    FormSpec {
        page: MemberPage::General,
        section: "Communicatie".into(),
        fields: vec![FormField {
            name: "email".into(),
            selectors: vec![
                r#"input[name="Email1"]"#.into(),
                r#"input[name="Email"]"#.into(),
            ],
            verify_path: "/member/persondata/MemberCommunication".into(),
            verify_pointer: "/Email1".into(),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_edits_a_section_and_reads_it_back() {
    if browser_tests_skipped() {
        return;
    }
    let sim = start_sim().await;
    let mut jan = SimMember::new("ABC1234", "Jan Jansen");
    jan.communication.email1 = "old@example.nl".into();
    sim.state().seed_member(jan);
    let session = SportlinkSession::new(session_settings(&sim)).unwrap();
    let mut driver = ChromiumDriver::new(session, None);
    let form = communication_form();
    let result = tokio::time::timeout(Duration::from_secs(90), async {
        let live = driver.open_form("ABC1234", &form).await?;
        assert_eq!(
            live.get("email").map(String::as_str),
            Some("old@example.nl")
        );
        driver
            .save_form(&form, &[("email".into(), "new@example.nl".into())])
            .await?;
        let stored = driver.read_stored("ABC1234", &form, true).await?;
        Ok::<_, rondo_reverse_sync::sportlink::driver::DriverError>(stored)
    })
    .await;
    driver.close().await;
    let stored = result.expect("within the deadline").expect("driver works");
    assert_eq!(
        stored.get("email"),
        Some(&Some("new@example.nl".to_owned()))
    );
    assert_eq!(
        sim.state().member("ABC1234").unwrap().communication.email1,
        "new@example.nl"
    );
    assert_eq!(driver.session().stats().logins, 1);
    sim.shutdown().await;
}

/// A page built flat — headings and their bodies as siblings, no element around a section —
/// is still read by heading: the section is the run of siblings up to the next heading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_markup_sections_are_found_by_heading() {
    use rondo_reverse_sync::sportlink::page::{InputLocator, SectionLookup};

    if browser_tests_skipped() {
        return;
    }
    let sim = start_sim().await;
    let page = r#"<!DOCTYPE html><html><body><main>
<h1>Jan Jansen</h1>
<h3>Communicatie</h3>
<div class="x"><span>E-mail</span> <input name="Email1" value="oud@example.nl" disabled></div>
<div class="y"><button type="button" id="w1">Wijzig</button></div>
<h3>Adres</h3>
<div><input name="City" value="Utrecht" disabled><button type="button">Wijzig</button></div>
<script>
document.getElementById('w1').addEventListener('click', function () {
  var input = document.querySelector('input[name=Email1]');
  input.disabled = false;
  var save = document.createElement('button'); save.textContent = 'Sla op';
  var cancel = document.createElement('button'); cancel.textContent = 'Annuleer';
  cancel.addEventListener('click', function () { input.disabled = true; save.remove(); cancel.remove(); });
  this.parentNode.appendChild(save); this.parentNode.appendChild(cancel);
});
</script></main></body></html>"#;
    let url = format!("data:text/html,{}", urlencode(page));
    let mut session = SportlinkSession::new(session_settings(&sim)).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(60), async {
        let model = session.page().await?;
        model.goto(&url).await?;
        let lookup = model.await_section("Communicatie").await?;
        let live = model
            .open_edit(
                "Communicatie",
                &[InputLocator {
                    name: "email".into(),
                    selectors: vec![r#"input[name="Email1"]"#.into()],
                }],
            )
            .await?;
        model.cancel("Communicatie", true).await?;
        Ok::<_, rondo_reverse_sync::sportlink::browser::SessionError>((lookup, live))
    })
    .await;
    session.close().await;
    let (lookup, live) = result
        .expect("within the deadline")
        .expect("page model works");
    assert!(matches!(lookup, SectionLookup::Found { .. }), "{lookup:?}");
    assert_eq!(
        live.get("email").map(String::as_str),
        Some("oud@example.nl")
    );
    sim.shutdown().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
