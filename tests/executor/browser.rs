//! The browser layer alone: session, login, page model, driver.

use std::time::Duration;

use rondo_reverse_sync::simulator::SimMember;
use rondo_reverse_sync::sportlink::browser::SportlinkSession;
use rondo_reverse_sync::sportlink::driver::{
    ChromiumDriver, FormField, FormSpec, MemberPage, SportlinkDriver,
};

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
    if !chromium_available() {
        return;
    }
    let sim = start_sim().await;
    let mut jan = SimMember::new("ABC1234", "Jan Jansen");
    jan.communication.email1 = "old@example.nl".into();
    sim.state().seed_member(jan);
    let session = SportlinkSession::new(session_settings(&sim.base_url())).unwrap();
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
