//! The effective-configuration dump (`l2tpd check`): it lists the files
//! read, shows resolved values, redacts secrets and parses back into an
//! equal configuration, also when profiles are chained key by key.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use common::{TempDir, parse};
use l2tp_config::{Config, ConfigPaths, IpPool};

/// Profiles chained over several levels: an incoming session's PPP
/// parameters come from three PPP profiles, key by key; a local tunnel's
/// incoming sessions from two session profiles.
const CHAINED: &str = r#"
[system]
listen_addr = "192.0.2.1"
max_sessions = 100

[tunnel_profile.default]
hello_timeout = "30s"
[tunnel_profile.fast]
retry_timeout = "250ms"
ppp_profile_name = "mtu1400"
[tunnel_profile.of_peer]
max_retries = 9
session_profile_name = "seq"
ppp_profile_name = "pool"

[session_profile.seq]
use_sequence_numbers = true
ppp_profile_name = "dns"
[session_profile.of_peer]
minimum_bps = 9600
tx_connect_speed = 2000000
[session_profile.unused]
maximum_bps = 64000

[ppp_profile.default]
lcp_echo_interval = 10
[ppp_profile.mtu1400]
mtu = 1400
[ppp_profile.dns]
dns_ipaddr_pri = "198.51.100.53"
[ppp_profile.pool]
local_ipaddr = "198.51.100.1"
ip_pool = "198.51.100.10-198.51.100.20"
mtu = 1300

[peer_profile.lacs]
peer_addr = "192.0.2.0/24"
tunnel_profile_name = "of_peer"
session_profile_name = "of_peer"
lac_lns = "lns"
[peer_profile.by_name]
host_name = "lac7"
ppp_profile_name = "mtu1400"

[tunnel.t1]
peer_addr = "192.0.2.2"
tunnel_profile_name = "fast"
persist = true
[tunnel.t1.session.s1]
session_profile_name = "seq"
session_type = "lac_outgoing"
[tunnel.t1.session.s1.ppp]
mru = 1200
[tunnel.t1.session.s2]

[tunnel."odd name"]
peer_addr = "203.0.113.9"
our_addr = "192.0.2.1"
peer_profile_name = "by_name"
"#;

/// The dump without its header comment (which names the source files).
fn body(dump: &str) -> &str {
    let start = dump.find("\n[system]").expect("a [system] table");
    &dump[start..]
}

fn reparse(dump: &str) -> Config {
    Config::from_str(dump, Path::new("dump.toml"))
        .unwrap_or_else(|e| panic!("the dump does not parse back:\n{e}\n{dump}"))
}

#[test]
fn the_dump_parses_back_into_an_equal_configuration() {
    let c = parse(CHAINED);
    let dump = c.to_toml_effective();
    let again = reparse(&dump);
    assert!(again == c, "not equal after a round trip:\n{dump}");
    // And it is a fixed point.
    assert_eq!(body(&again.to_toml_effective()), body(&dump));

    // The chains survived: an incoming tunnel from 192.0.2.5 gets its PPP
    // parameters from three profiles (session profile `seq` names `dns`,
    // tunnel profile `of_peer` names `pool`), key by key.
    for cfg in [&c, &again] {
        let m = cfg.match_peer(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 5)), None);
        let (t, s, ppp) = cfg.resolve_incoming(&m);
        assert_eq!(t.max_retries, 9);
        assert_eq!(t.hello_timeout, Duration::from_secs(30));
        // Session: `seq` (named by the tunnel profile), then the peer's own.
        assert!(s.use_sequence_numbers);
        assert_eq!(s.minimum_bps, 9600);
        assert_eq!(ppp.dns_ipaddr_pri, Some(Ipv4Addr::new(198, 51, 100, 53)));
        assert_eq!(
            ppp.ip_pool,
            Some("198.51.100.10-198.51.100.20".parse::<IpPool>().unwrap())
        );
        assert_eq!(ppp.mtu, 1300);
        assert_eq!(ppp.lcp_echo_interval, Duration::from_secs(10));
        // Incoming sessions in local tunnel t1: `fast` names mtu1400.
        let t1 = cfg.local_tunnel("t1").unwrap();
        assert_eq!(t1.ppp_defaults.mtu, 1400);
        assert_eq!(t1.ppp_defaults.lcp_echo_interval, Duration::from_secs(10));
    }
}

#[test]
fn equality_sees_every_part_of_the_configuration() {
    let c = parse(CHAINED);
    assert!(parse(CHAINED) == c);
    for (from, to) in [
        ("max_sessions = 100", "max_sessions = 101"),
        ("maximum_bps = 64000", "maximum_bps = 64001"),
        ("mru = 1200", "mru = 1201"),
        ("host_name = \"lac7\"", "host_name = \"lac8\""),
        (
            "dns_ipaddr_pri = \"198.51.100.53\"",
            "dns_ipaddr_pri = \"198.51.100.54\"",
        ),
    ] {
        assert!(CHAINED.contains(from));
        let other = parse(&CHAINED.replace(from, to));
        assert!(other != c, "{from} -> {to} not seen");
    }
}

#[test]
fn the_dump_shows_resolved_tunnels_and_sessions_and_every_default() {
    let c = parse(CHAINED);
    let dump = c.to_toml_effective();
    let t1 = dump
        .split("\n[tunnel.t1]\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{dump}"));
    let t1 = &t1[..t1.find("\n[").unwrap()];
    // Resolved from tunnel_profile.fast and the default profile.
    assert!(t1.contains("retry_timeout = \"250ms\""), "{t1}");
    assert!(t1.contains("hello_timeout = \"30s\""), "{t1}");
    assert!(t1.contains("mtu = 1460"), "{t1}");
    assert!(t1.contains("tunnel_profile_name = \"fast\""), "{t1}");
    assert!(t1.contains("peer_profile_name = \"lacs\""), "{t1}");
    assert!(dump.contains("[tunnel.t1.session.s1.ppp]"), "{dump}");
    assert!(dump.contains("[tunnel.\"odd name\"]"), "{dump}");
    // Every key of the default profiles, e.g. the built-in ones.
    assert!(dump.contains("tx_window_size = 64"), "{dump}");
    assert!(dump.contains("use_udp_checksums = true"), "{dump}");
    assert!(dump.contains("auth_mschapv2 = true"), "{dump}");
    // The resolved incoming parameters, as comments.
    assert!(
        dump.contains("# Tunnels set up by peers matching peer_profile.lacs resolve to:"),
        "{dump}"
    );
    assert!(dump.contains("# [incoming.lacs.ppp]"), "{dump}");
    assert!(
        dump.contains("# ip_pool = \"198.51.100.10-198.51.100.20\""),
        "{dump}"
    );
}

#[test]
fn the_dump_of_a_configuration_with_secrets_parses_back() {
    let c = parse(include_str!("data/full.toml"));
    let dump = c.to_toml_effective();
    let again = reparse(&dump);
    assert_eq!(body(&again.to_toml_effective()), body(&dump));
    assert!(again != c, "the secrets differ (<redacted>)");
    assert_eq!(
        again
            .local_tunnel("lac1")
            .unwrap()
            .params
            .secret
            .as_ref()
            .unwrap()
            .expose(),
        "<redacted>"
    );
}

#[test]
fn the_header_lists_the_files_read_in_merge_order() {
    let dir = TempDir::new("dump-header");
    let main = dir.write(
        "l2tpd.toml",
        "[system]\nsecrets_file = \"s.toml\"\n[tunnel.t]\npeer_addr = \"192.0.2.2\"\n",
    );
    let b = dir.write("l2tpd.toml.d/20-b.toml", "[tunnel.t]\nmtu = 1400\n");
    let a = dir.write("l2tpd.toml.d/10-a.toml", "[tunnel.t]\nmtu = 1300\n");
    let s = dir.write("s.toml", "[tunnel.t]\nsecret = \"hunter2\"\n");
    let c = Config::load(&ConfigPaths::explicit(&main)).unwrap();
    let dump = c.to_toml_effective();
    let header: String = dump
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let expected = format!(
        "# Read from, in merge order:\n#   {}\n#   {}\n#   {}\n#   {} (secrets)\n",
        main.display(),
        a.display(),
        b.display(),
        s.display()
    );
    assert!(header.contains(&expected), "{header}");
    assert!(!dump.contains("hunter2"), "{dump}");
    assert!(
        dump.contains(&format!("secrets_file = {:?}", s.display().to_string())),
        "{dump}"
    );
    // The dump read back (from_str reads no secrets file) is the same
    // configuration with the secret redacted.
    let again = reparse(&dump);
    assert_eq!(body(&again.to_toml_effective()), body(&dump));
}
