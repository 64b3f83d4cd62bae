//! `cargo xtask ci`: the checks a reviewer runs, in one command: `cargo fmt
//! --check`, `cargo clippy --workspace --all-targets -- -D warnings`,
//! rustdoc of the workspace with broken intra-doc links denied, then
//! `cargo xtask test` (the README's test command: unit tests, then the VM
//! scenarios; `--no-vm` stops after `cargo test --workspace`). Every step
//! runs; the exit status is non-zero if any failed, and a summary names them.

use std::process::ExitCode;

use anyhow::Result;

use crate::{test, util};

#[derive(clap::Args)]
#[group(skip)]
/// Format check, clippy (warnings denied), rustdoc (broken links denied), tests.
pub(crate) struct Args {
    /// Run `cargo test --workspace` only, not the VM scenarios.
    #[arg(long)]
    no_vm: bool,
    #[command(flatten)]
    test: test::Args,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let mut results: Vec<(&str, bool)> = Vec::new();
    util::banner("cargo fmt --all --check");
    results.push((
        "fmt",
        util::status(util::cargo().args(["fmt", "--all", "--check"]))?.success(),
    ));
    util::banner("cargo clippy (warnings denied)");
    results.push((
        "clippy",
        util::status(util::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?
        .success(),
    ));
    util::banner("cargo doc (broken intra-doc links denied)");
    results.push((
        "rustdoc",
        util::status(
            util::cargo()
                .args(["doc", "--workspace", "--no-deps"])
                .env("RUSTDOCFLAGS", "-D rustdoc::broken_intra_doc_links"),
        )?
        .success(),
    ));
    if args.no_vm {
        util::banner("cargo test --workspace");
        results.push((
            "test",
            util::status(util::cargo().args(["test", "--workspace"]))?.success(),
        ));
    } else {
        results.push(("test", test::run(args.test)? == ExitCode::SUCCESS));
    }
    let summary: Vec<String> = results
        .iter()
        .map(|(step, ok)| format!("{step}: {}", if *ok { "ok" } else { "FAILED" }))
        .collect();
    eprintln!("xtask ci: {}", summary.join("; "));
    Ok(if results.iter().all(|(_, ok)| *ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
