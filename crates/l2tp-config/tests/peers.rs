//! Peer matching for incoming tunnels.

mod common;

use std::net::IpAddr;

use common::parse;
use l2tp_config::MatchedBy;

const PEERS: &str = r#"
[peer_profile.net24]
peer_addr = "192.0.2.0/24"
[peer_profile.net28]
peer_addr = "192.0.2.16/28"
[peer_profile.host]
peer_addr = "192.0.2.20"
[peer_profile.v6net]
peer_addr = "2001:db8::/32"
[peer_profile.v6net48]
peer_addr = "2001:db8:1::/48"
[peer_profile.by_name]
host_name = "lac1.example"
[peer_profile.by_name_v6]
host_name = "lac6"
peer_addr = "2001:db8:6::/48"
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[track_caller]
fn check(addr: &str, host: Option<&str>, profile: &str, by: MatchedBy) {
    let c = parse(PEERS);
    let m = c.match_peer(ip(addr), host.map(str::as_bytes));
    assert_eq!(
        (m.profile.name.as_str(), m.matched_by),
        (profile, by),
        "{addr} {host:?}"
    );
}

#[test]
fn host_name_wins_over_address() {
    check(
        "192.0.2.20",
        Some("lac1.example"),
        "by_name",
        MatchedBy::HostName,
    );
    check(
        "203.0.113.1",
        Some("lac1.example"),
        "by_name",
        MatchedBy::HostName,
    );
    check(
        "2001:db8::1",
        Some("lac1.example"),
        "by_name",
        MatchedBy::HostName,
    );
    check(
        "192.0.2.20",
        Some("LAC1.Example"),
        "by_name",
        MatchedBy::HostName,
    );
}

#[test]
fn host_name_profile_with_address_needs_both() {
    check(
        "2001:db8:6::9",
        Some("lac6"),
        "by_name_v6",
        MatchedBy::HostName,
    );
    // Right name, wrong address: falls through to address matching.
    check(
        "2001:db8:1::9",
        Some("lac6"),
        "v6net48",
        MatchedBy::Address { prefix_len: 48 },
    );
    // Right address, no name: host-name profiles never match by address.
    check(
        "2001:db8:6::9",
        None,
        "v6net",
        MatchedBy::Address { prefix_len: 32 },
    );
}

#[test]
fn longest_prefix_wins_ipv4() {
    check(
        "192.0.2.20",
        None,
        "host",
        MatchedBy::Address { prefix_len: 32 },
    );
    check(
        "192.0.2.21",
        None,
        "net28",
        MatchedBy::Address { prefix_len: 28 },
    );
    check(
        "192.0.2.200",
        Some("unknown"),
        "net24",
        MatchedBy::Address { prefix_len: 24 },
    );
    // A dual-stack socket reports IPv4 peers as mapped addresses.
    check(
        "::ffff:192.0.2.21",
        None,
        "net28",
        MatchedBy::Address { prefix_len: 28 },
    );
}

#[test]
fn longest_prefix_wins_ipv6() {
    check(
        "2001:db8:1::5",
        None,
        "v6net48",
        MatchedBy::Address { prefix_len: 48 },
    );
    check(
        "2001:db8:2::5",
        None,
        "v6net",
        MatchedBy::Address { prefix_len: 32 },
    );
}

#[test]
fn default_when_nothing_matches() {
    check("203.0.113.1", None, "default", MatchedBy::Default);
    check(
        "203.0.113.1",
        Some("stranger"),
        "default",
        MatchedBy::Default,
    );
    check("2001:db9::1", None, "default", MatchedBy::Default);
    // An IPv4 prefix never matches an IPv6 address with the same bits.
    check("c000:0214::", None, "default", MatchedBy::Default);
}

#[test]
fn duplicate_prefixes_are_rejected() {
    let e = common::errors(
        "[peer_profile.a]\npeer_addr = \"192.0.2.0/24\"\n[peer_profile.b]\npeer_addr = \"192.0.2.9/24\"\n",
    );
    let err = common::error_for(&e, "peer_profile.b.peer_addr");
    assert_eq!(err.line(), Some(4));
    assert!(err.message.contains("peer profile a"), "{err}");
}
