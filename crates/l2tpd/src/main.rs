//! `l2tpd`: L2TPv2 LAC/LNS daemon for Linux.

mod api;
mod daemon;
mod fdlimit;
mod import;
mod journal;
mod logbuf;
mod logtime;
mod metrics;
mod notify;
mod params;
mod pool;
mod ppp;
mod ppp_events;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use l2tp_config::{Config, ConfigPaths, DataPlaneKind};
use l2tp_kernel::{DataPlane, DataPlaneMode, KernelDataPlane, NullDataPlane};
use tracing_subscriber::EnvFilter;

/// L2TPv2 (RFC 2661) LAC and LNS with the Linux kernel data plane.
#[derive(Debug, Parser)]
#[command(name = "l2tpd", version, about)]
struct Cli {
    /// Configuration file; its drop-ins are read from `FILE.d/*.toml`. Without
    /// it, `l2tpd.toml` and `l2tpd.toml.d/` are searched in /etc/l2tpd,
    /// /run/l2tpd and /usr/lib/l2tpd (see l2tpd.toml(5)).
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// Validate the configuration, print the effective configuration as TOML
    /// and exit (non-zero with every error found). Same as `l2tpd check`.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Subcommand>,
    /// Log filter (tracing EnvFilter syntax, e.g. `info`, `debug`,
    /// `l2tp_proto=debug`); overrides the `L2TPD_LOG` environment variable.
    #[arg(long)]
    log: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// Validate the configuration and print the effective, merged and
    /// inherited configuration as TOML (secrets redacted).
    Check,
    /// Convert an xl2tpd, kl2tpd or OpenL2TP configuration to l2tpd.toml on
    /// stdout (exit status 2 when a setting would change behaviour; see
    /// doc/migration.md).
    #[command(subcommand)]
    Import(import::Format),
}

fn config_paths(cli: &Cli) -> ConfigPaths {
    match &cli.config {
        Some(f) => ConfigPaths::explicit(f.clone()),
        None => ConfigPaths::system(),
    }
}

/// `l2tpd check`: the effective configuration on stdout, warnings and errors on stderr.
fn check(paths: &ConfigPaths) -> ExitCode {
    match Config::load(paths) {
        Ok(c) => {
            for w in c.warnings() {
                eprintln!("warning: {w}");
            }
            print!("{}", c.to_toml_effective());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Logging with the filter `--log`, else `L2TPD_LOG`, else `info`, plus what
/// the API's per-object trace flags ask for. To journald over its native
/// protocol when stderr is the journal stream systemd set up
/// (`JOURNAL_STREAM`), otherwise to stderr. Returns a warning to log once
/// logging is up: journald's socket could not be opened, so stderr it is.
fn init_logging(filter: Option<&str>) -> Option<String> {
    let filter = filter
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_env("L2TPD_LOG").ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    // The configured level, plus what per-object trace flags ask for (API).
    let filter = api::trace::Filter::new(filter);
    let mut note = None;
    if journal::stderr_is_journal() {
        match journal::JournalWriter::open() {
            Ok(w) => {
                // The journal keeps the time and the level (PRIORITY=).
                let layer = tracing_subscriber::fmt::layer()
                    .with_writer(w)
                    .with_ansi(false)
                    .without_time()
                    .with_level(false)
                    .with_target(false)
                    .with_filter(filter);
                tracing_subscriber::registry().with(layer).init();
                return None;
            }
            Err(e) => {
                note = Some(format!(
                    "stderr is the journal but journald's socket cannot be used ({e}): logging to stderr"
                ));
            }
        }
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(logbuf::Stderr)
        .with_timer(logtime::CachedUtc)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_filter(filter);
    tracing_subscriber::registry().with(fmt).init();
    note
}

fn open_data_plane(kind: DataPlaneKind) -> anyhow::Result<Box<dyn DataPlane>> {
    Ok(match kind {
        DataPlaneKind::Null => Box::new(NullDataPlane::signalling_only()),
        DataPlaneKind::Netlink => Box::new(KernelDataPlane::new(DataPlaneMode::Netlink)?),
        DataPlaneKind::Legacy => Box::new(KernelDataPlane::new(DataPlaneMode::Legacy)?),
    })
}

async fn run(paths: ConfigPaths) -> anyhow::Result<()> {
    let config = Config::load(&paths).map_err(|e| anyhow::anyhow!("{e}"))?;
    for src in config.sources() {
        tracing::info!(file = %src.display(), "configuration");
    }
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    let kind = config.system.data_plane;
    let dp = open_data_plane(kind).context("opening the kernel data plane")?;
    let daemon = daemon::Daemon::new(config, paths, dp, kind == DataPlaneKind::Null).await?;
    daemon.run().await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Subcommand::Import(format)) = &cli.command {
        return import::run(format);
    }
    let paths = config_paths(&cli);
    if cli.check_config || matches!(cli.command, Some(Subcommand::Check)) {
        return check(&paths);
    }
    if let Some(warning) = init_logging(cli.log.as_deref()) {
        tracing::warn!("{warning}");
    }
    // Before any socket: a carrier LNS needs far more than the usual 1024.
    fdlimit::raise_nofile_limit();
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
    match rt.block_on(run(paths)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("l2tpd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
