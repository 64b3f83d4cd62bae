//! `cargo xtask integration [--filter NAME] [--keep] [--vms N]`: build the
//! workspace binaries, boot N VMs side by side (1 by default; more on hosts
//! with cores to spare), each running
//! `integration/run-in-vm.sh` over its share of the scenarios in
//! `integration/scenarios/` (shared out by their time limits, longest first),
//! then summarise.
//!
//! A scenario whose header has a `# needs: deb` line installs the Debian
//! package: when one is selected, the package is made from the debug
//! binaries just built (`deb::build_package` with the `dev` profile, checked
//! with lintian) and its path handed to the guest as `L2TPD_DEB`.
//!
//! Results go to `target/integration/<timestamp>/` (`latest` points at the
//! newest run): `results.tsv` (one line per scenario, written by the guest;
//! `results-vmN.tsv` per VM when there are several),
//! `<scenario>/scenario.log`, daemon and pppd logs, captures.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::util::{self, shell_join};
use crate::vm::{Boot, Vm, VmOpts};

/// How many timestamped result directories to keep.
const KEEP_RUNS: usize = 10;

#[derive(clap::Args)]
/// Run the VM integration scenarios (real kernel L2TP, pppd, xl2tpd).
pub(crate) struct Args {
    /// Run only scenarios whose name contains NAME (e.g. "10", "teardown"); repeatable.
    #[arg(long, value_name = "NAME")]
    pub filter: Vec<String>,
    /// Keep every scenario's scratch files (configs, raw captures) in the
    /// results, not only those of failing scenarios.
    #[arg(long)]
    pub keep: bool,
    /// Per-scenario time limit in seconds.
    #[arg(long, default_value_t = 240, value_name = "SECS")]
    pub timeout: u64,
    /// Do not run `cargo build --workspace --bins` first.
    #[arg(long)]
    pub no_build: bool,
    /// Build and run the release binaries (target/release) instead of the
    /// debug ones: for the load scenario (85), where a debug daemon under
    /// software emulation measures itself rather than the design.
    #[arg(long)]
    pub release: bool,
    /// List the scenarios that would run and exit.
    #[arg(long)]
    pub list: bool,
    /// VMs that run the scenarios side by side (each boots its own kernel;
    /// scenarios are shared out by their time limits). One by default:
    /// software emulation is CPU-bound, and on 2 cores two VMs ran each
    /// scenario twice as slowly (no gain, and scenarios near their limits
    /// timed out); more help on hosts with more cores.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=8))]
    pub vms: u32,
    #[command(flatten)]
    pub vm: VmOpts,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let scenarios = select(&list_scenarios()?, &args.filter)?;
    if args.list {
        for s in &scenarios {
            println!("{s}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let profile = if args.release { "release" } else { "debug" };
    if !args.no_build {
        build(args.release)?;
    }
    // The debug binaries, already built: packaging them takes seconds, a
    // release build would take minutes.
    let deb = if scenarios.iter().any(|s| needs_deb(s)) {
        Some(crate::deb::build_package(
            crate::deb::Profile::Dev,
            false,
            true,
        )?)
    } else {
        None
    };
    let vm = Vm::prepare(&args.vm)?;
    let results_dir = new_results_dir("integration")?;
    let l2tpd = util::target_dir().join(profile).join("l2tpd");
    if !l2tpd.exists() {
        eprintln!(
            "xtask: warning: {} does not exist; l2tpd scenarios will fail",
            l2tpd.display()
        );
    }

    let script = util::project_root()
        .join("integration")
        .join("run-in-vm.sh");
    let limit = |s: &String| scenario_timeout(s).unwrap_or(args.timeout);
    let shards = shard(&scenarios, args.vms as usize, limit);
    util::banner(&format!(
        "running {} scenario(s) in {} VM(s); results in {}",
        scenarios.len(),
        shards.len(),
        results_dir.display()
    ));
    let runs: Vec<(String, Vec<String>, Duration)> = shards
        .into_iter()
        .enumerate()
        .map(|(i, names)| {
            // Each scenario's own limit plus a margin each, and the boot.
            let secs = names.iter().map(|s| limit(s) + 15).sum::<u64>() + 180;
            let suffix = if args.vms > 1 {
                format!("-vm{}", i + 1)
            } else {
                String::new()
            };
            (suffix, names, Duration::from_secs(secs))
        })
        .collect();
    let outcomes: Vec<Result<crate::vm::Outcome>> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(suffix, names, vm_timeout)| {
                let mut words = vec![
                    "env".to_string(),
                    format!("L2TP_RESULTS={}", results_dir.display()),
                    format!("L2TPD_BIN={}", l2tpd.display()),
                    format!("L2TP_SCENARIO_TIMEOUT={}", args.timeout),
                    format!("L2TP_KEEP={}", u8::from(args.keep)),
                    format!("L2TP_SHARD={}", suffix.trim_start_matches('-')),
                    format!(
                        "L2TPD_DEB={}",
                        deb.as_deref()
                            .map(|d| d.display().to_string())
                            .unwrap_or_default()
                    ),
                    "bash".into(),
                    script.display().to_string(),
                ];
                words.extend(names.iter().cloned());
                let (vm, dir) = (&vm, &results_dir);
                scope.spawn(move || {
                    vm.boot(
                        &shell_join(&words),
                        std::slice::from_ref(dir),
                        Boot {
                            interactive: false,
                            timeout: Some(*vm_timeout),
                        },
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("VM thread panicked")))
            })
            .collect()
    });

    let mut parsed = Vec::new();
    let mut vm_problems = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut boots = Vec::new();
    for ((suffix, _, vm_timeout), outcome) in runs.iter().zip(outcomes) {
        let file = |base: &str, ext: &str| results_dir.join(format!("{base}{suffix}{ext}"));
        let vm_name = if suffix.is_empty() {
            "VM".to_string()
        } else {
            suffix.trim_start_matches('-').to_string()
        };
        parsed.extend(parse_results(
            &fs::read_to_string(file("results", ".tsv")).unwrap_or_default(),
        ));
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                vm_problems.push(format!("{vm_name}: {e:#}"));
                continue;
            }
        };
        elapsed = elapsed.max(outcome.elapsed);
        // Why the VM itself failed, if it did.
        if outcome.timed_out {
            vm_problems.push(format!("{vm_name}: killed after {vm_timeout:?}"));
        }
        if let Ok(err) = fs::read_to_string(file("setup-error", "")) {
            vm_problems.push(format!("{vm_name}: {}", err.trim()));
        }
        if !matches!(outcome.exit_code, 0 | 1) {
            vm_problems.push(format!(
                "{vm_name}: vng exited with {} (255: no exit code from the guest: kernel panic or lost console)",
                outcome.exit_code
            ));
        }
        if !file("done", "").exists() {
            vm_problems.push(format!(
                "{vm_name}: the guest harness did not finish (no `done` marker)"
            ));
        }
        if let Some(b) = fs::read_to_string(file("guest-uptime-at-start", ""))
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
        {
            boots.push(format!("{b:.1} s"));
        }
    }
    let results = summarize(&scenarios, &parsed);

    // Each failed scenario's log in full, then (after the table, where the tail
    // of a long CI log still shows it) the reasons its checks gave.
    let mut reasons = String::new();
    for r in results.iter().filter(|r| r.status != Status::Pass) {
        let log = results_dir.join(&r.name).join("scenario.log");
        eprintln!("\n----- {} {}: {} -----", r.name, r.status, log.display());
        match fs::read_to_string(&log) {
            Ok(text) => {
                eprint!("{text}");
                for line in fail_lines(&r.name, &text) {
                    let _ = writeln!(reasons, "{}: {line}", r.name);
                }
            }
            Err(_) => eprintln!("(no log)"),
        }
        eprintln!("----- end of {} -----", r.name);
    }

    println!();
    print!("{}", render_table(&results));
    print!("{reasons}");
    println!(
        "VMs: {:.1} s in all{}; results: {}",
        elapsed.as_secs_f64(),
        if boots.is_empty() {
            String::new()
        } else {
            format!(", guests booted in {}", boots.join(", "))
        },
        results_dir.display()
    );
    for p in &vm_problems {
        println!("VM FAILURE: {p}");
    }
    let passed = results.iter().filter(|r| r.status == Status::Pass).count();
    let failed = results.len() - passed;
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 && vm_problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo build --workspace --bins` (`--release` when `release`): the guest
/// runs target/debug/l2tpd or target/release/l2tpd.
pub(crate) fn build(release: bool) -> Result<()> {
    util::banner("building workspace binaries");
    let mut cmd = util::cargo();
    cmd.args(["build", "--workspace", "--bins"]);
    if release {
        cmd.arg("--release");
    }
    util::run(&mut cmd)
}

/// A fresh `target/<kind>/<timestamp>/` with `latest` pointing at it; old
/// runs beyond the last few are removed.
pub(crate) fn new_results_dir(kind: &str) -> Result<PathBuf> {
    let base = util::target_dir().join(kind);
    fs::create_dir_all(&base)?;
    let mut name = util::timestamp();
    let mut n = 1;
    while base.join(&name).exists() {
        n += 1;
        name = format!("{}-{n}", util::timestamp());
    }
    let dir = base.join(&name);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let latest = base.join("latest");
    let _ = fs::remove_file(&latest);
    std::os::unix::fs::symlink(&name, &latest)
        .with_context(|| format!("cannot create {}", latest.display()))?;
    prune(&base)?;
    Ok(dir)
}

fn prune(base: &Path) -> Result<()> {
    let mut runs: Vec<PathBuf> = fs::read_dir(base)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(|c: char| c.is_ascii_digit())
            })
        })
        .collect();
    runs.sort();
    let excess = runs.len().saturating_sub(KEEP_RUNS);
    for old in &runs[..excess] {
        fs::remove_dir_all(old).with_context(|| format!("cannot remove {}", old.display()))?;
    }
    Ok(())
}

/// Scenario names (file stems of `integration/scenarios/*.sh`), sorted.
fn list_scenarios() -> Result<Vec<String>> {
    let dir = util::project_root().join("integration").join("scenarios");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".sh"))
                .map(String::from)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// The text of scenario `name` (empty if unreadable).
fn scenario_text(name: &str) -> String {
    let path = util::project_root()
        .join("integration")
        .join("scenarios")
        .join(format!("{name}.sh"));
    fs::read_to_string(path).unwrap_or_default()
}

/// Share `scenarios` out over at most `n` VMs, longest `limit` first, each to
/// the VM with the least so far; each share in scenario order.
fn shard(scenarios: &[String], n: usize, limit: impl Fn(&String) -> u64) -> Vec<Vec<String>> {
    let n = n.clamp(1, scenarios.len().max(1));
    let mut by_limit: Vec<&String> = scenarios.iter().collect();
    by_limit.sort_by_key(|s| std::cmp::Reverse(limit(s)));
    let mut shares: Vec<(u64, Vec<String>)> = vec![(0, Vec::new()); n];
    for s in by_limit {
        let least = shares
            .iter_mut()
            .min_by_key(|(load, _)| *load)
            .expect("n >= 1");
        least.0 += limit(s);
        least.1.push(s.clone());
    }
    shares
        .into_iter()
        .map(|(_, mut v)| {
            v.sort();
            v
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// A scenario whose header has a `# manual: REASON` line runs only when a
/// `--filter` names it, never in the default set (`cargo xtask test`).
fn is_manual(name: &str) -> bool {
    scenario_text(name)
        .lines()
        .any(|l| l.starts_with("# manual:"))
}

/// The `# timeout: SECONDS` line of a scenario's header, which
/// `run-in-vm.sh` uses instead of `--timeout`.
fn scenario_timeout(name: &str) -> Option<u64> {
    scenario_text(name)
        .lines()
        .find_map(|l| l.strip_prefix("# timeout: ")?.trim().parse().ok())
}

/// A scenario whose header has a `# needs: deb` line installs the package
/// (`cargo xtask deb`), which is then built before the VM boots.
fn needs_deb(name: &str) -> bool {
    scenario_text(name)
        .lines()
        .any(|l| l.trim_end() == "# needs: deb")
}

fn select(all: &[String], filters: &[String]) -> Result<Vec<String>> {
    let chosen: Vec<String> = all
        .iter()
        .filter(|name| {
            if filters.is_empty() {
                !is_manual(name)
            } else {
                filters.iter().any(|f| name.contains(f.as_str()))
            }
        })
        .cloned()
        .collect();
    if chosen.is_empty() {
        bail!(
            "no scenario matches {filters:?}; there are: {}",
            all.join(", ")
        );
    }
    Ok(chosen)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    Fail,
    Timeout,
    /// No result line: the VM died or the harness stopped before it.
    NotRun,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Timeout => "TIMEOUT",
            Self::NotRun => "NOT RUN",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ScenarioResult {
    name: String,
    status: Status,
    seconds: Option<f64>,
}

/// Lines of `results.tsv`: `NAME\tPASS|FAIL|TIMEOUT\tSECONDS\tEXIT_STATUS`.
/// Malformed lines are skipped; an unknown status counts as a failure.
fn parse_results(tsv: &str) -> Vec<ScenarioResult> {
    tsv.lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let name = f.next()?.trim();
            let status = match f.next()?.trim() {
                "PASS" => Status::Pass,
                "TIMEOUT" => Status::Timeout,
                _ => Status::Fail,
            };
            let seconds = f.next().and_then(|s| s.trim().parse().ok());
            (!name.is_empty()).then(|| ScenarioResult {
                name: name.to_string(),
                status,
                seconds,
            })
        })
        .collect()
}

/// The lines of scenario `name`'s log that say why it failed: those of
/// lib.sh's `fail` ("[  12.3s] FAIL: REASON"), without the harness's closing
/// "FAIL: NAME (exit status N)", and run-in-vm.sh's "scenario killed after
/// the time limit" line; the first 5 at most.
fn fail_lines<'a>(name: &str, log: &'a str) -> Vec<&'a str> {
    let closing = format!("] FAIL: {name} (");
    log.lines()
        .filter(|l| {
            l.contains("] FAIL: ") && !l.contains(&closing)
                || l.starts_with("scenario killed after")
        })
        .take(5)
        .collect()
}

/// One result per expected scenario, in order; missing ones are NotRun.
fn summarize(expected: &[String], parsed: &[ScenarioResult]) -> Vec<ScenarioResult> {
    expected
        .iter()
        .map(|name| {
            parsed
                .iter()
                .rev()
                .find(|r| &r.name == name)
                .cloned()
                .unwrap_or(ScenarioResult {
                    name: name.clone(),
                    status: Status::NotRun,
                    seconds: None,
                })
        })
        .collect()
}

fn render_table(results: &[ScenarioResult]) -> String {
    let width = results
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(0)
        .max("scenario".len());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:width$}  {:7}  {:>7}",
        "scenario", "result", "seconds"
    );
    let _ = writeln!(out, "{}", "-".repeat(width + 18));
    for r in results {
        let secs = r
            .seconds
            .map(|s| format!("{s:.1}"))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "{:width$}  {:7}  {secs:>7}", r.name, r.status);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn results_parsing_and_summary() {
        let tsv = "10-a\tPASS\t12.5\t0\n20-b\tFAIL\t3.0\t1\ngarbage\n30-c\tTIMEOUT\t120.1\t124\n\n";
        let parsed = parse_results(tsv);
        assert_eq!(parsed.len(), 3, "a line without a status is skipped");
        let expected = names(&["10-a", "20-b", "30-c", "40-d"]);
        let s = summarize(&expected, &parsed);
        assert_eq!(
            s.iter().map(|r| r.status).collect::<Vec<_>>(),
            [Status::Pass, Status::Fail, Status::Timeout, Status::NotRun]
        );
        assert_eq!(s[0].seconds, Some(12.5));
        assert_eq!(s[3].seconds, None);
        let table = render_table(&s);
        assert!(table.contains("10-a      PASS        12.5"), "{table}");
        assert!(table.contains("40-d      NOT RUN        -"), "{table}");
    }

    #[test]
    fn fail_reasons_leave_out_the_harness_line() {
        let log = "[   1.0s] ok: x\n[  51.0s] FAIL: the second ICRP came before IPCP\n\
                   ===== dump =====\n[  51.5s] FAIL: 40-a (exit status 1)\n";
        assert_eq!(
            fail_lines("40-a", log),
            ["[  51.0s] FAIL: the second ICRP came before IPCP"]
        );
        assert!(fail_lines("40-a", "[  9.0s] FAIL: 40-a (exit status 124)\n").is_empty());
    }

    #[test]
    fn header_timeouts_and_needs() {
        assert_eq!(scenario_timeout("95-deb-install"), Some(600));
        assert!(needs_deb("95-deb-install"));
        assert!(!needs_deb("10-xl2tpd-pair"));
    }

    #[test]
    fn filtering() {
        let all = names(&["10-xl2tpd-pair", "20-l2tpd-lac-xl2tpd-lns", "50-teardown"]);
        assert_eq!(select(&all, &[]).unwrap(), all);
        assert_eq!(
            select(&all, &names(&["teardown"])).unwrap(),
            names(&["50-teardown"])
        );
        assert_eq!(
            select(&all, &names(&["10", "50"])).unwrap(),
            names(&["10-xl2tpd-pair", "50-teardown"])
        );
        assert!(select(&all, &names(&["nope"])).is_err());
    }

    #[test]
    fn scenarios_are_shared_out_longest_first() {
        let all = names(&["10-a", "20-b", "30-c", "40-d", "50-e"]);
        let limit = |s: &String| match s.as_str() {
            "20-b" => 900,
            "40-d" => 400,
            _ => 240,
        };
        let shares = shard(&all, 2, limit);
        assert_eq!(
            shares,
            [names(&["20-b"]), names(&["10-a", "30-c", "40-d", "50-e"])]
        );
        assert_eq!(shard(&all, 1, limit), std::slice::from_ref(&all));
        assert_eq!(shard(&all[..1], 4, limit).len(), 1, "no empty VM");
    }

    #[test]
    fn timeout_headers_are_read_like_run_in_vm_does() {
        assert_eq!(scenario_timeout("85-hundred-calls-at-once"), Some(900));
        assert_eq!(scenario_timeout("10-xl2tpd-pair"), None);
        assert!(is_manual("85-hundred-calls-at-once"));
        assert!(!is_manual("10-xl2tpd-pair"));
    }

    #[test]
    fn scenarios_on_disk_are_runnable() {
        let all = list_scenarios().unwrap();
        assert!(all.iter().any(|s| s == "10-xl2tpd-pair"), "{all:?}");
        for name in &all {
            assert!(
                name.len() > 3
                    && name[..2].bytes().all(|b| b.is_ascii_digit())
                    && &name[2..3] == "-",
                "scenario {name} is not named NN-name.sh"
            );
        }
    }
}
