//! The file format: the full example shape, defaults, dump, files.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use common::{FILE, parse};
use l2tp_config::{
    AuthMode, BearerType, Config, DataPlaneKind, ErrorKind, FramingType, IpPool, LacLns, MatchedBy,
    SessionType,
};

const FULL: &str = include_str!("data/full.toml");

#[test]
fn full_example_parses() {
    let c = parse(FULL);
    assert_eq!(c.system.listen_addr, "192.0.2.2".parse::<IpAddr>().unwrap());
    assert_eq!(c.system.udp_port, 1701);
    assert_eq!(c.system.data_plane, DataPlaneKind::Netlink);
    assert_eq!(c.system.tunnel_establish_timeout, Duration::from_secs(120));

    let t = c.local_tunnel("lac1").expect("tunnel lac1");
    assert_eq!(t.peer, "192.0.2.1:1701".parse::<SocketAddr>().unwrap());
    assert_eq!(t.local, Some("192.0.2.2".parse().unwrap()));
    assert!(!t.persist);
    assert_eq!(t.peer_profile, "default");
    assert_eq!(
        t.params.hello_timeout,
        Duration::from_secs(30),
        "tunnel override"
    );
    assert_eq!(
        t.params.host_name.as_deref(),
        Some("lns1"),
        "from default profile"
    );
    assert_eq!(
        t.params.secret.as_ref().unwrap().expose(),
        "tunnel-secret-xyzzy"
    );
    assert_eq!(t.params.auth_mode, AuthMode::None);
    assert_eq!(t.params.rx_window_size, 16);
    assert_eq!(t.params.mtu, 1460);

    assert_eq!(t.sessions.len(), 1);
    let s = &t.sessions[0];
    assert_eq!(s.name, "s1");
    assert_eq!(s.session_type, SessionType::LacIncoming);
    assert!(s.params.use_sequence_numbers);
    assert_eq!(s.params.framing_type, FramingType::Any);
    assert_eq!(s.params.bearer_type, BearerType::Any);
    assert_eq!(s.params.calling_number.as_deref(), Some("12345"));
    assert_eq!(s.ppp.mtu, 1400, "[ppp] override");
    assert_eq!(s.ppp.mru, 1500);
    assert_eq!(
        s.ppp.ip_pool,
        Some(
            IpPool::new(
                Ipv4Addr::new(198, 51, 100, 10),
                Ipv4Addr::new(198, 51, 100, 20)
            )
            .unwrap()
        )
    );
    assert_eq!(s.ppp.pppd_options, vec!["noauth", "nodefaultroute"]);
    assert_eq!(
        s.ppp.user_password.as_ref().unwrap().expose(),
        "ppp-password-plugh"
    );
    assert_eq!(
        t.ppp_defaults.mtu, 1500,
        "sessions from the peer do not get s1's override"
    );

    let lacs = c.peer_profile("lacs").unwrap();
    assert_eq!(lacs.params.lac_lns, LacLns::Lns);
    assert!(lacs.params.lac_lns.can_be_lns() && !lacs.params.lac_lns.can_be_lac());
    let m = c.match_peer("192.0.2.77".parse().unwrap(), None);
    assert_eq!(m.profile.name, "lacs");
    assert_eq!(m.matched_by, MatchedBy::Address { prefix_len: 24 });
    assert!(m.we_can_be_lns() && !m.we_can_be_lac());
    assert_eq!(
        c.tunnel_local_addr("lac1"),
        Some("192.0.2.2".parse().unwrap())
    );
    assert_eq!(c.tunnel_local_addr("nope"), None);
}

#[test]
fn empty_config_has_the_documented_defaults() {
    let c = parse("");
    assert_eq!(c.system.listen_addr, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(c.system.udp_port, 1701);
    assert_eq!(c.system.data_plane, DataPlaneKind::Netlink);
    assert_eq!(c.system.pppd_path, Path::new("/usr/sbin/pppd"));
    assert!(!c.system.deny_remote_tunnel_creates);
    assert_eq!(c.system.max_tunnels, 0);
    assert!(c.local_tunnels().is_empty());

    let m = c.match_peer("203.0.113.1".parse().unwrap(), Some(b"anyone"));
    assert_eq!(m.matched_by, MatchedBy::Default);
    assert_eq!(m.profile.params.lac_lns, LacLns::LacLns);
    let (tunnel, session, ppp) = c.resolve_incoming(&m);
    assert_eq!(tunnel.hello_timeout, Duration::from_secs(60));
    assert_eq!(tunnel.retry_timeout, Duration::from_secs(1));
    assert_eq!(tunnel.retry_max_timeout, Duration::from_secs(8));
    assert_eq!(tunnel.max_retries, 5);
    assert_eq!(tunnel.rx_window_size, 64);
    assert_eq!(tunnel.tx_window_size, 64);
    assert!(tunnel.framing_caps.sync && tunnel.framing_caps.async_);
    assert!(tunnel.bearer_caps.digital && tunnel.bearer_caps.analog);
    assert!(tunnel.use_udp_checksums);
    assert_eq!(tunnel.host_name, None);
    assert_eq!(tunnel.secret, None);
    assert_eq!(tunnel.mtu, 1460);
    assert_eq!(session.tx_connect_speed, 1_000_000);
    assert_eq!(session.reorder_timeout, Duration::ZERO);
    assert_eq!(ppp.mtu, 1500);
    assert!(ppp.auth_none && !ppp.auth_peer);
    assert_eq!(ppp.ip_pool, None);
}

#[test]
fn durations_accept_units_and_bare_seconds() {
    let c = parse(
        r#"
[tunnel_profile.default]
hello_timeout = 45
retry_timeout = "500ms"
retry_max_timeout = "1m30s"
idle_timeout = "2h"
[session_profile.default]
reorder_timeout = "250ms"
"#,
    );
    let t = c.tunnel_profile("default").unwrap();
    assert_eq!(t.hello_timeout, Duration::from_secs(45));
    assert_eq!(t.retry_timeout, Duration::from_millis(500));
    assert_eq!(t.retry_max_timeout, Duration::from_secs(90));
    assert_eq!(t.idle_timeout, Duration::from_secs(7200));
    let s = c.session_profile("default").unwrap();
    assert_eq!(s.reorder_timeout, Duration::from_millis(250));
}

#[test]
fn ipv6_tunnel_with_dual_stack_listener() {
    let c = parse(
        r#"
[system]
listen_addr = "::"
[tunnel.v6]
peer_addr = "2001:db8::2"
peer_udp_port = 1702
persist = true
"#,
    );
    let t = c.local_tunnel("v6").unwrap();
    assert_eq!(t.peer, "[2001:db8::2]:1702".parse::<SocketAddr>().unwrap());
    assert!(t.persist);
    assert_eq!(t.local, None);
}

#[test]
fn secrets_stay_out_of_debug_and_the_dump() {
    let c = parse(FULL);
    let debug = format!("{c:?}");
    assert!(!debug.contains("tunnel-secret-xyzzy"), "{debug}");
    assert!(!debug.contains("ppp-password-plugh"));
    assert!(debug.contains("<redacted>"));
    let t = c.local_tunnel("lac1").unwrap();
    assert!(!format!("{t:?}").contains("tunnel-secret-xyzzy"));

    let dump = c.to_toml_effective();
    assert!(!dump.contains("tunnel-secret-xyzzy"), "{dump}");
    assert!(!dump.contains("ppp-password-plugh"), "{dump}");
    assert!(dump.contains("secret = \"<redacted>\""), "{dump}");
    assert!(dump.contains("user_password = \"<redacted>\""), "{dump}");
}

#[test]
fn effective_dump_parses_back_to_the_same_tunnels() {
    let c = parse(FULL);
    let dump = c.to_toml_effective();
    let again = Config::from_str(&dump, Path::new("dump.toml"))
        .unwrap_or_else(|e| panic!("dump does not parse back:\n{e}\n{dump}"));
    assert_eq!(again.system, c.system);
    let redact = |mut t: l2tp_config::LocalTunnel| {
        t.params.secret = None;
        for s in &mut t.sessions {
            std::sync::Arc::make_mut(&mut s.ppp).user_password = None;
        }
        std::sync::Arc::make_mut(&mut t.ppp_defaults).user_password = None;
        t
    };
    assert_eq!(
        again
            .local_tunnels()
            .iter()
            .cloned()
            .map(redact)
            .collect::<Vec<_>>(),
        c.local_tunnels()
            .iter()
            .cloned()
            .map(redact)
            .collect::<Vec<_>>()
    );
    assert!(dump.contains("[tunnel.lac1.session.s1.ppp]"), "{dump}");
    assert!(dump.contains("hello_timeout = \"30s\""), "{dump}");
}

#[test]
fn from_file_reads_and_names_the_file() {
    let dir = std::env::temp_dir().join(format!("l2tp-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, "[tunnel.t]\npeer_addr = \"192.0.2.9\"\n").unwrap();
    let c = Config::from_file(&good).unwrap();
    assert_eq!(
        c.local_tunnels()[0].peer.ip(),
        "192.0.2.9".parse::<IpAddr>().unwrap()
    );
    assert_eq!(c.sources(), std::slice::from_ref(&good));

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[system]\nudp_port = \"x\"\n").unwrap();
    let e = Config::from_file(&bad).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}:2:12: key `system.udp_port`: ", bad.display())),
        "{e}"
    );

    let missing = dir.join("missing.toml");
    let e = Config::from_file(&missing).unwrap_err();
    assert_eq!(e.errors[0].kind, ErrorKind::Io);
    assert!(
        e.to_string().starts_with(&missing.display().to_string()),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn later_sources_override_earlier_ones_key_by_key() {
    let main = "[tunnel_profile.default]\nhello_timeout = 10\nmtu = 1400\n[tunnel.t]\npeer_addr = \"192.0.2.9\"\n";
    let dropin = "[tunnel_profile.default]\nhello_timeout = 20\n";
    let c = Config::from_sources([
        (Path::new("/etc/l2tpd/l2tpd.toml"), main),
        (Path::new("/etc/l2tpd/l2tpd.toml.d/10-hello.toml"), dropin),
    ])
    .unwrap();
    let t = &c.local_tunnels()[0];
    assert_eq!(t.params.hello_timeout, Duration::from_secs(20));
    assert_eq!(t.params.mtu, 1400);

    // An error found after merging names the file that set the key.
    let bad = "[tunnel_profile.default]\nretry_timeout = \"20s\"\n";
    let e = Config::from_sources([
        (Path::new("/etc/l2tpd/l2tpd.toml"), main),
        (Path::new("/run/l2tpd/l2tpd.toml.d/50-retry.toml"), bad),
    ])
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/run/l2tpd/l2tpd.toml.d/50-retry.toml:2:1: key `tunnel_profile.default.retry_timeout`: \
         retry_max_timeout (8s) is below retry_timeout (20s) \
         (in effect for incoming tunnels of peer_profile.default, tunnel.t)"
    );
}

#[test]
fn file_name_is_used_in_messages() {
    let e = Config::from_str("bogus = 1", Path::new(FILE)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/etc/l2tpd/test.toml:1:1: key `bogus`: unknown table"),
        "{e}"
    );
}
