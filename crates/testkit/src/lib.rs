//! What the integration tests share, compiled once for every test binary: the app started the
//! way `serve` starts it (`startup::launch`), the Sportlink simulator rig, the real WordPress,
//! headless Chromium, and the case builders (signed deliveries). Test code that more than one
//! test needs lives here, once: a copied helper is how a fixed bug came back (issue 12).

use std::path::{Path, PathBuf};

pub mod app;
pub mod chromium;
pub mod clock;
pub mod headless;
pub mod logs;
pub mod rig;
pub mod service;
pub mod signing;
pub mod wordpress;

/// The repository's root (where `tests/`, `deploy/` and `wp-plugin-snippet/` are).
pub fn repo_dir() -> &'static Path {
    // crates/testkit → the workspace root.
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A binary of the workspace that is not the tested package's own (`sportlink-sim`, `rrs-demo`,
/// `rrs-load`): next to the test executable's directory, where `cargo test --workspace` builds
/// it. A clear error when it was not built.
pub fn workspace_bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/debug/deps/<test>-<hash> → target/debug/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow::anyhow!("cannot place the test executable {}", exe.display()))?;
    let bin = dir.join(name);
    anyhow::ensure!(
        bin.is_file(),
        "{} is missing: build the workspace's binaries first (`cargo build --workspace --bins`, as \
         scripts/test does)",
        bin.display()
    );
    Ok(bin)
}
