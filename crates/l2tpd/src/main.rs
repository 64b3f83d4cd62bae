//! `l2tpd`: L2TPv2 LAC/LNS daemon for Linux.

mod daemon;
mod params;
mod pool;
mod ppp;
mod ppp_events;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use l2tp_config::{Config, DataPlaneKind};
use l2tp_kernel::{DataPlane, DataPlaneMode, KernelDataPlane, NullDataPlane};
use tracing_subscriber::EnvFilter;

/// L2TPv2 (RFC 2661) LAC and LNS with the Linux kernel data plane.
#[derive(Debug, Parser)]
#[command(name = "l2tpd", version, about)]
struct Cli {
    /// Configuration file.
    #[arg(short, long, default_value = "/etc/l2tpd/l2tpd.toml")]
    config: PathBuf,
    /// Validate the configuration and exit.
    #[arg(long)]
    check_config: bool,
    /// Log filter (tracing EnvFilter syntax, e.g. `info`, `debug`,
    /// `l2tp_proto=debug`); overrides the `L2TPD_LOG` environment variable.
    #[arg(long)]
    log: Option<String>,
}

fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_env("L2TPD_LOG").ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn open_data_plane(kind: DataPlaneKind) -> anyhow::Result<Box<dyn DataPlane>> {
    Ok(match kind {
        DataPlaneKind::Null => Box::new(NullDataPlane::default()),
        DataPlaneKind::Netlink => Box::new(KernelDataPlane::new(DataPlaneMode::Netlink)?),
        DataPlaneKind::Legacy => Box::new(KernelDataPlane::new(DataPlaneMode::Legacy)?),
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_file(&cli.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let kind = config.system.data_plane;
    let dp = open_data_plane(kind).context("opening the kernel data plane")?;
    let daemon =
        daemon::Daemon::new(config, cli.config.clone(), dp, kind == DataPlaneKind::Null).await?;
    daemon.run().await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.check_config {
        return match Config::from_file(&cli.config) {
            Ok(_) => {
                println!("{}: configuration is valid", cli.config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(cli.log.as_deref());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("l2tpd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("l2tpd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
