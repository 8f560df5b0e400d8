//! A real WordPress for tests: Debian's `wordpress` package on PHP's built-in server, a private
//! MariaDB, the `person` emulation and the real webhook snippet as mu-plugins
//! (`tests/wordpress/setup.sh` does the work).
//!
//! One WordPress is shared by all tests of a binary ([`WordPress::shared`]); tests keep apart by
//! creating their own persons, each pointing its webhooks at the test's own receiver. It is
//! stopped when the test process exits, however it exits: a watchdog process holds a pipe from
//! this process and runs `stop.sh` when the pipe closes. A [`WordPress::start`]ed instance is
//! also stopped on drop.
//!
//! `RRS_TEST_WP_DIR` + `RRS_TEST_WP_PORT` reuse a WordPress that outlives the tests (setup.sh is
//! idempotent; under a second when it is already running); it is then never stopped.

#![allow(dead_code)]

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

/// Installing the packages from nothing takes about 35 s; this leaves room for a slow mirror.
const SETUP_DEADLINE: Duration = Duration::from_secs(300);
const PHP_DEADLINE: Duration = Duration::from_secs(60);
const HTTP_DEADLINE: Duration = Duration::from_secs(30);
const WP_ROOT: &str = "/usr/share/wordpress";

#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub app_password: String,
}

pub struct WordPress {
    pub base_url: String,
    /// `127.0.0.1:PORT`, what PHP scripts must put in `$_SERVER['HTTP_HOST']`.
    pub host: String,
    /// Debian's config selector: `/etc/wordpress/config-{config_name}.php`.
    pub config_name: String,
    /// The `whsec_` secret the snippet signs with.
    pub webhook_secret: String,
    /// The service's read-only token the "Sportlink" box reads with (`admin.read_token`).
    pub read_token: String,
    pub admin: Credentials,
    /// An editor who is not a forward-sync user: a volunteer.
    pub volunteer: Credentials,
    /// The user the forward sync writes as (`RONDO_REVERSE_SYNC_SYNC_USERS`).
    pub sync: Credentials,
    state_dir: PathBuf,
    stop_on_drop: bool,
    /// Held open for the watchdog; closing it (at exit) stops WordPress.
    _watchdog: Option<ChildStdin>,
}

static SHARED: OnceCell<WordPress> = OnceCell::const_new();

fn repo_dir() -> &'static Path {
    crate::repo_dir()
}

fn script(name: &str) -> PathBuf {
    repo_dir().join("tests/wordpress").join(name)
}

impl WordPress {
    /// The WordPress shared by the tests of this binary, started on first use.
    pub async fn shared() -> Result<&'static WordPress> {
        SHARED.get_or_try_init(Self::start).await
    }

    /// A WordPress of its own on a free port (or the one named by `RRS_TEST_WP_*`).
    pub async fn start() -> Result<WordPress> {
        let reuse = match (
            std::env::var("RRS_TEST_WP_DIR"),
            std::env::var("RRS_TEST_WP_PORT"),
        ) {
            (Ok(dir), Ok(port)) => Some((PathBuf::from(dir), port.parse::<u16>()?)),
            _ => None,
        };
        let (state_dir, port, watchdog) = match reuse {
            Some((dir, port)) => (dir, port, None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("rrs-wordpress-")
                    .tempdir()
                    .context("creating the WordPress state directory")?
                    .keep();
                // Started before anything else, so that whatever happens next is cleaned up.
                let watchdog = Command::new(script("watchdog.sh"))
                    .arg(&dir)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .context("starting the WordPress watchdog")?
                    .stdin
                    .take();
                (dir, free_port()?, watchdog)
            }
        };
        let stop_on_drop = watchdog.is_some();

        let mut setup = tokio::process::Command::new(script("setup.sh"));
        setup
            .arg(&state_dir)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(SETUP_DEADLINE, setup.output())
            .await
            .map_err(|_| anyhow!("tests/wordpress/setup.sh took longer than {SETUP_DEADLINE:?}"))?
            .context("running tests/wordpress/setup.sh")?;
        if !output.status.success() {
            bail!(
                "tests/wordpress/setup.sh failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let env = String::from_utf8(output.stdout).context("setup.sh output")?;
        let get = |key: &str| -> Result<String> {
            env.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("setup.sh did not report {key}"))
        };
        let credentials = |role: &str| -> Result<Credentials> {
            Ok(Credentials {
                user: get(&format!("WP_{role}_USER"))?,
                app_password: get(&format!("WP_{role}_APP_PASSWORD"))?,
            })
        };
        Ok(WordPress {
            base_url: get("WP_BASE_URL")?,
            host: get("WP_HOST")?,
            config_name: get("WP_CONFIG_NAME")?,
            webhook_secret: get("WP_WEBHOOK_SECRET")?,
            read_token: get("WP_READ_TOKEN")?,
            admin: credentials("ADMIN")?,
            volunteer: credentials("VOLUNTEER")?,
            sync: credentials("SYNC")?,
            state_dir,
            stop_on_drop,
            _watchdog: watchdog,
        })
    }

    /// Creates a published person whose webhooks go to `receiver` (the test's own service).
    /// Returns its post id.
    pub async fn create_person(
        &self,
        as_user: &Credentials,
        receiver: &str,
        acf: Value,
    ) -> Result<u64> {
        let body = json!({
            "title": format!("Test person {}", acf.get("knvb-id").and_then(Value::as_str).unwrap_or("?")),
            "status": "publish",
            "rrs_test_receiver": receiver,
            "acf": acf,
        });
        let created = self
            .rest(as_user, reqwest::Method::POST, "/wp/v2/people", &body)
            .await?;
        created
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("the created person has no id: {created}"))
    }

    /// `POST /wp/v2/people/{id}` as `as_user`; returns the person as the REST API answers.
    pub async fn update_person(
        &self,
        as_user: &Credentials,
        id: u64,
        body: &Value,
    ) -> Result<Value> {
        self.rest(
            as_user,
            reqwest::Method::POST,
            &format!("/wp/v2/people/{id}"),
            body,
        )
        .await
    }

    /// `GET /wp/v2/people/{id}`.
    pub async fn get_person(&self, as_user: &Credentials, id: u64) -> Result<Value> {
        self.rest(
            as_user,
            reqwest::Method::GET,
            &format!("/wp/v2/people/{id}"),
            &Value::Null,
        )
        .await
    }

    /// `DELETE /wp/v2/people/{id}`: moves the person to the trash.
    pub async fn trash_person(&self, as_user: &Credentials, id: u64) -> Result<Value> {
        self.rest(
            as_user,
            reqwest::Method::DELETE,
            &format!("/wp/v2/people/{id}"),
            &Value::Null,
        )
        .await
    }

    /// Any other REST call, e.g. an autosave: `POST /wp/v2/people/{id}/autosaves`.
    pub async fn post_rest(
        &self,
        as_user: &Credentials,
        route: &str,
        body: &Value,
    ) -> Result<Value> {
        self.rest(as_user, reqwest::Method::POST, route, body).await
    }

    async fn rest(
        &self,
        as_user: &Credentials,
        method: reqwest::Method,
        route: &str,
        body: &Value,
    ) -> Result<Value> {
        let url = format!("{}/wp-json{route}", self.base_url);
        // A client per call: the WordPress outlives the runtime of the test that started it, and
        // a pooled connection must not.
        let http = reqwest::Client::builder().timeout(HTTP_DEADLINE).build()?;
        let mut request = http
            .request(method.clone(), &url)
            .basic_auth(&as_user.user, Some(&as_user.app_password));
        if !body.is_null() {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {route}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!(
                "{method} {route} as {} answered {status}: {text}",
                as_user.user
            );
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {route}: not JSON: {text}"))
    }

    /// Runs PHP `code` inside WordPress from the command line, as a script or cron job would
    /// (no logged-in user unless the code sets one). Returns what it printed.
    pub async fn run_php(&self, code: &str) -> Result<String> {
        self.php(&format!("require '{WP_ROOT}/wp-load.php';\n{code}"))
            .await
    }

    /// Runs the due WP-Cron events once, as `/wp-cron.php` does. Another test's run may hold
    /// WP-Cron's lock (the `doing_cron` transient, a minute long); it is taken over, as the
    /// service dedupes a delivery sent twice by its webhook id.
    pub async fn run_cron(&self) -> Result<()> {
        self.php(&format!(
            "$_SERVER['REQUEST_URI'] = '/wp-cron.php';\n\
             require_once '{WP_ROOT}/wp-load.php';\n\
             delete_transient('doing_cron');\n\
             require '{WP_ROOT}/wp-cron.php';"
        ))
        .await
        .map(drop)
    }

    /// The webhook ids the snippet holds for a retry, with their stored state.
    pub async fn pending_deliveries(&self) -> Result<Vec<Value>> {
        let out = self
            .run_php(
                "echo json_encode(array_map(
                    fn ($id) => get_option(Rondo_Reverse_Sync::PENDING_PREFIX . $id),
                    Rondo_Reverse_Sync::pending_message_ids()));",
            )
            .await?;
        serde_json::from_str(&out).with_context(|| format!("pending deliveries: {out}"))
    }

    async fn php(&self, body: &str) -> Result<String> {
        let prelude = format!(
            "$_SERVER['HTTP_HOST'] = '{host}';\n\
             $_SERVER['SERVER_NAME'] = '127.0.0.1';\n\
             $_SERVER['REQUEST_URI'] = $_SERVER['REQUEST_URI'] ?? '/';\n\
             $_SERVER['WORDPRESS_CONFIG'] = '{config}';\n",
            host = self.host,
            config = self.config_name
        );
        let mut command = tokio::process::Command::new("php");
        command
            .arg("-r")
            .arg(format!("{prelude}{body}"))
            .current_dir(WP_ROOT)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(PHP_DEADLINE, command.output())
            .await
            .map_err(|_| anyhow!("a PHP script took longer than {PHP_DEADLINE:?}"))?
            .context("running php")?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "php failed ({}): {stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(stdout)
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}

impl Drop for WordPress {
    fn drop(&mut self) {
        if self.stop_on_drop {
            // Best effort: the watchdog does the same when this process exits.
            let _status = Command::new(script("stop.sh"))
                .arg(&self.state_dir)
                .arg("--purge")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
