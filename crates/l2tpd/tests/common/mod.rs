//! What the host tests share: a real `l2tpd` process with its log in a file,
//! bounded waits, signals, and per-test temporary directories.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// An `l2tpd` started with `--config DIR/NAME.toml`, stderr in `DIR/NAME.log`;
/// killed when dropped.
pub(crate) struct Process {
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    /// Write `config` to `DIR/NAME.toml` and start l2tpd on it with log filter `level`.
    pub(crate) fn spawn(dir: &Path, name: &str, config: &str, level: &str) -> Self {
        // The default (/run/l2tpd/io.l2tpd.sock) would be shared by tests
        // running at once and left behind by a killed daemon.
        assert!(
            config.contains("api_socket"),
            "a host test's daemon sets api_socket (\"\" or a path in its directory)"
        );
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(&cfg, config).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_l2tpd"))
            .arg("--config")
            .arg(&cfg)
            .arg("--log")
            .arg(level)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start l2tpd");
        Self { child, log }
    }

    /// [`spawn`](Self::spawn) with debug logging.
    pub(crate) fn start(dir: &Path, name: &str, config: &str) -> Self {
        Self::spawn(dir, name, config, "debug")
    }

    /// The whole log so far.
    pub(crate) fn log(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    /// Wait (bounded) until the log contains `needle` `count` times.
    pub(crate) fn wait_for(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        wait(timeout, || self.log().matches(needle).count() >= count)
    }

    /// Send `sig` to the daemon.
    pub(crate) fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Wait (bounded) for the process to exit; its exit status.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait(timeout, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `f` every 50 ms until it holds or `timeout` passes; its last answer.
pub(crate) fn wait(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A fresh directory `$TMPDIR/PREFIX-NAME-PID`, readable by every uid (the
/// permission tests run l2tpctl as an unprivileged user).
pub(crate) fn tempdir(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// The l2tpctl binary, built once per test run (it is another package, so
/// cargo does not build it for this one's tests).
pub(crate) fn l2tpctl_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let l2tpd = Path::new(env!("CARGO_BIN_EXE_l2tpd"));
        let bin = l2tpd.with_file_name("l2tpctl");
        let mut args = vec!["build", "--quiet", "-p", "l2tpctl", "--bin", "l2tpctl"];
        if l2tpd.parent().and_then(Path::file_name) == Some("release".as_ref()) {
            args.push("--release");
        }
        let status = Command::new(env!("CARGO"))
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build -p l2tpctl");
        assert!(status.success(), "building l2tpctl failed");
        assert!(bin.exists(), "{} missing", bin.display());
        bin
    })
}

/// `l2tpctl --socket SOCKET ARGS` killed after `timeout`: its status (None
/// if it had to be killed), stdout and stderr.
pub(crate) fn ctl(
    dir: &Path,
    socket: &Path,
    args: &[&str],
    timeout: Duration,
) -> (Option<ExitStatus>, String, String) {
    let (out, err) = (dir.join("ctl.out"), dir.join("ctl.err"));
    let mut child = Command::new(l2tpctl_bin())
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("run l2tpctl");
    let mut status = None;
    wait(timeout, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (status, read(&out), read(&err))
}

/// `l2tpctl --json ARGS` against `socket` (10 s at most), parsed; panics
/// with its stderr when it fails.
pub(crate) fn ctl_json(dir: &Path, socket: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (status, out, err) = ctl(dir, socket, &all, Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "l2tpctl {args:?}: {err}"
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}
