//! Chromium and simulator set-up for the executor's real-browser tests.

use std::time::Duration;

use rondo_reverse_sync::sportlink::browser::SessionSettings;
use rrs_standins::simulator::{SimConfig, SimState, Simulator};

use crate::clock::SkipClock;
pub use crate::headless::{browser_tests_skipped, chromium_path};
use rondo_reverse_sync::clock::SharedClock;

pub const USER: &str = "clubadmin";
pub const PASSWORD: &str = "correct horse battery";
/// 160-bit base32 secret (RFC 6238 test key).
pub const OTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// A simulator on a [`SkipClock`]: logins against it never wait for a real 30-second window.
pub async fn start_sim() -> Simulator {
    start_sim_on(SkipClock::shared()).await
}

/// A simulator whose one-time codes follow `clock`: the system's when the service under test
/// runs as its own process (which can only use the system clock).
pub async fn start_sim_on(clock: SharedClock) -> Simulator {
    let sim = Simulator::start(SimConfig {
        username: USER.into(),
        password: PASSWORD.into(),
        otp_secret_base32: OTP_SECRET.into(),
        port: 0,
        clock,
    })
    .await
    .expect("the simulator starts");
    // Every incidental detail of the simulated Sportlink is drawn per test (pinned by
    // SPORTLINK_SIM_SEED): the executor may rely on none of them.
    sim.state().use_variant_from_env_or_random();
    eprintln!("{}", sim.state().variant().repeat_hint());
    sim
}

/// The service's `[sportlink]` settings against the simulator: its address and account, the
/// tests' Chromium, no pause between members, artefacts in `artefact_dir`.
pub fn sportlink_settings(
    sim: &Simulator,
    artefact_dir: std::path::PathBuf,
) -> rondo_reverse_sync::config::SportlinkSettings {
    use rondo_reverse_sync::config::{Secret, SportlinkSettings};
    SportlinkSettings {
        base_url: sim.base_url(),
        username: USER.into(),
        password: Secret::new(PASSWORD),
        otp_secret: Secret::new(OTP_SECRET),
        chromium_path: chromium_path(),
        min_member_interval_ms: 0,
        member_jitter_ms: 0,
        settle_ms: 400,
        artefact_dir,
        ..SportlinkSettings::default()
    }
}

/// Session settings against the simulator, on its clock, made from the service's settings as
/// the service makes them; generous deadlines (two shared cores).
pub fn session_settings(sim: &Simulator) -> SessionSettings {
    let sportlink = rondo_reverse_sync::config::SportlinkSettings {
        action_timeout_secs: 15,
        ..sportlink_settings(sim, std::env::temp_dir())
    };
    SessionSettings::from_config(&sportlink, sim.clock())
}

/// Wait (with a deadline) until `cond` holds for the simulator's state.
pub async fn wait_for_sim(
    state: &SimState,
    within: Duration,
    cond: impl Fn(&SimState) -> bool,
) -> bool {
    let end = tokio::time::Instant::now() + within;
    loop {
        if cond(state) {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
