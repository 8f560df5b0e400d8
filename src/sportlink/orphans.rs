//! Chromium left behind by an executor that was killed (SIGKILL, the OOM killer): every browser
//! this service starts keeps its profile in `$TMPDIR/rrs-chromium-<pid>-<random>`, so a profile
//! whose process id no longer runs belongs to a dead executor, and whatever still runs with that
//! profile on its command line is an orphan. Before an executor starts, those processes are
//! killed and the profiles removed. Under the shipped systemd unit the control group is cleaned
//! when the service dies anyway; started by hand or in a container, nothing else would.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};

/// How every profile directory of ours begins.
pub const PROFILE_PREFIX: &str = "rrs-chromium-";

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub profiles: usize,
    pub processes: usize,
}

/// The process id in one of our profile directory names (`rrs-chromium-<pid>-<hex>`).
pub fn profile_owner(name: &str) -> Option<u32> {
    let (pid, random) = name.strip_prefix(PROFILE_PREFIX)?.split_once('-')?;
    if random.is_empty() || !random.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    pid.parse().ok()
}

fn running(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Processes whose command line contains `needle` (a profile directory, say).
pub fn processes_naming(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(needle)
                .then_some(pid)
        })
        .collect()
}

/// Kills the browsers of dead executors found in `temp_dir` and removes their profiles. Profiles
/// of running processes (this one, another account's executor) are left alone. Blocking; waits
/// only when there is something to kill.
pub fn reap_orphaned_browsers(temp_dir: &Path) -> Reaped {
    let mut reaped = Reaped::default();
    let Ok(entries) = std::fs::read_dir(temp_dir) else {
        return reaped;
    };
    for entry in entries.flatten() {
        let Some(owner) = entry.file_name().to_str().and_then(profile_owner) else {
            continue;
        };
        if owner == std::process::id() || running(owner) {
            continue;
        }
        let dir = entry.path();
        let needle = dir.display().to_string();
        let mut killed = HashSet::new();
        // Helpers may still be starting while the first ones die: until none is left.
        for _ in 0..40 {
            let pids = processes_naming(&needle);
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let signalled = i32::try_from(pid)
                    .ok()
                    .and_then(Pid::from_raw)
                    .is_some_and(|p| kill_process(p, Signal::KILL).is_ok());
                if signalled {
                    killed.insert(pid);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        reaped.processes += killed.len();
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => reaped.profiles += 1,
            Err(e) => tracing::warn!(
                profile = %dir.display(), error = %e,
                "cannot remove the Chromium profile of a killed executor"
            ),
        }
    }
    if reaped != Reaped::default() {
        tracing::warn!(
            profiles = reaped.profiles,
            processes = reaped.processes,
            "removed Chromium left behind by an executor that was killed"
        );
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_profile_names_have_an_owner() {
        assert_eq!(
            profile_owner("rrs-chromium-4242-00ff13a9c0de7788"),
            Some(4242)
        );
        assert_eq!(profile_owner("rrs-chromium-4242-"), None);
        assert_eq!(profile_owner("rrs-chromium-4242-xyz"), None);
        assert_eq!(profile_owner("rrs-chromium-abc-00ff"), None);
        assert_eq!(profile_owner("chromium-4242-00ff"), None);
        assert_eq!(profile_owner("rrs-chromium-4242"), None);
    }

    #[test]
    fn a_dead_owner_s_profile_is_removed_and_a_live_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        // Our own process is alive; a pid far above pid_max is not.
        let live = dir
            .path()
            .join(format!("{PROFILE_PREFIX}{}-00ff", std::process::id()));
        let dead = dir.path().join(format!("{PROFILE_PREFIX}99999999-00ff"));
        let other = dir.path().join("something-else");
        for d in [&live, &dead, &other] {
            std::fs::create_dir_all(d.join("Default")).unwrap();
        }
        let reaped = reap_orphaned_browsers(dir.path());
        assert_eq!(
            reaped,
            Reaped {
                profiles: 1,
                processes: 0
            }
        );
        assert!(live.exists() && other.exists() && !dead.exists());
    }
}
