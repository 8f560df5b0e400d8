//! The README's first command: the demo (`rrs-demo`) runs to completion and every change is
//! verified in the simulator. Runs the real binary, as a newcomer would.

use std::process::Command;

use rrs_testkit::headless;

#[test]
fn demo_runs_to_completion_with_every_change_verified() {
    if headless::browser_tests_skipped() {
        return;
    }
    let demo = rrs_testkit::workspace_bin("rrs-demo").expect("the demo binary");
    let output = Command::new(demo)
        .args(["--member-interval-ms", "300"])
        .env_remove("RRS_CONFIG")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed ({:?}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all verified"), "{stdout}");
    assert!(!stdout.contains("NOT"), "{stdout}");
    // Five edits, one of them an address (four fields): eight changes, each synced.
    assert_eq!(stdout.matches(" synced").count(), 8, "{stdout}");
    let verified_in_simulator = stdout
        .lines()
        .filter(|l| l.starts_with("  DEMO") && l.ends_with(" verified"))
        .count();
    assert_eq!(verified_in_simulator, 5, "{stdout}");
    assert!(
        stdout.contains(" poll "),
        "one change came through the poll: {stdout}"
    );
}
