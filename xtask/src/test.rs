//! `cargo xtask test`: `cargo test --workspace`, then `cargo xtask
//! integration`. Both always run; the exit status is non-zero if either failed.

use std::process::ExitCode;

use anyhow::Result;

use crate::integration;
use crate::util;

#[derive(clap::Args)]
#[group(skip)] // it flattens integration::Args, whose group is also "Args"
/// Run the unit tests, then the VM integration scenarios.
pub(crate) struct Args {
    #[command(flatten)]
    integration: integration::Args,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    util::banner("cargo test --workspace");
    let unit = util::status(util::cargo().args(["test", "--workspace"]))?;
    let integ = match integration::run(args.integration) {
        Ok(code) => code == ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: integration: error: {err:#}");
            false
        }
    };
    let verdict = |ok: bool| if ok { "ok" } else { "FAILED" };
    eprintln!(
        "xtask test: cargo test --workspace: {}; integration: {}",
        verdict(unit.success()),
        verdict(integ)
    );
    Ok(if unit.success() && integ {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
