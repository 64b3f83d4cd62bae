//! Finding the files: the main file's precedence between /etc, /run and
//! /usr/lib, drop-ins (merge order, same-name precedence), masking by an
//! empty file or a link to /dev/null, `--config FILE` with `FILE.d/`, and
//! errors naming the drop-in they are in.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::TempDir;
use l2tp_config::{Config, ConfigErrors, ConfigPaths, ErrorKind};

const ETC: &str = "etc/l2tpd/l2tpd.toml";
const RUN: &str = "run/l2tpd/l2tpd.toml";
const USR: &str = "usr/lib/l2tpd/l2tpd.toml";
const ETC_D: &str = "etc/l2tpd/l2tpd.toml.d";
const RUN_D: &str = "run/l2tpd/l2tpd.toml.d";
const USR_D: &str = "usr/lib/l2tpd/l2tpd.toml.d";

fn hello(secs: u64) -> String {
    format!("[tunnel_profile.default]\nhello_timeout = {secs}\n")
}

fn load(root: &TempDir) -> Config {
    Config::load(&ConfigPaths::system_under(&root.0)).unwrap_or_else(|e| panic!("rejected:\n{e}"))
}

fn load_err(root: &TempDir) -> ConfigErrors {
    match Config::load(&ConfigPaths::system_under(&root.0)) {
        Ok(c) => panic!("accepted; sources {:?}", c.sources()),
        Err(e) => e,
    }
}

fn hello_of(c: &Config) -> Duration {
    c.tunnel_profile("default").unwrap().hello_timeout
}

#[test]
fn system_paths() {
    let p = ConfigPaths::system();
    assert_eq!(
        p.main_candidates(),
        [
            "/etc/l2tpd/l2tpd.toml",
            "/run/l2tpd/l2tpd.toml",
            "/usr/lib/l2tpd/l2tpd.toml"
        ]
        .map(PathBuf::from)
    );
    assert_eq!(
        p.dropin_dirs(),
        [
            "/etc/l2tpd/l2tpd.toml.d",
            "/run/l2tpd/l2tpd.toml.d",
            "/usr/lib/l2tpd/l2tpd.toml.d"
        ]
        .map(PathBuf::from)
    );
    assert!(!p.is_explicit());
    let e = ConfigPaths::explicit("/srv/x.toml");
    assert_eq!(e.main_candidates(), [PathBuf::from("/srv/x.toml")]);
    assert_eq!(e.dropin_dirs(), [PathBuf::from("/srv/x.toml.d")]);
    assert!(e.is_explicit());
}

#[test]
fn main_file_etc_replaces_run_replaces_usr_lib() {
    let root = TempDir::new("main-precedence");
    let usr = root.write(USR, &hello(10));
    let run = root.write(RUN, &hello(20));
    let etc = root.write(ETC, &hello(30));

    let c = load(&root);
    assert_eq!(hello_of(&c), Duration::from_secs(30));
    assert_eq!(c.sources(), std::slice::from_ref(&etc));

    std::fs::remove_file(&etc).unwrap();
    let c = load(&root);
    assert_eq!(hello_of(&c), Duration::from_secs(20));
    assert_eq!(c.sources(), std::slice::from_ref(&run));

    std::fs::remove_file(&run).unwrap();
    let c = load(&root);
    assert_eq!(hello_of(&c), Duration::from_secs(10));
    assert_eq!(c.sources(), [usr]);
}

#[test]
fn the_main_file_is_replaced_whole_not_merged() {
    let root = TempDir::new("main-whole");
    root.write(
        USR,
        "[tunnel_profile.default]\nhello_timeout = 10\nmtu = 1400\n",
    );
    root.write(ETC, &hello(30));
    let c = load(&root);
    let p = c.tunnel_profile("default").unwrap();
    assert_eq!(p.hello_timeout, Duration::from_secs(30));
    assert_eq!(p.mtu, 1460, "the /usr/lib file must not be read at all");
}

#[test]
fn a_dropin_in_etc_replaces_the_same_name_in_run_and_usr_lib() {
    let root = TempDir::new("dropin-precedence");
    root.write(ETC, &hello(5));
    root.write(
        &format!("{USR_D}/50-x.toml"),
        "[tunnel_profile.default]\nhello_timeout = 10\nmtu = 1400\n",
    );
    let run = root.write(
        &format!("{RUN_D}/50-x.toml"),
        "[tunnel_profile.default]\nhello_timeout = 20\nmax_retries = 7\n",
    );
    let etc = root.write(&format!("{ETC_D}/50-x.toml"), &hello(30));

    let c = load(&root);
    let p = c.tunnel_profile("default").unwrap();
    assert_eq!(p.hello_timeout, Duration::from_secs(30));
    // The replaced files are not merged at all.
    assert_eq!(p.mtu, 1460);
    assert_eq!(p.max_retries, 5);
    assert_eq!(c.sources(), [root.path(ETC), etc.clone()]);

    std::fs::remove_file(&etc).unwrap();
    let c = load(&root);
    let p = c.tunnel_profile("default").unwrap();
    assert_eq!(p.hello_timeout, Duration::from_secs(20));
    assert_eq!(p.max_retries, 7);
    assert_eq!(p.mtu, 1460);
    assert_eq!(c.sources(), [root.path(ETC), run]);
}

#[test]
fn dropins_merge_in_lexical_order_of_names_key_by_key() {
    let root = TempDir::new("dropin-order");
    let main = root.write(
        ETC,
        "[tunnel_profile.default]\nhello_timeout = 1\nmtu = 1400\nmax_retries = 3\n",
    );
    // Names sort bytewise across directories: "10-a" < "20-b" < "9-c".
    let b = root.write(
        &format!("{USR_D}/20-b.toml"),
        "[tunnel_profile.default]\nhello_timeout = 20\nmax_retries = 7\n",
    );
    let a = root.write(
        &format!("{ETC_D}/10-a.toml"),
        "[tunnel_profile.default]\nhello_timeout = 10\nrx_window_size = 8\n",
    );
    let c9 = root.write(
        &format!("{RUN_D}/9-c.toml"),
        "[tunnel_profile.default]\nmax_retries = 9\n",
    );
    // Not drop-ins: other extensions and hidden files.
    root.write(&format!("{ETC_D}/99-z.toml.bak"), "garbage [");
    root.write(&format!("{ETC_D}/.99-hidden.toml"), "garbage [");
    root.write(&format!("{ETC_D}/README"), "garbage [");

    let c = load(&root);
    assert_eq!(c.sources(), [main, a, b, c9]);
    let p = c.tunnel_profile("default").unwrap();
    assert_eq!(p.hello_timeout, Duration::from_secs(20), "20-b after 10-a");
    assert_eq!(p.max_retries, 9, "9-c after 20-b");
    assert_eq!(p.rx_window_size, 8, "10-a's other keys stay");
    assert_eq!(p.mtu, 1400, "the main file's other keys stay");
}

#[test]
fn dropins_merge_tables_key_by_key() {
    let root = TempDir::new("dropin-tables");
    root.write(
        ETC,
        "[tunnel.t]\npeer_addr = \"192.0.2.9\"\nhello_timeout = 5\n[tunnel.t.session.s1]\n",
    );
    root.write(
        &format!("{ETC_D}/50-t.toml"),
        "[tunnel.t]\nmtu = 1300\n[tunnel.t.session.s2]\n[tunnel.u]\npeer_addr = \"192.0.2.10\"\n",
    );
    let c = load(&root);
    let t = c.local_tunnel("t").unwrap();
    assert_eq!(t.params.hello_timeout, Duration::from_secs(5));
    assert_eq!(t.params.mtu, 1300);
    assert_eq!(
        t.sessions
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["s1", "s2"]
    );
    assert_eq!(
        c.local_tunnel_names().into_iter().collect::<Vec<_>>(),
        ["t", "u"]
    );
}

#[test]
fn an_empty_dropin_masks_that_name_in_every_directory() {
    let root = TempDir::new("mask-empty");
    let main = root.write(ETC, &hello(5));
    root.write(&format!("{USR_D}/50-x.toml"), &hello(10));
    root.write(&format!("{RUN_D}/50-x.toml"), &hello(20));
    root.write(&format!("{ETC_D}/50-x.toml"), "");
    let other = root.write(
        &format!("{USR_D}/60-y.toml"),
        "[tunnel_profile.default]\nmtu = 1300\n",
    );
    let c = load(&root);
    assert_eq!(hello_of(&c), Duration::from_secs(5));
    assert_eq!(c.tunnel_profile("default").unwrap().mtu, 1300);
    assert_eq!(c.sources(), [main, other]);
}

#[test]
fn a_link_to_dev_null_masks_a_dropin() {
    let root = TempDir::new("mask-null");
    let main = root.write(ETC, &hello(5));
    root.write(&format!("{USR_D}/50-x.toml"), &hello(10));
    root.mask_with_dev_null(&format!("{RUN_D}/50-x.toml"));
    let c = load(&root);
    assert_eq!(hello_of(&c), Duration::from_secs(5));
    assert_eq!(c.sources(), [main]);
}

#[test]
fn masking_the_main_file_leaves_the_dropins() {
    for by_link in [false, true] {
        let root = TempDir::new("mask-main");
        root.write(USR, "[tunnel_profile.default]\nmtu = 1300\n");
        if by_link {
            root.mask_with_dev_null(ETC);
        } else {
            root.write(ETC, "");
        }
        let d = root.write(&format!("{USR_D}/50-x.toml"), &hello(10));
        let c = load(&root);
        assert_eq!(hello_of(&c), Duration::from_secs(10));
        assert_eq!(
            c.tunnel_profile("default").unwrap().mtu,
            1460,
            "/usr/lib's main file is masked (link: {by_link})"
        );
        assert_eq!(c.sources(), [d]);
    }
}

#[test]
fn dropins_without_a_main_file_are_used() {
    let root = TempDir::new("no-main");
    let d = root.write(&format!("{RUN_D}/50-x.toml"), &hello(10));
    let c = load(&root);
    assert_eq!(hello_of(&c), Duration::from_secs(10));
    assert_eq!(c.sources(), [d]);
}

#[test]
fn no_file_at_all_is_an_error() {
    let root = TempDir::new("nothing");
    let e = load_err(&root);
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(e.errors[0].kind, ErrorKind::Io);
    assert_eq!(e.errors[0].file, root.path(ETC));
    let msg = e.to_string();
    assert!(msg.contains("no configuration file found"), "{msg}");
    assert!(msg.contains(&root.path(USR).display().to_string()), "{msg}");

    // Everything masked: the same, and the masks are named.
    root.write(USR, &hello(10));
    root.mask_with_dev_null(ETC);
    let e = load_err(&root);
    let msg = e.to_string();
    assert!(msg.contains("masked: "), "{msg}");
    assert!(msg.contains(&root.path(ETC).display().to_string()), "{msg}");
}

#[test]
fn explicit_file_and_its_dot_d_directory_only() {
    let root = TempDir::new("explicit");
    // The system directories under the same root are not consulted.
    root.write(ETC, &hello(99));
    root.write(&format!("{ETC_D}/50-x.toml"), &hello(98));

    let file = root.write(
        "srv/my.toml",
        "[tunnel_profile.default]\nhello_timeout = 1\nmtu = 1400\n",
    );
    let d1 = root.write("srv/my.toml.d/20-b.toml", &hello(20));
    let d0 = root.write(
        "srv/my.toml.d/10-a.toml",
        "[tunnel_profile.default]\nhello_timeout = 10\nmax_retries = 9\n",
    );
    root.write("srv/my.toml.d/30-empty.toml", "");
    let c = Config::load(&ConfigPaths::explicit(&file)).unwrap();
    assert_eq!(c.sources(), [file.clone(), d0, d1]);
    let p = c.tunnel_profile("default").unwrap();
    assert_eq!(p.hello_timeout, Duration::from_secs(20));
    assert_eq!(p.max_retries, 9);
    assert_eq!(p.mtu, 1400);

    // An empty explicit file is an (empty) configuration, not a mask.
    let empty = root.write("srv/empty.toml", "");
    let c = Config::load(&ConfigPaths::explicit(&empty)).unwrap();
    assert_eq!(c.sources(), [empty]);

    // Config::from_file reads the one file, without its drop-ins.
    let c = Config::from_file(&file).unwrap();
    assert_eq!(c.sources(), [file]);
    assert_eq!(hello_of(&c), Duration::from_secs(1));
}

#[test]
fn a_missing_explicit_file_is_an_error_naming_it() {
    let root = TempDir::new("explicit-missing");
    let file = root.path("nope.toml");
    let e = Config::load(&ConfigPaths::explicit(&file)).unwrap_err();
    assert_eq!(e.errors[0].kind, ErrorKind::Io);
    assert_eq!(e.errors[0].file, file);
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read", file.display())),
        "{e}"
    );
}

#[test]
fn errors_in_a_dropin_name_its_path_line_and_key() {
    let root = TempDir::new("dropin-errors");
    root.write(ETC, "[tunnel.t]\npeer_addr = \"192.0.2.9\"\n");
    let bad = root.write(
        &format!("{RUN_D}/40-bad.toml"),
        "# a comment\n[tunnel.t]\nhello_timout = 5\n",
    );
    let retry = root.write(
        &format!("{ETC_D}/50-retry.toml"),
        "\n\n\n[tunnel_profile.default]\nretry_timeout = \"20s\"\n",
    );
    let e = load_err(&root);
    assert_eq!(e.len(), 2, "{e}");
    let unknown = e
        .iter()
        .find(|x| x.kind == ErrorKind::UnknownKey)
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(unknown.file, bad);
    assert_eq!(unknown.line(), Some(3));
    assert_eq!(unknown.key.as_deref(), Some("tunnel.t.hello_timout"));
    assert!(
        unknown.to_string().starts_with(&format!(
            "{}:3:1: key `tunnel.t.hello_timout`: unknown key",
            bad.display()
        )),
        "{unknown}"
    );
    // An error found after merging names the drop-in that set the key.
    let merged = e
        .iter()
        .find(|x| x.kind == ErrorKind::Inconsistent)
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(merged.file, retry);
    assert_eq!(merged.line(), Some(5));
    assert_eq!(
        merged.key.as_deref(),
        Some("tunnel_profile.default.retry_timeout")
    );
}

#[test]
fn errors_of_every_file_are_reported_together() {
    let root = TempDir::new("all-errors");
    root.write(ETC, "[system]\nudp_port = \"x\"\n");
    root.write(&format!("{ETC_D}/10-a.toml"), "[bogus]\n");
    root.write(&format!("{USR_D}/20-b.toml"), "[system\n");
    let e = load_err(&root);
    let files: Vec<_> = e.iter().map(|x| x.file.clone()).collect();
    assert!(files.contains(&root.path(ETC)), "{e}");
    assert!(
        files.contains(&root.path(&format!("{ETC_D}/10-a.toml"))),
        "{e}"
    );
    assert!(
        files.contains(&root.path(&format!("{USR_D}/20-b.toml"))),
        "{e}"
    );
}

#[test]
fn reload_sees_added_removed_and_changed_tunnels() {
    let root = TempDir::new("reload");
    root.write(
        ETC,
        "[tunnel.a]\npeer_addr = \"192.0.2.1\"\n[tunnel.b]\npeer_addr = \"192.0.2.2\"\n\
         [tunnel.c]\npeer_addr = \"192.0.2.3\"\n",
    );
    let old = load(&root);
    assert_eq!(
        load(&root),
        old,
        "loading twice gives an equal configuration"
    );
    assert!(old.changes(&load(&root)).is_empty());

    root.write(
        ETC,
        "[system]\nmax_tunnels = 10\n[tunnel.b]\npeer_addr = \"192.0.2.2\"\nmtu = 1400\n\
         [tunnel.c]\npeer_addr = \"192.0.2.3\"\n[tunnel.d]\npeer_addr = \"192.0.2.4\"\n",
    );
    let new = load(&root);
    assert_ne!(new, old);
    let ch = old.changes(&new);
    assert_eq!(ch.tunnels_added.iter().collect::<Vec<_>>(), ["d"]);
    assert_eq!(ch.tunnels_removed.iter().collect::<Vec<_>>(), ["a"]);
    assert_eq!(ch.tunnels_changed.iter().collect::<Vec<_>>(), ["b"]);
    assert_eq!(ch.system_keys, ["max_tunnels"]);
    assert!(!ch.incoming_changed);
    assert!(!ch.is_empty());

    // A change to what incoming tunnels get.
    root.write(
        ETC,
        "[system]\nmax_tunnels = 10\n[tunnel.b]\npeer_addr = \"192.0.2.2\"\nmtu = 1400\n\
         [tunnel.c]\npeer_addr = \"192.0.2.3\"\n[tunnel.d]\npeer_addr = \"192.0.2.4\"\n\
         [ppp_profile.lns]\nmtu = 1300\n[peer_profile.lacs]\npeer_addr = \"198.51.100.0/24\"\n\
         ppp_profile_name = \"lns\"\n",
    );
    let newer = load(&root);
    let ch = new.changes(&newer);
    assert!(ch.incoming_changed);
    assert!(ch.tunnels_changed.is_empty(), "{ch:?}");

    // An invalid new configuration is an error; the running one is
    // untouched (the caller keeps it).
    root.write(ETC, "[tunnel.b]\npeer_addr = \"nope\"\n");
    assert!(Config::load(&ConfigPaths::system_under(&root.0)).is_err());
}
