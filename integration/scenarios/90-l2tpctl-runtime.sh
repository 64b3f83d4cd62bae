#!/bin/bash
# l2tpctl at run time: the l2tpd LAC starts with NO tunnel in its
# configuration, xl2tpd is the LNS. While `l2tpctl monitor` watches,
# `l2tpctl tunnel create` and `l2tpctl session create` bring a tunnel and a
# call up; PPP comes up and pings cross it; `l2tpctl session show` reports
# the kernel's data counters (genetlink SESSION_GET) counting them; then
# `l2tpctl session delete` and `l2tpctl tunnel delete` clear both (the monitor
# reports them down with their Result Codes) and `ip l2tp show` is empty.
# The capture holds the whole exchange in order, CDN and StopCCN included.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

L2TPCTL=${L2TPCTL_BIN:-$(dirname "$L2TPD")/l2tpctl}
[[ -x $L2TPCTL ]] || fail "l2tpctl binary not found at $L2TPCTL (run: cargo build --workspace --bins)"
API_SOCK=$WORK/io.l2tpd.sock
MONITOR_LOG=$RESULT_DIR/l2tpctl-monitor.log

# ctl ARGS...: l2tpctl against the LAC's API socket, echoed.
ctl() {
    log "l2tpctl $*"
    "$L2TPCTL" --socket "$API_SOCK" "$@"
}

# json_num FIELD: the first number of "FIELD": N in the JSON on stdin.
json_num() {
    sed -n "s/.*\"$1\": \([0-9][0-9]*\).*/\1/p" | head -n 1
}

setup_netns
write_xl2tpd_lns_conf "$WORK/xl2tpd-lns.conf"

# The LAC's configuration: no [tunnel.NAME] at all.
: >"$WORK/l2tpd-lac.toml"
chmod 600 "$WORK/l2tpd-lac.toml"
cat >"$WORK/l2tpd-lac.toml" <<EOF
# l2tpd LAC for $SCENARIO: tunnels and sessions come from l2tpctl only.
[system]
listen_addr = "$LAC_IP"
udp_port = 1701
data_plane = "netlink"
pppd_path = "$PPPD"
deny_remote_tunnel_creates = true
api_socket = "$API_SOCK"
state_file = "$WORK/lac.state"

[ppp_profile.default]
pppd_options = ["noauth", "nodefaultroute", "noccp", "mtu", "1400", "mru", "1400", "ipcp-accept-local", "ipcp-accept-remote", "debug"]
EOF
DAEMON_LOGS+=("$MONITOR_LOG")
capture_start "$LAC_NS" "$LAC_IF"

start_xl2tpd "$LNS_NS" xl2tpd-lns "$WORK/xl2tpd-lns.conf"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
L2TPD_PID=$LAST_PID
wait_for "test -S $API_SOCK" 10 "the API socket $API_SOCK"
[[ $(stat -c %a "$API_SOCK") == 660 ]] || fail "API socket mode $(stat -c %a "$API_SOCK"), expected 660"
[[ -z $(nsx "$LAC_NS" ip l2tp show tunnel) ]] || fail "a kernel tunnel exists before l2tpctl created one"

section "l2tpctl system show"
ctl system show

# The monitor: in the background, one line per event, until the end.
"$L2TPCTL" --socket "$API_SOCK" monitor >"$MONITOR_LOG" 2>&1 &
BG_PIDS+=("$!")
wait_for "grep -q subscribed $MONITOR_LOG" 30 "l2tpctl monitor subscribed"

section "l2tpctl tunnel create / session create"
ctl tunnel create --peer "$LNS_IP" --name rt1 --set hello_timeout=30s --wait --timeout 60 ||
    fail "l2tpctl tunnel create failed"
ctl session create rt1 --name call1 --ppp lcp_echo_interval=5 --wait --timeout 60 ||
    fail "l2tpctl session create failed"
wait_for "grep -q 'tunnel_up .*tunnel rt1 ' $MONITOR_LOG" 10 "monitor: tunnel rt1 up"
wait_for "grep -q 'session_up .*session call1 ' $MONITOR_LOG" 10 "monitor: session call1 up"

wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 30
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 30
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"

section "ip l2tp show tunnel / session ($LAC_NS)"
nsx "$LAC_NS" ip l2tp show tunnel
nsx "$LAC_NS" ip l2tp show session
TID=$(ctl --json tunnel show rt1 | json_num id)
nsx "$LAC_NS" ip l2tp show tunnel | grep -q "^Tunnel $TID," ||
    fail "ip l2tp show tunnel does not show tunnel $TID of l2tpctl"

section "l2tpctl tunnel list / tunnel show / session list / session show"
ctl tunnel list
ctl tunnel show rt1
ctl session list
ctl session show rt1 call1
SHOW=$(ctl --json session show rt1 call1)
rx=$(json_num rx_packets <<<"$SHOW")
tx=$(json_num tx_packets <<<"$SHOW")
ifname=$(sed -n 's/.*"ifname": "\([^"]*\)".*/\1/p' <<<"$SHOW" | head -n 1)
pid=$(json_num pppd_pid <<<"$SHOW")
log "kernel counters of call1: rx_packets=$rx tx_packets=$tx; ifname=$ifname pppd_pid=$pid"
[[ -n $rx && $rx -ge 3 ]] || fail "session show: kernel rx_packets '$rx', expected at least the 3 ping replies"
[[ -n $tx && $tx -ge 3 ]] || fail "session show: kernel tx_packets '$tx', expected at least the 3 pings"
[[ $ifname == ppp0 ]] || fail "session show: interface '$ifname', expected ppp0"
[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || fail "session show: pppd pid '$pid' is not running"

section "l2tpctl session delete / tunnel delete"
ctl session delete rt1 call1 --message "cleared by scenario $SCENARIO"
wait_for "grep -q 'session_down .*session call1 .*result 3' $MONITOR_LOG" 15 "monitor: session call1 down (CDN result 3)"
wait_for "test -z \"\$(l2tp_sessions $LAC_NS)\"" 15 "no kernel session in $LAC_NS"
ctl tunnel delete rt1
wait_for "grep -q 'tunnel_down .*tunnel rt1 .*result 1' $MONITOR_LOG" 15 "monitor: tunnel rt1 down (StopCCN result 1)"
assert_nothing_left
wait_for "$L2TPCTL --socket $API_SOCK tunnel list | grep -q 'no tunnels'" 15 "l2tpctl tunnel list empty"

section "ip l2tp show tunnel / session ($LAC_NS), after"
nsx "$LAC_NS" ip l2tp show tunnel
nsx "$LAC_NS" ip l2tp show session
[[ -z $(nsx "$LAC_NS" ip l2tp show tunnel) ]] || fail "ip l2tp show tunnel is not empty"

section "l2tpctl monitor"
sed 's/^/    | /' "$MONITOR_LOG"
assert_alive "$L2TPD_PID" "l2tpd"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCCN ICRQ ICCN CDN StopCCN" "$LAC_IP"
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRP ICRP" "$LNS_IP"
