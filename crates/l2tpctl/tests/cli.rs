//! l2tpctl without a daemon: usage errors, an unreachable daemon, completions
//! and the man page. (The calls against a running daemon are tested in
//! `crates/l2tpd/tests/api_l2tpctl.rs`.)

use std::process::{Command, Output};

fn l2tpctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2tpctl"))
        .args(args)
        .env_remove("L2TPCTL_SOCKET")
        .output()
        .expect("run l2tpctl")
}

#[test]
fn usage_errors_exit_2() {
    let o = l2tpctl(&["tunnel", "frobnicate"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let o = l2tpctl(&["tunnel", "modify", "t1"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to change"));
    let o = l2tpctl(&[
        "tunnel",
        "create",
        "--peer",
        "192.0.2.1",
        "--set",
        "novalue",
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}

#[test]
fn an_absent_daemon_is_exit_3() {
    let o = l2tpctl(&["--socket", "/nonexistent/l2tpd.sock", "tunnel", "list"]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/l2tpd.sock"), "{err}");
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let o = l2tpctl(&["completions", shell]);
        assert!(o.status.success(), "{o:?}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("l2tpctl"));
    }
    let o = l2tpctl(&["man"]);
    assert!(o.status.success());
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH l2tpctl 1"),
        "{page}"
    );
    assert!(page.contains("EXIT STATUS"));
    assert!(page.contains("l2tpctl tunnel create"));
}

/// A reader that stops early (`l2tpctl completions bash | head -1`) is not a
/// crash: exit 0, no panic.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    // The bash script (over 100 KB) outgrows the pipe buffer (64 KiB), so
    // l2tpctl is still writing when the pipe closes.
    {
        let args = &["completions", "bash"][..];
        let mut child = Command::new(env!("CARGO_BIN_EXE_l2tpctl"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run l2tpctl");
        // Read one byte, then close the pipe.
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            out.status.code() == Some(0) || out.status.code().is_none(),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}
