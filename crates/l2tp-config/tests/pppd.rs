//! pppd command lines for the LAC and LNS sides.

mod common;

use std::net::Ipv4Addr;

use common::parse;
use l2tp_config::{PppParams, SessionType};

fn args(p: &PppParams, lns: bool, remote: Option<Ipv4Addr>) -> String {
    p.pppd_args(lns, remote).join(" ")
}

#[test]
fn lac_defaults() {
    let p = PppParams::default();
    assert_eq!(
        args(&p, false, None),
        "mtu 1500 mru 1500 ipcp-accept-local ipcp-accept-remote noauth"
    );
}

#[test]
fn lns_defaults() {
    assert_eq!(
        args(&PppParams::default(), true, None),
        "mtu 1500 mru 1500 noauth"
    );
}

#[test]
fn lns_with_pool_and_authentication() {
    let c = parse(
        r#"
[ppp_profile.lns]
mtu = 1400
mru = 1400
local_ipaddr = "198.51.100.1"
ip_pool = "198.51.100.10-198.51.100.20"
dns_ipaddr_pri = "198.51.100.53"
dns_ipaddr_sec = "198.51.100.54"
wins_ipaddr_pri = "198.51.100.137"
auth_peer = true
auth_pap = false
auth_eap = false
lcp_echo_interval = "30s"
lcp_echo_fail_count = 4
idle_timeout = "10m"
max_connect_time = 3600
proxy_arp = true
local_name = "lns1"
pppd_options = ["debug", "kdebug", "1"]
options_file = "/etc/ppp/options.l2tpd"
[peer_profile.lacs]
peer_addr = "192.0.2.0/24"
ppp_profile_name = "lns"
"#,
    );
    let m = c.match_peer("192.0.2.7".parse().unwrap(), None);
    let (_, _, ppp) = c.resolve_incoming(&m);
    let pool = ppp.ip_pool.unwrap();
    let assigned = pool.iter().next().unwrap();
    assert_eq!(
        args(&ppp, true, Some(assigned)),
        "mtu 1400 mru 1400 198.51.100.1:198.51.100.10 \
         ms-dns 198.51.100.53 ms-dns 198.51.100.54 ms-wins 198.51.100.137 \
         auth require-chap require-mschap require-mschap-v2 refuse-pap refuse-eap \
         lcp-echo-interval 30 lcp-echo-failure 4 idle 600 maxconnect 3600 proxyarp \
         name lns1 debug kdebug 1 file /etc/ppp/options.l2tpd"
    );
    // Without an assignment only our side is fixed.
    assert!(args(&ppp, true, None).contains(" 198.51.100.1: "));
}

#[test]
fn lns_with_a_fixed_remote_address() {
    let c =
        parse("[ppp_profile.default]\nlocal_ipaddr = \"10.0.0.1\"\nremote_ipaddr = \"10.0.0.2\"\n");
    let p = c.ppp_profile("default").unwrap();
    assert_eq!(
        args(&p, true, None),
        "mtu 1500 mru 1500 10.0.0.1:10.0.0.2 noauth"
    );
    // An address the LNS assigned wins over remote_ipaddr.
    assert_eq!(
        args(&p, true, Some(Ipv4Addr::new(10, 0, 0, 9))),
        "mtu 1500 mru 1500 10.0.0.1:10.0.0.9 noauth"
    );
}

#[test]
fn lac_session_from_the_config() {
    let c = parse(
        r#"
[tunnel.lac1]
peer_addr = "192.0.2.2"
[tunnel.lac1.session.s1]
[tunnel.lac1.session.s1.ppp]
user_name = "alice"
user_password = "wonderland"
remote_name = "lns1"
auth_none = false
auth_mschapv1 = false
default_route = true
multilink = true
pppd_options = ["nodetach"]
"#,
    );
    let s = &c.local_tunnel("lac1").unwrap().sessions[0];
    assert_eq!(s.session_type, SessionType::LacIncoming);
    assert!(!s.session_type.is_lns());
    assert_eq!(
        args(&s.ppp, s.session_type.is_lns(), None),
        "mtu 1500 mru 1500 ipcp-accept-local ipcp-accept-remote refuse-mschap \
         defaultroute multilink remotename lns1 user alice password wonderland nodetach"
    );
}
