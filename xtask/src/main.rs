//! `cargo xtask`: development tasks for l2tpd that need more than cargo.
//!
//! One module per subcommand (the rust-analyzer / aya layout):
//!
//! - `vm`: boot a stock Debian kernel under virtme-ng and run a command in it;
//! - `integration`: build, boot a VM (or several: `--vms`) and run the namespace scenarios in
//!   `integration/scenarios/`;
//! - `test`: `cargo test --workspace`, then `integration`;
//! - `demo`: LAC and LNS side by side in a VM, narrated for a person watching;
//! - `fuzz`: run a cargo-fuzz target of `crates/fuzz` for a fixed time;
//! - `bench`: benchmark the daemon's signalling path on loopback (no VM);
//! - `ci`: fmt check, clippy with warnings denied, rustdoc with broken links
//!   denied, then `test`.
//! - `deb`: the Debian package (cargo-deb), checked with lintian.
//!
//! `prereq` installs the host packages the VM needs, `kernel` fetches and
//! caches the guest kernel. See `doc/kernel-vm.md` for why the
//! VM is booted the way it is.

mod bench;
mod ci;
mod deb;
mod demo;
mod fuzz;
mod integration;
mod kernel;
mod prereq;
mod test;
mod util;
mod vm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "l2tpd development tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Vm(vm::Args),
    Integration(integration::Args),
    Test(test::Args),
    Demo(demo::Args),
    Fuzz(fuzz::Args),
    Bench(bench::Args),
    Ci(ci::Args),
    Deb(deb::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Vm(args) => vm::run(args),
        Command::Integration(args) => integration::run(args),
        Command::Test(args) => test::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Ci(args) => ci::run(args),
        Command::Deb(args) => deb::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn cli_parses_each_subcommand() {
        use clap::Parser;
        let parse = |args: &[&str]| super::Cli::try_parse_from(args).map(|_| ());
        parse(&[
            "xtask", "vm", "--rwdir", "/tmp/x", "--", "ip", "l2tp", "show", "tunnel",
        ])
        .unwrap();
        parse(&[
            "xtask",
            "integration",
            "--filter",
            "10",
            "--filter",
            "teardown",
            "--keep",
        ])
        .unwrap();
        parse(&["xtask", "test", "--filter", "10"]).unwrap();
        parse(&["xtask", "test", "--kvm"]).unwrap();
        parse(&["xtask", "ci", "--no-vm"]).unwrap();
        parse(&["xtask", "ci", "--filter", "10"]).unwrap();
        parse(&["xtask", "demo", "--kvm", "--memory", "1G"]).unwrap();
        parse(&["xtask", "demo", "--lac", "xl2tpd"]).unwrap();
        parse(&["xtask", "fuzz", "decode", "--time", "600", "--jobs", "2"]).unwrap();
        parse(&["xtask", "fuzz", "--list"]).unwrap();
        parse(&[
            "xtask", "bench", "--quick", "--reps", "2", "--only", "sessions", "--only", "flood",
        ])
        .unwrap();
        parse(&[
            "xtask",
            "bench",
            "--idle-secs",
            "10",
            "--timeout",
            "30",
            "--xl2tpd",
            "--monitor",
            "--net",
            "127.0.1",
        ])
        .unwrap();
        parse(&["xtask", "deb"]).unwrap();
        parse(&[
            "xtask",
            "deb",
            "--profile",
            "dev",
            "--no-build",
            "--no-lintian",
        ])
        .unwrap();
        assert!(
            parse(&["xtask", "deb", "--profile", "debug"]).is_err(),
            "the profiles are release and dev"
        );
        assert!(
            parse(&["xtask", "bench", "--reps", "0"]).is_err(),
            "at least one rep"
        );
        assert!(parse(&["xtask", "fuzz"]).is_err(), "fuzz needs a target");
        assert!(parse(&["xtask", "vm"]).is_err(), "vm needs a command");
    }
}
