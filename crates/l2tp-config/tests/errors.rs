//! Errors: every one names file, line, column and key; all are reported.

mod common;

use common::{FILE, error_for, errors, line_of};
use l2tp_config::{ErrorKind, Position};

#[test]
fn unknown_key_is_rejected_with_file_line_and_key() {
    let text = "[tunnel.lac1]\npeer_addr = \"192.0.2.2\"\nhello_timout = \"60s\"\n";
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "{FILE}:3:1: key `tunnel.lac1.hello_timout`: unknown key (did you mean `hello_timeout`?)"
        )
    );
    assert_eq!(e.errors[0].kind, ErrorKind::UnknownKey);
    assert_eq!(e.errors[0].position, Some(Position { line: 3, column: 1 }));
}

#[test]
fn unknown_keys_in_every_kind_of_table() {
    let text = r#"
[system]
listen_address = "0.0.0.0"
[tunnel_profile.a]
hello = 1
[session_profile.b]
bogus = true
[ppp_profile.c]
auth_mschap = true
[peer_profile.d]
netmask = "255.255.255.0"
[tunnel.t]
peer_addr = "192.0.2.2"
  peer_adr = "x"
[tunnel.t.session.s]
mtu = 1400
typo = 1
[tunnel.t.session.s.ppp]
mttu = 1400
[tunnels.x]
"#;
    let e = errors(text);
    for (key, needle) in [
        ("system.listen_address", "listen_address"),
        ("tunnel_profile.a.hello", "hello = 1"),
        ("session_profile.b.bogus", "bogus"),
        ("ppp_profile.c.auth_mschap", "auth_mschap"),
        ("peer_profile.d.netmask", "netmask"),
        ("tunnel.t.peer_adr", "peer_adr"),
        ("tunnel.t.session.s.mtu", "mtu = 1400"),
        ("tunnel.t.session.s.typo", "typo"),
        ("tunnel.t.session.s.ppp.mttu", "mttu"),
        ("tunnels", "[tunnels.x]"),
    ] {
        let err = error_for(&e, key);
        assert_eq!(err.kind, ErrorKind::UnknownKey, "{err}");
        assert_eq!(err.line(), Some(line_of(text, needle)), "{err}");
    }
    assert_eq!(e.len(), 10, "{e}");
    let peer_adr = error_for(&e, "tunnel.t.peer_adr");
    assert_eq!(peer_adr.position.unwrap().column, 3);
    assert!(
        peer_adr.message.contains("did you mean `peer_addr`"),
        "{peer_adr}"
    );
    let mtu = error_for(&e, "tunnel.t.session.s.mtu");
    assert!(mtu.message.contains("[tunnel.t.session.s.ppp]"), "{mtu}");
    assert!(
        error_for(&e, "tunnels")
            .message
            .contains("did you mean `tunnel`")
    );
}

#[test]
fn type_error_names_line_and_key() {
    let text = "[tunnel_profile.default]\nhello_timeout = \"60s\"\nmax_retries = \"five\"\n";
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e}");
    let err = error_for(&e, "tunnel_profile.default.max_retries");
    assert_eq!(err.kind, ErrorKind::InvalidValue);
    assert_eq!(
        err.position,
        Some(Position {
            line: 3,
            column: 15
        })
    );
    assert!(
        err.message.contains("invalid type: string \"five\""),
        "{err}"
    );
    assert!(e.to_string().starts_with(&format!(
        "{FILE}:3:15: key `tunnel_profile.default.max_retries`: invalid type"
    )));
}

#[test]
fn invalid_values_of_each_type() {
    let text = r#"
[system]
listen_addr = "0.0.0.300"
data_plane = "kernel"
udp_port = 70000
[tunnel_profile.default]
hello_timeout = "60 parsecs"
retry_timeout = -1
auth_mode = "chap"
framing_caps = ["sync", "isdn"]
use_tiebreaker = "yes"
[ppp_profile.default]
local_ipaddr = "2001:db8::1"
[peer_profile.p]
peer_addr = "192.0.2.0/40"
[tunnel.t]
peer_addr = "192.0.2.2"
[tunnel.t.session.s]
session_type = "lac"
"#;
    let e = errors(text);
    for (key, needle, fragment) in [
        ("system.listen_addr", "listen_addr", "invalid IP address"),
        (
            "system.data_plane",
            "data_plane",
            "unknown variant `kernel`",
        ),
        ("system.udp_port", "udp_port", "0..=65535"),
        (
            "tunnel_profile.default.hello_timeout",
            "hello_timeout",
            "unknown unit `parsecs`",
        ),
        (
            "tunnel_profile.default.retry_timeout",
            "retry_timeout",
            "negative",
        ),
        (
            "tunnel_profile.default.auth_mode",
            "auth_mode",
            "`none`, `simple`, `challenge`",
        ),
        (
            "tunnel_profile.default.framing_caps",
            "framing_caps",
            "\"isdn\"",
        ),
        (
            "tunnel_profile.default.use_tiebreaker",
            "use_tiebreaker",
            "true or false",
        ),
        ("ppp_profile.default.local_ipaddr", "local_ipaddr", "IPv4"),
        ("peer_profile.p.peer_addr", "192.0.2.0/40", "above 32"),
        (
            "tunnel.t.session.s.session_type",
            "session_type",
            "lac_incoming",
        ),
    ] {
        let err = error_for(&e, key);
        assert_eq!(err.kind, ErrorKind::InvalidValue, "{err}");
        assert_eq!(err.line(), Some(line_of(text, needle)), "{err}");
        assert!(err.message.contains(fragment), "{err}");
    }
    assert_eq!(e.len(), 11, "{e}");
}

#[test]
fn reference_to_missing_profile_points_at_the_reference() {
    let text = r#"
[tunnel_profile.t1]
session_profile_name = "sesion"
[session_profile.session]
ppp_profile_name = "nope"
[peer_profile.p]
tunnel_profile_name = "t2"
[tunnel.a]
peer_addr = "192.0.2.2"
tunnel_profile_name = "t3"
peer_profile_name = "q"
[tunnel.a.session.s]
session_profile_name = "gone"
ppp_profile_name = "also_gone"
"#;
    let e = errors(text);
    for (key, needle, fragment) in [
        (
            "tunnel_profile.t1.session_profile_name",
            "\"sesion\"",
            "no [session_profile.sesion] is defined (did you mean \"session\"?)",
        ),
        (
            "session_profile.session.ppp_profile_name",
            "\"nope\"",
            "no [ppp_profile.nope]",
        ),
        (
            "peer_profile.p.tunnel_profile_name",
            "\"t2\"",
            "no [tunnel_profile.t2]",
        ),
        (
            "tunnel.a.tunnel_profile_name",
            "\"t3\"",
            "no [tunnel_profile.t3]",
        ),
        ("tunnel.a.peer_profile_name", "\"q\"", "no [peer_profile.q]"),
        (
            "tunnel.a.session.s.session_profile_name",
            "\"gone\"",
            "no [session_profile.gone]",
        ),
        (
            "tunnel.a.session.s.ppp_profile_name",
            "also_gone",
            "no [ppp_profile.also_gone]",
        ),
    ] {
        let err = error_for(&e, key);
        assert_eq!(err.kind, ErrorKind::UnknownProfile, "{err}");
        assert_eq!(err.line(), Some(line_of(text, needle)), "{err}");
        assert!(err.message.contains(fragment), "{err}");
    }
    assert_eq!(e.len(), 7, "{e}");
}

#[test]
fn invalid_ip_pool() {
    for (pool, fragment) in [
        ("198.51.100.20-198.51.100.10", "above its end"),
        ("2001:db8::1-2001:db8::9", "IPv6"),
        ("198.51.100.10-", "not an IPv4 address"),
        ("pool1", "not an IPv4 address"),
    ] {
        let text = format!("[ppp_profile.lns]\n\nip_pool = \"{pool}\"\n");
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e}");
        let err = error_for(&e, "ppp_profile.lns.ip_pool");
        assert_eq!(err.line(), Some(3));
        assert!(err.message.contains(fragment), "{pool}: {err}");
    }
    // A pool that contains our own address.
    let text = "[ppp_profile.lns]\nlocal_ipaddr = \"198.51.100.15\"\nip_pool = \"198.51.100.10-198.51.100.20\"\n";
    let e = errors(text);
    let err = error_for(&e, "ppp_profile.lns.ip_pool");
    assert_eq!((err.kind, err.line()), (ErrorKind::Inconsistent, Some(3)));
}

#[test]
fn retry_max_timeout_below_retry_timeout() {
    let text = "[tunnel_profile.fast]\nretry_timeout = \"2s\"\nretry_max_timeout = \"1s\"\n";
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "{FILE}:3:1: key `tunnel_profile.fast.retry_max_timeout`: retry_max_timeout (1s) is below retry_timeout (2s)"
        )
    );

    // Across levels: blamed on the highest level that set either key.
    let text = r#"
[tunnel_profile.default]
retry_max_timeout = "4s"
[tunnel.t]
peer_addr = "192.0.2.2"
retry_timeout = "5s"
"#;
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e}");
    let err = error_for(&e, "tunnel.t.retry_timeout");
    assert_eq!(err.kind, ErrorKind::Inconsistent);
    assert_eq!(err.line(), Some(6));

    // Equal is fine.
    common::parse("[tunnel_profile.x]\nretry_timeout = \"3s\"\nretry_max_timeout = 3\n");
}

#[test]
fn several_errors_are_reported_at_once_in_file_order() {
    let text = r#"[system]
udp_port = "l2tp"
[tunnel_profile.default]
rx_window_size = 3
auth_mode = "challenge"
[tunnel.t]
our_addr = "192.0.2.1"
bogus = 1
[tunnel.u]
peer_addr = "2001:db8::1"
"#;
    let e = errors(text);
    let got: Vec<(u32, &str)> = e
        .iter()
        .map(|e| (e.line().unwrap(), e.key.as_deref().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, "system.udp_port"),
            (4, "tunnel_profile.default.rx_window_size"),
            (5, "tunnel_profile.default.auth_mode"),
            (6, "tunnel.t.peer_addr"),
            (8, "tunnel.t.bogus"),
            (10, "tunnel.u.peer_addr"),
        ],
        "{e}"
    );
    let shown = e.to_string();
    let lines: Vec<&str> = shown
        .lines()
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0], format!("{FILE}:2:12"));
    assert_eq!(
        error_for(&e, "tunnel.t.peer_addr").kind,
        ErrorKind::MissingKey
    );
    assert!(
        error_for(&e, "tunnel.u.peer_addr")
            .message
            .contains("listen_addr")
    );
}

#[test]
fn several_bad_keys_in_one_table_are_all_reported() {
    let text = "[ppp_profile.x]\nmtu = \"big\"\nmru = -5\nlocal_ipaddr = 7\nauth_pap = 1\n";
    let e = errors(text);
    let lines: Vec<u32> = e.iter().map(|e| e.line().unwrap()).collect();
    assert_eq!(lines, vec![2, 3, 4, 5], "{e}");
}

#[test]
fn syntax_errors_have_positions() {
    let text = "[system]\nudp_port = \n[tunnel.a\n";
    let e = errors(text);
    assert!(e.iter().all(|e| e.kind == ErrorKind::Syntax), "{e}");
    assert_eq!(e.errors[0].line(), Some(2), "{e}");
    assert!(e.iter().any(|e| e.line() == Some(3)), "{e}");
}

#[test]
fn tables_must_be_tables() {
    let text = "system = 1\ntunnel_profile = { a = 1 }\n[[tunnel]]\npeer_addr = \"192.0.2.1\"\n";
    let e = errors(text);
    assert_eq!(error_for(&e, "system").line(), Some(1));
    assert_eq!(error_for(&e, "tunnel_profile.a").line(), Some(2));
    assert_eq!(error_for(&e, "tunnel").line(), Some(3));
}

#[test]
fn inconsistent_values() {
    let text = r#"
[system]
pppd_nice = 20
[tunnel_profile.default]
hide_avps = true
[tunnel_profile.win]
tx_window_size = 0
max_retries = 0
mtu = 40
[session_profile.bps]
minimum_bps = 9600
maximum_bps = 2400
[ppp_profile.p]
mtu = 100
lcp_echo_interval = "1500ms"
auth_peer = true
auth_pap = false
auth_chap = false
auth_mschapv1 = false
auth_mschapv2 = false
auth_eap = false
options_file = "options.l2tpd"
[peer_profile.a]
host_name = "LAC"
[peer_profile.b]
host_name = "lac"
[peer_profile.default]
peer_addr = "192.0.2.0/24"
[tunnel.t]
peer_addr = "224.0.0.1"
our_addr = "2001:db8::1"
"#;
    let e = errors(text);
    for (key, needle, kind) in [
        ("system.pppd_nice", "pppd_nice", ErrorKind::Inconsistent),
        (
            "tunnel_profile.default.hide_avps",
            "hide_avps",
            ErrorKind::Inconsistent,
        ),
        (
            "tunnel_profile.win.tx_window_size",
            "tx_window_size",
            ErrorKind::Inconsistent,
        ),
        (
            "tunnel_profile.win.max_retries",
            "max_retries",
            ErrorKind::Inconsistent,
        ),
        (
            "tunnel_profile.win.mtu",
            "mtu = 40",
            ErrorKind::Inconsistent,
        ),
        (
            "session_profile.bps.minimum_bps",
            "minimum_bps",
            ErrorKind::Inconsistent,
        ),
        ("ppp_profile.p.mtu", "mtu = 100", ErrorKind::Inconsistent),
        (
            "ppp_profile.p.lcp_echo_interval",
            "lcp_echo_interval",
            ErrorKind::Inconsistent,
        ),
        (
            "ppp_profile.p.auth_peer",
            "auth_peer",
            ErrorKind::Inconsistent,
        ),
        (
            "ppp_profile.p.options_file",
            "options_file",
            ErrorKind::Inconsistent,
        ),
        ("peer_profile.b.host_name", "\"lac\"", ErrorKind::Duplicate),
        (
            "peer_profile.default.peer_addr",
            "192.0.2.0/24",
            ErrorKind::Inconsistent,
        ),
        ("tunnel.t.peer_addr", "224.0.0.1", ErrorKind::InvalidValue),
        ("tunnel.t.our_addr", "our_addr", ErrorKind::Inconsistent),
    ] {
        let err = error_for(&e, key);
        assert_eq!(err.kind, kind, "{err}");
        assert_eq!(err.line(), Some(line_of(text, needle)), "{err}");
    }
    assert_eq!(e.len(), 14, "{e}");
}

#[test]
fn a_bad_secret_is_not_echoed() {
    let e = errors("[tunnel_profile.default]\nsecret = 8675309\n");
    let err = error_for(&e, "tunnel_profile.default.secret");
    assert!(!e.to_string().contains("8675309"), "{e}");
    assert_eq!(err.line(), Some(2));
}

#[test]
fn a_rejected_key_causes_no_follow_on_errors() {
    // peer_addr is invalid: no "missing peer_addr"; retry_timeout is
    // invalid: no comparison with retry_max_timeout.
    let text = "[tunnel.t]\npeer_addr = \"192.0.2\"\nretry_timeout = \"soon\"\nretry_max_timeout = \"1s\"\n";
    let e = errors(text);
    assert_eq!(e.len(), 2, "{e}");
    assert!(e.iter().all(|e| e.kind == ErrorKind::InvalidValue), "{e}");
}

#[test]
fn limits_are_checked_against_configured_tunnels_and_sessions() {
    let text = r#"
[system]
max_tunnels = 1
[tunnel.a]
peer_addr = "192.0.2.1"
max_sessions = 1
[tunnel.a.session.x]
[tunnel.a.session.y]
[tunnel.b]
peer_addr = "192.0.2.2"
"#;
    let e = errors(text);
    assert_eq!(error_for(&e, "system.max_tunnels").line(), Some(3));
    assert_eq!(error_for(&e, "tunnel.a.max_sessions").line(), Some(6));
    assert_eq!(e.len(), 2, "{e}");
}

#[test]
fn a_shared_profile_is_checked_as_its_users_use_it() {
    // auth_mode = "challenge" needs a secret: tunnel a brings its own, b
    // does not. Only b is an error, reported at the profile's line.
    let text = r#"
[system]
deny_remote_tunnel_creates = true
[tunnel_profile.chal]
auth_mode = "challenge"
[tunnel.a]
peer_addr = "192.0.2.1"
tunnel_profile_name = "chal"
secret = "a-secret"
[tunnel.b]
peer_addr = "192.0.2.2"
tunnel_profile_name = "chal"
"#;
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e}");
    let err = error_for(&e, "tunnel_profile.chal.auth_mode");
    assert_eq!(err.line(), Some(5));
    assert!(err.message.ends_with("(in effect for tunnel.b)"), "{err}");

    // With a secret in b too, all is well.
    common::parse(&format!("{text}secret = \"b\"\n"));

    // Unused, the profile is checked on its own.
    let e = errors("[tunnel_profile.chal]\nauth_mode = \"challenge\"\n");
    assert_eq!(
        error_for(&e, "tunnel_profile.chal.auth_mode").message,
        "auth_mode = \"challenge\" needs a tunnel secret"
    );
}
