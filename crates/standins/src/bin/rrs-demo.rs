//! The demo: the service on embedded defaults against the built-in Sportlink simulator and a
//! stand-in for Rondo Club: a few edits pushed and verified, then a summary. Exit code 0 when
//! every edit was verified in the simulator, 1 otherwise.

use std::process::ExitCode;

use clap::Parser;
use rondo_reverse_sync::config::LogSettings;
use rondo_reverse_sync::telemetry;
use rrs_standins::demo::{self, DemoOptions};

#[derive(Parser)]
#[command(name = "rrs-demo", version, about, long_about = None)]
struct Cli {
    /// Keep everything running (operator page, simulator) until Ctrl-C.
    #[arg(long)]
    keep_running: bool,
    /// Pause between members in milliseconds (default: the service's 1–2 s).
    #[arg(long, value_name = "MS")]
    member_interval_ms: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own story on stdout; only warnings belong beside it.
    telemetry::init(&LogSettings {
        level: "warn".into(),
        ..LogSettings::default()
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rrs-demo: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(demo::run(DemoOptions {
        keep_running: cli.keep_running,
        member_interval_ms: cli.member_interval_ms,
    }));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("rrs-demo: the demo's changes were not all verified in the simulator");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("rrs-demo: {e:#}");
            ExitCode::from(1)
        }
    }
}
