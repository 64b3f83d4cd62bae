#!/bin/bash
# Issue 4: an l2tpd LNS with two peer profiles, one matched by the peer's Host
# Name AVP and one by its address prefix, gives two l2tpd LACs different ppp
# profiles (their PPP addresses prove it); a one-address pool then refuses the
# next call with a CDN and a clear log line.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

LAC2_NS=l2tp-lac2
LAC2_IF=veth-lac2
LNS2_IF=veth-lns2
LAC2_IP=203.0.113.1
LNS2_IP=203.0.113.2

setup_netns
ip netns add "$LAC2_NS"
NAMESPACES+=("$LAC2_NS")
nsx "$LAC2_NS" ip link set lo up
ip link add "$LAC2_IF" netns "$LAC2_NS" type veth peer name "$LNS2_IF" netns "$LNS_NS"
nsx "$LAC2_NS" ip addr add "$LAC2_IP/24" dev "$LAC2_IF"
nsx "$LNS_NS" ip addr add "$LNS2_IP/24" dev "$LNS2_IF"
nsx "$LAC2_NS" ip link set "$LAC2_IF" up
nsx "$LNS_NS" ip link set "$LNS2_IF" up
wait_for "ip netns exec $LAC2_NS ping -c1 -W1 $LNS2_IP" 10 "veth link $LAC2_IP -> $LNS2_IP"

cat >"$WORK/lns.toml" <<EOF2
[system]
listen_addr = "0.0.0.0"
data_plane = "netlink"
state_file = "$WORK/lns.state"

[tunnel_profile.default]
host_name = "lns"

[ppp_profile.default]
pppd_options = ["noauth", "nodefaultroute", "noccp", "mtu", "1400", "mru", "1400"]

# Matched by the Host Name AVP "lac-a": a pool of exactly one address.
[ppp_profile.pool_a]
local_ipaddr = "198.51.100.1"
ip_pool = "198.51.100.10-198.51.100.10"

# Matched by source address 203.0.113.0/24.
[ppp_profile.pool_b]
local_ipaddr = "198.51.100.129"
ip_pool = "198.51.100.140-198.51.100.150"

[peer_profile.by_name]
host_name = "lac-a"
ppp_profile_name = "pool_a"

[peer_profile.by_prefix]
peer_addr = "203.0.113.0/24"
ppp_profile_name = "pool_b"
EOF2

lac_conf() { # FILE HOST_NAME LOCAL_IP PEER_IP SESSIONS...
    local file=$1 name=$2 local_ip=$3 peer=$4 s
    shift 4
    cat >"$file" <<EOF2
[system]
listen_addr = "$local_ip"
deny_remote_tunnel_creates = true
# Two LACs on one host: each its own state file and API socket.
state_file = "$WORK/$name.state"
api_socket = "$WORK/$name.sock"

[tunnel_profile.default]
host_name = "$name"

[ppp_profile.default]
pppd_options = ["noauth", "nodefaultroute", "noccp", "mtu", "1400", "mru", "1400", "ipcp-accept-local", "ipcp-accept-remote"]

[tunnel.lns]
peer_addr = "$peer"
EOF2
    for s in "$@"; do printf '\n[tunnel.lns.session.%s]\n' "$s" >>"$file"; done
}
# LAC A asks for two calls: the second finds pool_a exhausted.
lac_conf "$WORK/lac-a.toml" lac-a "$LAC_IP" "$LNS_IP" s1 s2
lac_conf "$WORK/lac-b.toml" lac-b "$LAC2_IP" "$LNS2_IP" s1

capture_start "$LAC_NS" "$LAC_IF"
start_l2tpd "$LNS_NS" "$WORK/lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_l2tpd "$LAC_NS" "$WORK/lac-a.toml" "$RESULT_DIR/l2tpd-lac-a.log"
start_l2tpd "$LAC2_NS" "$WORK/lac-b.toml" "$RESULT_DIR/l2tpd-lac-b.log"

# Host-name match: LAC A gets pool_a's only address, the LNS end is 198.51.100.1.
wait_ppp_up "$LAC_NS" ppp0 198.51.100.10 198.51.100.1 40
# Prefix match: LAC B gets pool_b, the LNS end is 198.51.100.129.
wait_ppp_up "$LAC2_NS" ppp0 198.51.100.140 198.51.100.129 40
ping_ok "$LAC_NS" 198.51.100.1
ping_ok "$LAC2_NS" 198.51.100.129

# Exhaustion: the LNS logs it and refuses LAC A's second call with CDN (result 2).
wait_for "grep -q 'IP pool 198.51.100.10-198.51.100.10 exhausted' '$RESULT_DIR/l2tpd-lns.log'" 20 \
    "the LNS logs that pool_a is exhausted"
wait_for "grep -q 'session down: closed by peer, result 2.*exhausted' '$RESULT_DIR/l2tpd-lac-a.log'" 20 \
    "LAC A's second call is cleared by the LNS's CDN"
n=$(ppp_ifaces "$LAC_NS" | wc -l)
((n == 1)) || fail "LAC A has $n PPP links, expected 1 (the second call must have been refused)"
n=$(nsx "$LAC_NS" ip l2tp show session | grep -c '^Session' || true)
((n == 1)) || fail "LAC A has $n kernel sessions, expected 1"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "CDN" "$LNS_IP"
