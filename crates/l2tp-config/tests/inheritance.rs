//! Profile inheritance: for every kind of parameter, a value set at each
//! level wins over the levels below it.

mod common;

use std::time::Duration;

use common::parse;
use l2tp_config::{LacLns, MatchedBy};

/// Every subset of `levels` (bit i set = level i present).
fn subsets(levels: usize) -> impl Iterator<Item = Vec<bool>> {
    (0u32..(1 << levels)).map(move |m| (0..levels).map(|i| m & (1 << i) != 0).collect())
}

/// The value the highest present level (index 0 = highest) sets, else the
/// built-in default.
fn expected(present: &[bool], values: &[u64], builtin: u64) -> u64 {
    present
        .iter()
        .zip(values)
        .find(|(p, _)| **p)
        .map_or(builtin, |(_, v)| *v)
}

fn opt(on: bool, line: &str) -> String {
    if on {
        format!("{line}\n")
    } else {
        String::new()
    }
}

#[test]
fn tunnel_params_own_then_profile_then_peer_profile_then_default() {
    // Levels, highest first: tunnel keys, its tunnel profile, its peer
    // profile's tunnel profile, [tunnel_profile.default].
    let values = [40, 30, 20, 10];
    for present in subsets(4) {
        let text = format!(
            r#"
[tunnel_profile.default]
{}
[tunnel_profile.of_peer]
{}
[tunnel_profile.own]
{}
[peer_profile.p]
tunnel_profile_name = "of_peer"
[tunnel.t]
peer_addr = "192.0.2.2"
tunnel_profile_name = "own"
peer_profile_name = "p"
{}
"#,
            opt(present[3], "hello_timeout = 10"),
            opt(present[2], "hello_timeout = 20"),
            opt(present[1], "hello_timeout = 30"),
            opt(present[0], "hello_timeout = 40"),
        );
        let c = parse(&text);
        let t = c.local_tunnel("t").unwrap();
        assert_eq!(
            t.params.hello_timeout,
            Duration::from_secs(expected(&present, &values, 60)),
            "levels present: {present:?}"
        );
    }
}

#[test]
fn session_params_request_then_named_profile_then_peer_profile_then_default() {
    // Levels: session table, session profile it names, peer profile's
    // session profile, default.
    let values = [4000, 3000, 2000, 1000];
    for present in subsets(4) {
        let text = format!(
            r#"
[session_profile.default]
{}
[session_profile.of_peer]
{}
[session_profile.named]
{}
[peer_profile.p]
session_profile_name = "of_peer"
[tunnel.t]
peer_addr = "192.0.2.2"
peer_profile_name = "p"
[tunnel.t.session.s]
session_profile_name = "named"
{}
"#,
            opt(present[3], "tx_connect_speed = 1000"),
            opt(present[2], "tx_connect_speed = 2000"),
            opt(present[1], "tx_connect_speed = 3000"),
            opt(present[0], "tx_connect_speed = 4000"),
        );
        let c = parse(&text);
        let s = &c.local_tunnel("t").unwrap().sessions[0];
        assert_eq!(
            u64::from(s.params.tx_connect_speed),
            expected(&present, &values, 1_000_000),
            "levels present: {present:?}"
        );
    }
}

#[test]
fn session_profile_falls_back_to_the_one_the_tunnel_names() {
    let text = r#"
[session_profile.by_tunnel]
sequencing_required = true
reorder_timeout = "100ms"
[session_profile.by_session]
reorder_timeout = "200ms"
[session_profile.of_peer]
sequencing_required = false
minimum_bps = 9600
[tunnel_profile.tp]
session_profile_name = "by_tunnel"
[peer_profile.p]
session_profile_name = "of_peer"
[tunnel.t]
peer_addr = "192.0.2.2"
tunnel_profile_name = "tp"
peer_profile_name = "p"
[tunnel.t.session.plain]
[tunnel.t.session.named]
session_profile_name = "by_session"
"#;
    let c = parse(text);
    let t = c.local_tunnel("t").unwrap();
    let named = t.sessions.iter().find(|s| s.name == "named").unwrap();
    let plain = t.sessions.iter().find(|s| s.name == "plain").unwrap();
    // No session profile in the session: the tunnel profile's wins over
    // the peer profile's.
    assert!(plain.params.sequencing_required);
    assert_eq!(plain.params.reorder_timeout, Duration::from_millis(100));
    assert_eq!(
        plain.params.minimum_bps, 9600,
        "peer profile's as the lower level"
    );
    // A session profile named in the session replaces the tunnel's.
    assert_eq!(named.params.reorder_timeout, Duration::from_millis(200));
    assert!(
        !named.params.sequencing_required,
        "tunnel's profile is not a level here"
    );
    assert_eq!(named.params.minimum_bps, 9600);
    // Sessions the peer sets up follow the tunnel's choice.
    assert!(t.session_defaults.sequencing_required);
}

#[test]
fn ppp_params_request_then_session_then_tunnel_then_peer_then_default() {
    // Levels: [..ppp] table, PPP profile named in the session table, PPP
    // profile of the session profile, of the tunnel, of the peer profile,
    // default.
    let values = [1450, 1440, 1430, 1420, 1410, 1400];
    for present in subsets(6) {
        let text = format!(
            r#"
[ppp_profile.default]
{}
[ppp_profile.of_peer]
{}
[ppp_profile.of_tunnel]
{}
[ppp_profile.of_session_profile]
{}
[ppp_profile.of_session]
{}
[session_profile.sp]
ppp_profile_name = "of_session_profile"
[peer_profile.p]
ppp_profile_name = "of_peer"
[tunnel.t]
peer_addr = "192.0.2.2"
peer_profile_name = "p"
ppp_profile_name = "of_tunnel"
[tunnel.t.session.with_name]
session_profile_name = "sp"
ppp_profile_name = "of_session"
[tunnel.t.session.with_name.ppp]
{}
[tunnel.t.session.via_profile]
session_profile_name = "sp"
[tunnel.t.session.via_profile.ppp]
{}
"#,
            opt(present[5], "mtu = 1400"),
            opt(present[4], "mtu = 1410"),
            opt(present[3], "mtu = 1420"),
            opt(present[2], "mtu = 1430"),
            opt(present[1], "mtu = 1440"),
            opt(present[0], "mtu = 1450"),
            opt(present[0], "mtu = 1450"),
        );
        let c = parse(&text);
        let t = c.local_tunnel("t").unwrap();
        let with_name = t.sessions.iter().find(|s| s.name == "with_name").unwrap();
        assert_eq!(
            u64::from(with_name.ppp.mtu),
            expected(&present, &values, 1500),
            "levels present: {present:?}"
        );
        // Without a name in the session table, its session profile's PPP
        // profile is the top named level (level 1 absent).
        let mut p2 = present.clone();
        p2[1] = false;
        let via_profile = t.sessions.iter().find(|s| s.name == "via_profile").unwrap();
        assert_eq!(
            u64::from(via_profile.ppp.mtu),
            expected(&p2, &values, 1500),
            "levels present: {present:?}"
        );
    }
}

#[test]
fn default_profiles_can_be_modified_key_by_key() {
    let c = parse(
        r#"
[tunnel_profile.default]
hello_timeout = 5
[tunnel_profile.other]
max_retries = 9
[ppp_profile.default]
mtu = 1400
[ppp_profile.other]
mru = 1300
"#,
    );
    let d = c.tunnel_profile("default").unwrap();
    assert_eq!(d.hello_timeout, Duration::from_secs(5));
    assert_eq!(d.max_retries, 5, "keys not given keep the built-in default");
    let o = c.tunnel_profile("other").unwrap();
    assert_eq!(
        o.hello_timeout,
        Duration::from_secs(5),
        "named profiles inherit default"
    );
    assert_eq!(o.max_retries, 9);
    assert_eq!(o.retry_timeout, Duration::from_secs(1));
    let p = c.ppp_profile("other").unwrap();
    assert_eq!((p.mtu, p.mru), (1400, 1300));
    assert!(c.tunnel_profile("missing").is_none());
}

#[test]
fn naming_default_does_not_hide_the_peer_profiles_choice() {
    let c = parse(
        r#"
[tunnel_profile.of_peer]
hello_timeout = 20
[peer_profile.p]
tunnel_profile_name = "of_peer"
[tunnel.t]
peer_addr = "192.0.2.2"
tunnel_profile_name = "default"
peer_profile_name = "p"
"#,
    );
    assert_eq!(
        c.local_tunnel("t").unwrap().params.hello_timeout,
        Duration::from_secs(20)
    );
}

#[test]
fn incoming_tunnels_use_the_peer_profiles_profiles() {
    let c = parse(
        r#"
[tunnel_profile.default]
hello_timeout = 10
[tunnel_profile.lac_side]
hello_timeout = 20
session_profile_name = "seq"
[session_profile.seq]
use_sequence_numbers = true
[session_profile.peer_sessions]
reorder_timeout = "50ms"
use_sequence_numbers = false
[ppp_profile.lns]
local_ipaddr = "198.51.100.1"
ip_pool = "198.51.100.10-198.51.100.20"
auth_peer = true
[peer_profile.lacs]
peer_addr = "192.0.2.0/24"
tunnel_profile_name = "lac_side"
session_profile_name = "peer_sessions"
ppp_profile_name = "lns"
"#,
    );
    let m = c.match_peer("192.0.2.5".parse().unwrap(), Some(b"lac9"));
    assert_eq!(m.profile.name, "lacs");
    let (tunnel, session, ppp) = c.resolve_incoming(&m);
    assert_eq!(tunnel.hello_timeout, Duration::from_secs(20));
    assert!(
        session.use_sequence_numbers,
        "tunnel profile's session profile first"
    );
    assert_eq!(
        session.reorder_timeout,
        Duration::from_millis(50),
        "then the peer's"
    );
    assert!(ppp.auth_peer);
    assert_eq!(ppp.ip_pool.unwrap().size(), 11);

    let other = c.match_peer("203.0.113.5".parse().unwrap(), None);
    assert_eq!(other.matched_by, MatchedBy::Default);
    let (tunnel, _, ppp) = c.resolve_incoming(&other);
    assert_eq!(tunnel.hello_timeout, Duration::from_secs(10));
    assert!(!ppp.auth_peer);
}

#[test]
fn peer_profiles_inherit_from_default_except_what_they_match_on() {
    let c = parse(
        r#"
[tunnel_profile.shared]
[peer_profile.default]
lac_lns = "lns"
tunnel_profile_name = "shared"
[peer_profile.p]
host_name = "lac1"
"#,
    );
    let p = c.peer_profile("p").unwrap();
    assert_eq!(p.params.lac_lns, LacLns::Lns);
    assert_eq!(p.params.tunnel_profile_name, "shared");
    assert_eq!(p.params.session_profile_name, "default");
    assert_eq!(p.params.peer_addr, None);
}

#[test]
fn local_tunnel_without_peer_profile_name_matches_by_address() {
    let c = parse(
        r#"
[tunnel_profile.slow]
hello_timeout = 120
[peer_profile.far]
peer_addr = "198.18.0.0/15"
tunnel_profile_name = "slow"
[tunnel.t]
peer_addr = "198.19.1.1"
[tunnel.u]
peer_addr = "192.0.2.1"
"#,
    );
    let t = c.local_tunnel("t").unwrap();
    assert_eq!(t.peer_profile, "far");
    assert_eq!(t.params.hello_timeout, Duration::from_secs(120));
    let u = c.local_tunnel("u").unwrap();
    assert_eq!(u.peer_profile, "default");
    assert_eq!(u.params.hello_timeout, Duration::from_secs(60));
}
