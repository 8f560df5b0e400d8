//! `sportlink-sim`: runs the Sportlink simulator on 127.0.0.1 until Ctrl-C.

use anyhow::Context;
use clap::Parser;
use rrs_standins::simulator::{Section, SimConfig, SimMember, SimState, Simulator, Variant};

#[derive(Debug, Parser)]
#[command(about = "A stand-in for Sportlink Club (login with TOTP, member pages, fault switches)")]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, env = "SPORTLINK_USERNAME", default_value = "demo")]
    username: String,
    #[arg(
        long,
        env = "SPORTLINK_PASSWORD",
        default_value = "demo",
        hide_env_values = true
    )]
    password: String,
    /// Base32 TOTP secret (RFC 6238, SHA1, 6 digits, 30 s).
    #[arg(
        long,
        env = "SPORTLINK_OTP_SECRET",
        default_value = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        hide_env_values = true
    )]
    otp_secret: String,
    /// Seed a few demo members.
    #[arg(long)]
    seed_demo: bool,
    /// Serve the plain shape instead of a variant drawn from SPORTLINK_SIM_SEED (or a random
    /// seed when that is unset).
    #[arg(long)]
    plain: bool,
    /// Print the variant that would be served (Rust Debug form) and exit.
    #[arg(long)]
    print_variant: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let variant = if args.plain {
        Variant::plain()
    } else {
        // Panics with a clear message when SPORTLINK_SIM_SEED is not a decimal u64.
        Variant::from_env_or_random().1
    };
    // On stderr, so that stdout stays the base URL (or the variant) alone.
    eprintln!("{}", variant.repeat_hint());
    if args.print_variant {
        println!("{variant:#?}");
        return Ok(());
    }
    let config = SimConfig {
        username: args.username,
        password: args.password,
        otp_secret_base32: args.otp_secret,
        port: args.port,
        clock: rondo_reverse_sync::clock::system(),
    };
    let sim = Simulator::start(config)
        .await
        .context("starting the simulator")?;
    sim.state().set_variant(variant);
    if args.seed_demo {
        seed_demo(&sim.state());
    }
    // The base URL alone on stdout (logs go to stderr), so scripts can read it.
    println!("{}", sim.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sim.shutdown().await;
    Ok(())
}

fn seed_demo(state: &SimState) {
    let mut jan = SimMember::new("ABC1234", "Jan Jansen");
    jan.communication.email1 = "jan@example.nl".to_owned();
    jan.communication.mobile1 = "+31612345678".to_owned();
    jan.address.street_name = "Dorpsstraat".to_owned();
    jan.address.address_number = "1".to_owned();
    jan.address.zip_code = "1234 AB".to_owned();
    jan.address.city = "Ergens".to_owned();
    jan.set_remark(3, "1042");
    jan.set_remark(8, "2023-10-30");
    state.seed_member(jan);

    let mut piet = SimMember::new("DEF5678", "Piet Pietersen").without_section(Section::Address);
    piet.communication.email1 = "piet@example.nl".to_owned();
    state.seed_member(piet);

    state.seed_member(SimMember::new("GHI9012", "Klaas Klaassen").former());
}
