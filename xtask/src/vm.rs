//! `cargo xtask vm [--rwdir DIR] -- CMD…`: boot the guest kernel with
//! virtme-ng and run one command in it; the guest's exit code is ours.
//!
//! The guest's root is the host's `/`, read-only (writes land in a tmpfs
//! overlay); only `--rwdir` directories are written back. Flags, per
//! `doc/kernel-vm.md`: `--disable-kvm` unless `--kvm` (or `L2TPD_VM_KVM=1`)
//! asks for KVM (on the machines this project is built on `/dev/kvm` exists
//! but a nested KVM boot hangs, so software emulation, TCG, is the default),
//! `--force-9p` (virtiofsd is unusable; skips its retries).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::prereq::{self, Apt};
use crate::util::{self, display};
use crate::{kernel, util::shell_join};

#[derive(clap::Args)]
/// Boot the test VM (Debian kernel, host FS read-only) and run a command in it.
pub(crate) struct Args {
    /// Directory the guest may write (shared with the host); repeatable.
    #[arg(long, value_name = "DIR")]
    rwdir: Vec<PathBuf>,
    #[command(flatten)]
    opts: VmOpts,
    /// The command to run in the guest. One word is a shell command line
    /// as is; several words are quoted one by one.
    #[arg(last = true, required = true, value_name = "CMD")]
    cmd: Vec<String>,
}

#[derive(clap::Args, Clone)]
pub(crate) struct VmOpts {
    /// Guest memory (qemu -m syntax).
    #[arg(long, default_value = "2G")]
    pub memory: String,
    /// Guest CPUs.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Boot with KVM instead of software emulation (TCG). Off by default:
    /// where /dev/kvm exists but nested KVM is broken (these build machines),
    /// a KVM boot hangs. Also `L2TPD_VM_KVM=1`.
    #[arg(long, env = "L2TPD_VM_KVM", value_parser = clap::builder::FalseyValueParser::new())]
    pub kvm: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let vm = Vm::prepare(&args.opts)?;
    for dir in &args.rwdir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --rwdir {}", dir.display()))?;
    }
    let rwdirs: Vec<PathBuf> = args
        .rwdir
        .iter()
        .map(|d| d.canonicalize())
        .collect::<Result<_, _>>()?;
    let cmd = if args.cmd.len() == 1 {
        args.cmd[0].clone()
    } else {
        shell_join(&args.cmd)
    };
    let outcome = vm.boot(
        &cmd,
        &rwdirs,
        Boot {
            interactive: true,
            timeout: None,
        },
    )?;
    Ok(outcome.exit())
}

/// A VM ready to boot: prerequisites installed, kernel cached.
pub(crate) struct Vm {
    vng: PathBuf,
    vmlinuz: PathBuf,
    opts: VmOpts,
}

/// How to run one boot.
pub(crate) struct Boot {
    /// Keep the terminal's stdin (for `vm`); scripted runs get /dev/null.
    pub interactive: bool,
    /// Kill the VM after this long.
    pub timeout: Option<Duration>,
}

pub(crate) struct Outcome {
    /// The guest command's exit code (vng forwards it); 255 when vng could
    /// not get one (kernel panic, lost console), -1 when killed by a signal.
    pub exit_code: i32,
    pub elapsed: Duration,
    pub timed_out: bool,
}

impl Outcome {
    /// Our exit code: the guest's, or failure if it has none.
    pub(crate) fn exit(&self) -> ExitCode {
        match u8::try_from(self.exit_code) {
            Ok(code) if !self.timed_out => ExitCode::from(code),
            _ => ExitCode::FAILURE,
        }
    }
}

impl Vm {
    pub(crate) fn prepare(opts: &VmOpts) -> Result<Self> {
        let mut apt = Apt::default();
        let tools = prereq::ensure(&mut apt)?;
        let vmlinuz = kernel::ensure(&mut apt)?;
        if !util::is_root() {
            eprintln!(
                "xtask: warning: not root; the guest runs as your user and cannot create namespaces"
            );
        }
        Ok(Self {
            vng: tools.vng,
            vmlinuz,
            opts: opts.clone(),
        })
    }

    /// Boot, run `cmd` (a shell command line) in the guest from the workspace
    /// root, and wait for the VM to power off.
    pub(crate) fn boot(&self, cmd: &str, rwdirs: &[PathBuf], how: Boot) -> Result<Outcome> {
        if self.opts.kvm && !std::path::Path::new("/dev/kvm").exists() {
            anyhow::bail!("--kvm (L2TPD_VM_KVM): this host has no /dev/kvm");
        }
        let mut vng = Command::new(&self.vng);
        vng.arg("-r").arg(&self.vmlinuz);
        if !self.opts.kvm {
            vng.arg("--disable-kvm");
        }
        vng.arg("--force-9p")
            .args(["--memory", &self.opts.memory])
            .args(["--cpus", &self.opts.cpus.to_string()]);
        for dir in rwdirs {
            vng.arg("--rwdir").arg(dir);
        }
        vng.arg("--").arg(cmd).current_dir(util::project_root());
        if !how.interactive {
            vng.stdin(Stdio::null());
        }
        // qemu reopens vng's stdout/stderr through /proc/self/fd: on a regular
        // file that starts a new description at offset 0, and the output
        // overwrites itself (NUL holes, lost lines). Hand it pipes instead
        // whenever our output is not a terminal, and copy them through.
        let relay = !(std::io::stdout().is_terminal() && std::io::stderr().is_terminal());
        if relay {
            vng.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let accel = if self.opts.kvm {
            "KVM (--kvm)"
        } else {
            "software emulation (TCG), the default: nested KVM hangs on the machines \
             this is built on; --kvm or L2TPD_VM_KVM=1 where KVM works; expect ~20 s to boot"
        };
        util::banner(&format!(
            "booting {} with {accel}",
            self.vmlinuz
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
        ));
        eprintln!("$ {}", display(&vng));
        let start = Instant::now();
        let mut child = vng
            .spawn()
            .with_context(|| format!("cannot run {}", self.vng.display()))?;
        let relays = [
            child
                .stdout
                .take()
                .map(|out| relay_thread(out, std::io::stdout)),
            child
                .stderr
                .take()
                .map(|err| relay_thread(err, std::io::stderr)),
        ];
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if how.timeout.is_some_and(|t| start.elapsed() > t) {
                eprintln!(
                    "xtask: VM still running after {:?}; killing vng (pid {}) and qemu",
                    how.timeout.unwrap_or_default(),
                    child.id()
                );
                kill_tree(child.id());
                timed_out = true;
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        for handle in relays.into_iter().flatten() {
            let _ = handle.join();
        }
        let elapsed = start.elapsed();
        let exit_code = status.code().unwrap_or(-1);
        eprintln!(
            "xtask: VM exited with {status} after {:.1} s",
            elapsed.as_secs_f64()
        );
        Ok(Outcome {
            exit_code,
            elapsed,
            timed_out,
        })
    }
}

/// Copy a child's output to ours as it arrives.
fn relay_thread<R, W, F>(mut from: R, to: F) -> std::thread::JoinHandle<()>
where
    R: Read + Send + 'static,
    W: Write,
    F: Fn() -> W + Send + 'static,
{
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut out = to();
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// SIGKILL `pid` and all its descendants (vng forks qemu and waits for it).
fn kill_tree(pid: u32) {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may contain spaces and ')'.
            if let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
            {
                parents.push((p, ppid));
            }
        }
    }
    let mut victims = vec![pid];
    let mut i = 0;
    while i < victims.len() {
        let parent = victims[i];
        victims.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(victims.iter().map(u32::to_string))
        .status();
}
