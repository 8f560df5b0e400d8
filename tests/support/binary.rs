//! The real binary for tests: `rondo-reverse-sync <verb>` with settings from the environment, as
//! systemd runs it, in a temporary directory, never reading the caller's `RRS_…` variables.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_rondo-reverse-sync");
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A command for the binary: no config file, no inherited `RRS_…` setting, logs at `warn`.
pub fn command(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir).env("RRS_LOG__LEVEL", "warn");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("RRS_") {
            command.env_remove(&name);
        }
    }
    command
}

/// Runs a verb to its end (bounded: 60 s), with `env` on top of [`command`].
pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_within(dir, args, env, Duration::from_secs(60))
}

/// [`run`], killed (and the test failed) after `limit`: a hang guard, not a timing check.
pub fn run_within(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut command = command(dir);
    command.args(args).stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`{}` did not finish within {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `serve` running on a port of its own; killed when dropped.
pub struct Served {
    child: Child,
    pub base_url: String,
    pub log: PathBuf,
}

impl Served {
    /// `migrate`s `db` (the explicit creation), then starts `serve` on it with `env` and waits
    /// until `/healthz` answers.
    pub async fn start(dir: &Path, db: &Path, env: &[(&str, &str)]) -> Served {
        let db_text = db.display().to_string();
        let migrated = run(dir, &["migrate"], &[("RRS_DATABASE__PATH", &db_text)]);
        assert!(
            migrated.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&migrated.stderr)
        );
        Self::start_without_migrate(dir, db, env).await
    }

    pub async fn start_without_migrate(dir: &Path, db: &Path, env: &[(&str, &str)]) -> Served {
        Self::start_with_args(dir, db, &["serve"], env).await
    }

    /// Starts the binary with `args` (a `serve`), waits until `/healthz` answers.
    pub async fn start_with_args(
        dir: &Path,
        db: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Served {
        let port = free_port();
        let log = dir.join(format!("serve-{port}.log"));
        let mut command = command(dir);
        command
            .args(args)
            .env("RRS_DATABASE__PATH", db)
            .env("RRS_WEBHOOK__SECRET", SECRET)
            .env("RRS_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start serve");
        let mut served = Served {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client
                .get(format!("{}/healthz", served.base_url))
                .send()
                .await
            {
                if r.status().is_success() {
                    return served;
                }
            }
            if let Some(status) = served.child.try_wait().expect("wait") {
                panic!(
                    "serve exited during start-up ({status}): {}",
                    served.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "serve did not answer /healthz within 30 s: {}",
                served.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
