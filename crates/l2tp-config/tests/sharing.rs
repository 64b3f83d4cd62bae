//! Calls of a tunnel that resolve alike share one copy of their session
//! and PPP parameters; a call with keys of its own gets its own; an empty
//! session table resolves exactly as one that spells the inherited values
//! out would; a changed profile changes the calls that use it.

mod common;

use std::sync::Arc;

use common::{errors, parse};

fn tunnel_with(sessions: &str, profiles: &str) -> String {
    format!(
        "{profiles}\n[tunnel.t0]\npeer_addr = \"192.0.2.2\"\nsession_profile_name = \"sp\"\n{sessions}"
    )
}

const PROFILES: &str = r#"
[session_profile.sp]
use_sequence_numbers = true
[ppp_profile.default]
mtu = 1400
"#;

#[test]
fn alike_calls_share_their_parameters_and_a_call_with_an_override_does_not() {
    let text = tunnel_with(
        "[tunnel.t0.session.a]\n[tunnel.t0.session.b]\n\
         [tunnel.t0.session.c]\nminimum_bps = 9600\n\
         [tunnel.t0.session.d]\n[tunnel.t0.session.d.ppp]\nmru = 1200\n\
         [tunnel.t0.session.e]\n",
        PROFILES,
    );
    let config = parse(&text);
    let t = config.local_tunnel("t0").unwrap();
    let s: Vec<_> = t.sessions.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(s, ["a", "b", "c", "d", "e"]);
    let [a, b, c, d, e] = &t.sessions[..] else {
        panic!("five sessions")
    };
    // Inherited from the tunnel's session profile and the default PPP profile.
    assert!(a.params.use_sequence_numbers);
    assert_eq!(a.ppp.mtu, 1400);
    assert!(Arc::ptr_eq(&a.params, &b.params));
    assert!(Arc::ptr_eq(&a.ppp, &b.ppp));
    assert!(Arc::ptr_eq(&a.params, &e.params));
    assert!(Arc::ptr_eq(&a.ppp, &e.ppp));
    // c overrides a session key: its own session parameters, shared PPP ones.
    assert!(!Arc::ptr_eq(&a.params, &c.params));
    assert_eq!(c.params.minimum_bps, 9600);
    assert!(c.params.use_sequence_numbers);
    assert_eq!(c.ppp, a.ppp);
    // d overrides a PPP key.
    assert!(!Arc::ptr_eq(&a.ppp, &d.ppp));
    assert_eq!((d.ppp.mru, d.ppp.mtu), (1200, 1400));
    assert_eq!(d.params, a.params);
}

#[test]
fn an_empty_session_table_resolves_like_one_that_names_nothing() {
    let empty = parse(&tunnel_with("[tunnel.t0.session.a]\n", PROFILES));
    let spelled = parse(&tunnel_with(
        "[tunnel.t0.session.a]\nsession_type = \"lac_incoming\"\n",
        PROFILES,
    ));
    let (e, s) = (
        &empty.local_tunnel("t0").unwrap().sessions[0],
        &spelled.local_tunnel("t0").unwrap().sessions[0],
    );
    assert_eq!(e, s);
    assert_eq!(e.session_profile, None);
}

#[test]
fn a_changed_profile_changes_the_calls_that_use_it() {
    let before = parse(&tunnel_with(
        "[tunnel.t0.session.a]\n[tunnel.t0.session.b]\n[tunnel.t0.session.c]\nsession_profile_name = \"other\"\n",
        &format!("{PROFILES}\n[session_profile.other]\nminimum_bps = 1\n"),
    ));
    let after = parse(&tunnel_with(
        "[tunnel.t0.session.a]\n[tunnel.t0.session.b]\n[tunnel.t0.session.c]\nsession_profile_name = \"other\"\n",
        "[session_profile.sp]\nuse_sequence_numbers = false\n[session_profile.other]\nminimum_bps = 1\n",
    ));
    let changes = before.changes(&after);
    assert!(changes.tunnels_changed.contains("t0"), "{changes:?}");
    let (b, a) = (
        before.local_tunnel("t0").unwrap(),
        after.local_tunnel("t0").unwrap(),
    );
    for i in 0..2 {
        assert!(b.sessions[i].params.use_sequence_numbers);
        assert!(!a.sessions[i].params.use_sequence_numbers);
        assert_eq!(b.sessions[i].ppp.mtu, 1400);
        assert_eq!(a.sessions[i].ppp.mtu, 1500);
    }
    assert!(Arc::ptr_eq(&a.sessions[0].params, &a.sessions[1].params));
    // c names another profile, which did not change.
    assert_eq!(b.sessions[2].params, a.sessions[2].params);
    assert_eq!(a.sessions[2].session_profile.as_deref(), Some("other"));
}

#[test]
fn a_session_table_defined_empty_then_set_in_a_later_file_takes_the_keys() {
    use l2tp_config::Config;
    let first = (
        std::path::PathBuf::from("/etc/l2tpd/a.toml"),
        tunnel_with("[tunnel.t0.session.a]\n", PROFILES),
    );
    let second = (
        std::path::PathBuf::from("/etc/l2tpd/b.toml"),
        "[tunnel.t0.session.a]\nminimum_bps = 5\n[tunnel.t0.session.b]\n".to_owned(),
    );
    let config = Config::from_sources([
        (first.0.as_path(), first.1.as_str()),
        (second.0.as_path(), second.1.as_str()),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let t = config.local_tunnel("t0").unwrap();
    assert_eq!(t.sessions.len(), 2);
    assert_eq!(t.sessions[0].params.minimum_bps, 5);
    assert_eq!(t.sessions[1].params.minimum_bps, 0);
    assert!(t.sessions[1].params.use_sequence_numbers);
}

#[test]
fn a_problem_of_the_inherited_parameters_is_reported_for_every_empty_call() {
    // A PPP key that needs another, in the default profile: every call inherits it.
    let text = "[tunnel.t0]\npeer_addr = \"192.0.2.2\"\n\
                [tunnel.t0.session.a]\n[tunnel.t0.session.b]\n\
                [ppp_profile.default]\nradius_avpairs = [\"User-Name=x\"]\n";
    let errs = errors(text).to_string();
    // Both calls are among the users the message counts.
    assert!(errs.contains("tunnel.t0.session.a, 1 more"), "{errs}");
}

#[test]
fn the_files_named_tables_are_listed_as_written() {
    let config = parse(&tunnel_with("[tunnel.t0.session.a]\n", PROFILES));
    let tables: Vec<(&str, &str)> = config
        .defined_tables()
        .iter()
        .map(|(k, n)| (k.as_str(), n.as_str()))
        .collect();
    // The built-in default tunnel, session and peer profiles are not written.
    assert_eq!(
        tables,
        [
            ("ppp_profile", "default"),
            ("session_profile", "sp"),
            ("tunnel", "t0")
        ]
    );
}
