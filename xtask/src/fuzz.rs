//! `cargo xtask fuzz <target> --time <seconds> [--jobs N]`: run one
//! cargo-fuzz target of `crates/fuzz` (libFuzzer) for a fixed time.
//!
//! - Installs cargo-fuzz from crates.io (`cargo install cargo-fuzz`) when it
//!   is missing.
//! - Only the stable toolchain is available, and cargo-fuzz passes
//!   nightly-only flags (`-Zsanitizer=address`, `-Cllvm-args=...` are fine,
//!   `-Z` are not): `RUSTC_BOOTSTRAP=1` lets the stable compiler accept them.
//!   AddressSanitizer works that way (the stable `rust-std` ships
//!   `librustc-stable_rt.asan.a`); `--sanitizer none` keeps libFuzzer's
//!   SanitizerCoverage guidance and drops ASan (faster, for safe Rust only
//!   catches panics, which is what the targets check anyway).
//! - Builds in release mode with debug assertions and overflow checks
//!   (cargo-fuzz's default), into `crates/fuzz/target`.
//! - Inputs: `crates/fuzz/corpus/<target>` (the evolving corpus, gitignored;
//!   new inputs go there), `crates/fuzz/seeds/<target>` and
//!   `crates/fuzz/regressions/<target>` (committed, read only).
//! - Crashes go to `crates/fuzz/artifacts/<target>/`; the exit status is
//!   non-zero and the artifact paths are printed.
//! - The whole libFuzzer output is also kept in
//!   `crates/fuzz/target/logs/<target>-<timestamp>.log`; the summary line
//!   gives the executions (`stat::number_of_executed_units`, or the last
//!   `#N` status line in fork mode) and the time.

use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::util;

#[derive(clap::Args)]
/// Run a cargo-fuzz target of crates/fuzz for a fixed time (libFuzzer).
pub(crate) struct Args {
    /// Fuzz target (see --list).
    #[arg(required_unless_present = "list", value_name = "TARGET")]
    pub target: Option<String>,
    /// List the fuzz targets and exit.
    #[arg(long)]
    pub list: bool,
    /// How long to fuzz, in seconds (libFuzzer -max_total_time).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub time: u64,
    /// Parallel fuzzing processes (libFuzzer -fork=N).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub jobs: u16,
    /// Sanitizer to build with.
    #[arg(long, value_enum, default_value_t = Sanitizer::Address)]
    pub sanitizer: Sanitizer,
    /// Per-input time limit in seconds (libFuzzer -timeout): slower inputs
    /// are reported as hangs.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub input_timeout: u64,
    /// Extra arguments for libFuzzer (e.g. -- -max_len=8192).
    #[arg(last = true, value_name = "LIBFUZZER_ARGS")]
    pub libfuzzer_args: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Sanitizer {
    /// AddressSanitizer (works on stable with RUSTC_BOOTSTRAP=1).
    Address,
    /// No sanitizer: coverage-guided libFuzzer only.
    None,
}

impl Sanitizer {
    fn as_str(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::None => "none",
        }
    }
}

/// `crates/fuzz`, relative to the project root (cargo-fuzz prints paths
/// relative to its working directory, the root).
const FUZZ_DIR: &str = "crates/fuzz";

fn fuzz_dir() -> PathBuf {
    util::project_root().join(FUZZ_DIR)
}

/// The fuzz targets: the file stems of `crates/fuzz/fuzz_targets/*.rs`.
pub(crate) fn targets() -> Result<Vec<String>> {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_string());
        }
    }
    names.sort();
    Ok(names)
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let targets = targets()?;
    if args.list {
        for t in &targets {
            println!("{t}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(target) = args.target.as_deref() else {
        bail!("no fuzz target given (one of: {})", targets.join(", "));
    };
    if !targets.iter().any(|t| t == target) {
        bail!(
            "unknown fuzz target `{target}` (one of: {})",
            targets.join(", ")
        );
    }
    if args.time == 0 {
        bail!("--time must be at least 1 second");
    }
    ensure_cargo_fuzz()?;

    let root = util::project_root();
    let rel = |sub: &str| format!("{FUZZ_DIR}/{sub}/{target}");
    let corpus = rel("corpus");
    fs::create_dir_all(root.join(&corpus)).with_context(|| format!("cannot create {corpus}"))?;
    let mut inputs = vec![corpus.clone()];
    for sub in ["seeds", "regressions"] {
        let dir = rel(sub);
        if root.join(&dir).is_dir() {
            inputs.push(dir);
        }
    }

    let log_dir = fuzz_dir().join("target").join("logs");
    fs::create_dir_all(&log_dir).with_context(|| format!("cannot create {}", log_dir.display()))?;
    let log_path = log_dir.join(format!("{target}-{}.log", util::timestamp()));

    let mut cmd = util::cargo();
    cmd.env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", "--fuzz-dir", FUZZ_DIR])
        .args(["--sanitizer", args.sanitizer.as_str()])
        .args(["--jobs", &args.jobs.to_string()])
        .arg(target)
        .args(&inputs)
        .arg("--")
        .arg(format!("-max_total_time={}", args.time))
        .arg(format!("-timeout={}", args.input_timeout))
        .arg("-print_final_stats=1")
        .args(&args.libfuzzer_args);

    util::banner(&format!(
        "fuzzing `{target}` for {} s ({} job{}, sanitizer {}; RUSTC_BOOTSTRAP=1 on stable)",
        args.time,
        args.jobs,
        if args.jobs == 1 { "" } else { "s" },
        args.sanitizer.as_str()
    ));
    eprintln!("$ RUSTC_BOOTSTRAP=1 {}", util::display(&cmd));
    eprintln!("log: {}", log_path.display());
    let corpus_before = count_files(&root.join(&corpus));
    let started = Instant::now();
    let (status, output) = run_teed(&mut cmd, &log_path)?;
    let elapsed = started.elapsed();
    let corpus_after = count_files(&root.join(&corpus));

    let stats = Stats::parse(&output);
    let execs = stats
        .executions
        .map_or_else(|| "unknown".to_string(), |n| n.to_string());
    let rate = match (stats.executions, stats.seconds) {
        (Some(n), Some(s)) if s > 0 => format!(", {} exec/s", n / s),
        _ => String::new(),
    };
    let fuzz_time = stats
        .seconds
        .map_or_else(String::new, |s| format!(" (libFuzzer: {s} s)"));
    eprintln!();
    eprintln!(
        "xtask fuzz {target}: {} s wall{fuzz_time}, {execs} executions{rate}; \
         corpus {corpus}: {corpus_before} -> {corpus_after} files",
        elapsed.as_secs()
    );
    eprintln!("log: {}", log_path.display());

    if status.success() {
        eprintln!("xtask fuzz {target}: no crash");
        return Ok(ExitCode::SUCCESS);
    }
    if stats.artifacts.is_empty() {
        eprintln!("xtask fuzz {target}: FAILED ({status}), no crash artifact (build error?)");
    } else {
        for a in &stats.artifacts {
            eprintln!("xtask fuzz {target}: CRASH, input written to {a}");
        }
        eprintln!(
            "minimize with: RUSTC_BOOTSTRAP=1 cargo fuzz tmin --fuzz-dir {FUZZ_DIR} {target} <artifact>\n\
             then add it as {FUZZ_DIR}/regressions/{target}/<bug-class> \
             (replayed by `cargo test -p l2tp-proto --test fuzz_regressions`)"
        );
    }
    Ok(ExitCode::FAILURE)
}

/// Installs cargo-fuzz with `cargo install` unless `cargo fuzz` already works.
fn ensure_cargo_fuzz() -> Result<()> {
    if let Some(version) = util::probe(util::cargo().args(["fuzz", "--version"])) {
        eprintln!("xtask: using {}", version.trim());
        return Ok(());
    }
    util::banner("cargo-fuzz is not installed: installing it from crates.io");
    util::run(util::cargo().args(["install", "--locked", "cargo-fuzz"]))
        .context("cannot install cargo-fuzz")
}

/// Runs `cmd`, copying its stderr (where libFuzzer reports) line by line
/// to ours and to `log`; returns the exit status and the captured text.
fn run_teed(cmd: &mut Command, log: &Path) -> Result<(std::process::ExitStatus, String)> {
    let mut file =
        fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{}`", util::display(cmd)))?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let mut captured = String::new();
    for line in BufReader::new(stderr).split(b'\n') {
        let line = line.context("reading cargo fuzz output")?;
        let line = String::from_utf8_lossy(&line);
        eprintln!("{line}");
        writeln!(file, "{line}").ok();
        captured.push_str(&line);
        captured.push('\n');
    }
    let status = child.wait().context("waiting for cargo fuzz")?;
    Ok((status, captured))
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .count()
    })
}

/// What libFuzzer's output says about a run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Stats {
    /// Executed inputs: `stat::number_of_executed_units` (summed over
    /// processes), else the last `#N` status line (fork mode prints the
    /// total there).
    executions: Option<u64>,
    /// Fuzzing time from `Done N runs in S second(s)` or `INFO: exiting: 0
    /// time: Ss` (fork mode).
    seconds: Option<u64>,
    /// Paths after `Test unit written to` (crash, leak, timeout, oom).
    artifacts: Vec<String>,
}

impl Stats {
    fn parse(output: &str) -> Self {
        let mut stats = Self::default();
        let mut units: Option<u64> = None;
        let mut last_status: Option<u64> = None;
        for line in output.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("stat::number_of_executed_units:") {
                if let Ok(n) = rest.trim().parse::<u64>() {
                    units = Some(units.unwrap_or(0) + n);
                }
            } else if let Some(rest) = line.strip_prefix('#') {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(n) = digits.parse::<u64>() {
                    last_status = Some(n);
                }
            } else if let Some(rest) = line.strip_prefix("Done ") {
                // "Done 279053 runs in 6 second(s)"
                let words: Vec<&str> = rest.split_whitespace().collect();
                if let [_, "runs", "in", s, ..] = words.as_slice() {
                    stats.seconds = s.parse().ok();
                }
            } else if let Some(rest) = line.strip_prefix("INFO: exiting:") {
                // fork mode: "INFO: exiting: 0 time: 601s"
                if let Some(t) = rest.split("time:").nth(1) {
                    stats.seconds = t.trim().trim_end_matches('s').parse().ok();
                }
            }
            if let Some((_, path)) = line.split_once("Test unit written to ") {
                stats.artifacts.push(path.trim().to_string());
            }
        }
        stats.executions = units.or(last_status);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_listed() {
        let t = targets().unwrap();
        for name in ["decode", "endpoint", "hidden"] {
            assert!(t.iter().any(|x| x == name), "{t:?}");
        }
    }

    #[test]
    fn parses_a_single_process_run() {
        let out = "\
#279053	DONE   cov: 1135 ft: 2245 corp: 264/15018b lim: 2381 exec/s: 46508 rss: 222Mb
###### Recommended dictionary. ######
\"\\001\\000\" # Uses: 4029
###### End of recommended dictionary. ######
Done 279053 runs in 6 second(s)
stat::number_of_executed_units: 279053
stat::average_exec_per_sec:     46508
";
        assert_eq!(
            Stats::parse(out),
            Stats {
                executions: Some(279_053),
                seconds: Some(6),
                artifacts: vec![],
            }
        );
    }

    #[test]
    fn parses_fork_mode_and_crashes() {
        let out = "\
#120000: cov: 900 ft: 2000 corp: 300 exec/s 20000 oom/timeout/crash: 0/0/0 time: 30s job: 4 dft_time: 0
#250000: cov: 901 ft: 2010 corp: 301 exec/s 20000 oom/timeout/crash: 0/0/1 time: 60s job: 8 dft_time: 0
==123== ERROR: libFuzzer: deadly signal
artifact_prefix='crates/fuzz/artifacts/decode/'; Test unit written to crates/fuzz/artifacts/decode/crash-da39a3ee
INFO: exiting: 1 time: 61s
";
        assert_eq!(
            Stats::parse(out),
            Stats {
                executions: Some(250_000),
                seconds: Some(61),
                artifacts: vec!["crates/fuzz/artifacts/decode/crash-da39a3ee".into()],
            }
        );
    }
}
