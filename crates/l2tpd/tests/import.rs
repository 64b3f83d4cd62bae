//! `l2tpd import`: each source format converted in full by the binary, the
//! result read back by `l2tpd check`; and the non-zero exit when a setting
//! would change behaviour. Fixtures are in tests/fixtures/import/, each
//! naming the project file it follows.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn l2tpd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2tpd"))
        .args(args)
        .output()
        .expect("run l2tpd")
}

/// Copies the fixtures to a fresh directory, with `@DIR@` replaced by it
/// (the sources name their pppd options files by absolute path).
fn fixtures(name: &str) -> PathBuf {
    let dir = common::tempdir("l2tpd-import", name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path()).unwrap();
        let text = text.replace("@DIR@", dir.to_str().unwrap());
        std::fs::write(dir.join(e.file_name()), text).unwrap();
    }
    dir
}

/// Writes `toml` next to the sources and runs `l2tpd check` on it: the
/// effective configuration it prints.
fn check(dir: &Path, toml: &str) -> String {
    let out = dir.join("l2tpd.toml");
    std::fs::write(&out, toml).unwrap();
    let r = l2tpd(&["check", "--config", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        r.status.success(),
        "l2tpd check refused the import:\n{stderr}\n---\n{toml}"
    );
    String::from_utf8(r.stdout).unwrap()
}

fn import(args: &[&str]) -> (Option<i32>, String, String) {
    let r = l2tpd(args);
    (
        r.status.code(),
        String::from_utf8(r.stdout).unwrap(),
        String::from_utf8(r.stderr).unwrap(),
    )
}

#[test]
fn xl2tpd_lns_with_pppoptfile_and_secrets_converts_and_checks() {
    let dir = fixtures("xl2tpd-lns");
    let conf = dir.join("xl2tpd-lns.conf");
    let secrets = dir.join("l2tp-secrets");
    let (code, out, err) = import(&[
        "import",
        "xl2tpd",
        conf.to_str().unwrap(),
        "--secrets",
        secrets.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "stderr: {err}\n{out}");
    let eff = check(&dir, &out);
    // The pool, our address and the options file's DNS reached the default PPP profile.
    let v: toml::Table = toml::from_str(&eff).unwrap();
    let ppp = &v["ppp_profile"]["default"];
    assert_eq!(
        ppp["ip_pool"].as_str(),
        Some("198.51.100.128-198.51.100.254")
    );
    assert_eq!(ppp["local_ipaddr"].as_str(), Some("198.51.100.99"));
    assert_eq!(ppp["dns_ipaddr_sec"].as_str(), Some("198.51.100.54"));
    assert_eq!(ppp["mtu"].as_integer(), Some(1410));
    let tp = &v["tunnel_profile"]["default"];
    assert_eq!(tp["auth_mode"].as_str(), Some("challenge"));
    assert_eq!(tp["hide_avps"].as_bool(), Some(true));
    assert_eq!(
        v["peer_profile"]["host-branch7"]["host_name"].as_str(),
        Some("branch7")
    );
    // The settings without equivalent are comments naming their line.
    assert!(
        out.contains("xl2tpd: \"length bit = yes\" has no equivalent"),
        "{out}"
    );
}

#[test]
fn xl2tpd_lac_with_redial_exits_non_zero_but_prints_a_valid_configuration() {
    let dir = fixtures("xl2tpd-lac");
    let conf = dir.join("xl2tpd-lac.conf");
    let (code, out, err) = import(&["import", "xl2tpd", conf.to_str().unwrap()]);
    assert_eq!(code, Some(2), "stderr: {err}");
    // The summary names each behaviour change by file and line.
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].contains("xl2tpd-lac.conf:8:") && lines[0].contains("redial"),
        "{err}"
    );
    assert!(out.contains("[BEHAVIOUR CHANGES]"), "{out}");
    let eff = check(&dir, &out);
    let v: toml::Table = toml::from_str(&eff).unwrap();
    let t = &v["tunnel"]["marko"];
    assert_eq!(t["peer_addr"].as_str(), Some("192.0.2.2"));
    assert_eq!(t["persist"].as_bool(), Some(true));
}

#[test]
fn kl2tpd_converts_and_checks() {
    let dir = fixtures("kl2tpd");
    let conf = dir.join("kl2tpd.toml");
    let (code, out, err) = import(&["import", "kl2tpd", conf.to_str().unwrap()]);
    assert_eq!(code, Some(0), "stderr: {err}\n{out}");
    let eff = check(&dir, &out);
    let v: toml::Table = toml::from_str(&eff).unwrap();
    assert_eq!(
        v["system"]["deny_remote_tunnel_creates"].as_bool(),
        Some(true)
    );
    let t = &v["tunnel"]["t1"];
    assert_eq!(t["peer_addr"].as_str(), Some("192.0.2.2"));
    assert_eq!(t["rx_window_size"].as_integer(), Some(10));
    let ppp = &t["session"]["s1"]["ppp"];
    assert_eq!(ppp["user_name"].as_str(), Some("branch7"));
    assert_eq!(ppp["mtu"].as_integer(), Some(1400));
}

#[test]
fn openl2tpd_converts_and_checks() {
    let dir = fixtures("openl2tpd");
    let conf = dir.join("openl2tpd.conf");
    let (code, out, err) = import(&["import", "openl2tpd", conf.to_str().unwrap()]);
    assert_eq!(code, Some(0), "stderr: {err}\n{out}");
    let eff = check(&dir, &out);
    let v: toml::Table = toml::from_str(&eff).unwrap();
    assert_eq!(v["system"]["max_sessions"].as_integer(), Some(1000));
    assert_eq!(
        v["peer_profile"]["branches"]["peer_addr"].as_str(),
        Some("203.0.113.0/24")
    );
    assert_eq!(v["tunnel"]["uplink"]["persist"].as_bool(), Some(true));
    assert_eq!(
        v["tunnel"]["uplink"]["session"]["s1"]["ppp"]["user_name"].as_str(),
        Some("branch7")
    );
}

#[test]
fn unreadable_or_broken_sources_exit_1_with_nothing_on_stdout() {
    let dir = common::tempdir("l2tpd-import", "broken");
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "[global]\nlisten-addr 192.0.2.1\n").unwrap();
    let (code, out, err) = import(&["import", "xl2tpd", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert!(err.contains("bad.conf:2:"), "{err}");
    let (code, out, _) = import(&["import", "kl2tpd", dir.join("missing").to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
}
