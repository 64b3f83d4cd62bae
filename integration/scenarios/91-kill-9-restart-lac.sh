#!/bin/bash
# timeout: 360
# An l2tpd LAC with a persistent tunnel and call is killed with kill -9 while
# its session is up, beside a static L2TPv3 tunnel made with `ip l2tp` in the
# same namespace. Its pppd must not outlive it (parent-death signal): no pppd,
# ppp interface or kernel object of its own is left. The restarted l2tpd
# reconciles from its state file, leaves the static tunnel alone and brings
# the persistent tunnel and call back by itself; the LNS's old tunnel, whose
# HELLO now reaches a daemon that does not know it, is answered with a StopCCN
# and cleared. Prints the recovery times.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
# A short HELLO interval on the LNS so that its old tunnel speaks soon, and
# retransmissions that last long enough (2 + 4 + 8 x 8 s) for the LAC to be
# back before the LNS would give up on its own.
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns --timers 'hello_timeout = "5s"
retry_timeout = "2s"
retry_max_timeout = "8s"
max_retries = 10'
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --persist
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
lac_pid=$LAST_PID
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 40
ping_ok "$LAC_NS" "$LNS_PPP_IP"
assert_l2tp_mirror 1 1
old_lac_tid=$LAC_TID
old_lns_tid=$LNS_TID

# A tunnel l2tpd did not create (static L2TPv3, other ports): it must survive.
nsx "$LAC_NS" ip l2tp add tunnel tunnel_id 4000 peer_tunnel_id 4001 encap udp \
    local "$LAC_IP" remote "$LNS_IP" udp_sport 5000 udp_dport 5001
nsx "$LAC_NS" ip l2tp add session tunnel_id 4000 session_id 4100 peer_session_id 4101

lac_pppd=$(pppd_pids_in "$LAC_NS")
[[ -n $lac_pppd ]] || fail "no pppd in $LAC_NS"
log "kill -9 the LAC l2tpd (pid $lac_pid); its pppd is $lac_pppd"
kill -KILL "$lac_pid"
t_kill=$EPOCHREALTIME
wait_for "! kill -0 $lac_pppd 2>/dev/null" 20 "the LAC's pppd ($lac_pppd) exits after l2tpd's death"
t_pppd=$EPOCHREALTIME
wait_for "test -z \"\$(ppp_ifaces $LAC_NS)\"" 10 "no ppp interface left in $LAC_NS"
wait_for "test \"\$(l2tp_tunnel_ids $LAC_NS)\" = 4000" 10 "only the static tunnel 4000 left in the $LAC_NS kernel"
log "pppd gone $(awk -v a="$t_kill" -v b="$t_pppd" 'BEGIN { printf "%.1f", b - a }') s after the kill"

start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac-2.log"
t_start=$EPOCHREALTIME
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 60
t_up=$EPOCHREALTIME
ping_ok "$LAC_NS" "$LNS_PPP_IP"
log "RECOVERY lac-restart: ppp0 back $(awk -v a="$t_start" -v b="$t_up" 'BEGIN { printf "%.1f", b - a }') s after the restart ($(awk -v a="$t_kill" -v b="$t_up" 'BEGIN { printf "%.1f", b - a }') s after the kill)"

# The static tunnel and its session are untouched.
l2tp_tunnel_ids "$LAC_NS" | grep -qx 4000 || fail "the static tunnel 4000 is gone"
l2tp_sessions "$LAC_NS" | grep -q '^4100 4000 ' || fail "the static session 4100 is gone"
# The LNS's old tunnel is cleared (StopCCN from the restarted LAC at its next
# HELLO), leaving the new one.
wait_for "! l2tp_tunnel_ids $LNS_NS | grep -qx $old_lns_tid" 30 "the LNS clears its old tunnel $old_lns_tid"
wait_for "test \"\$(l2tp_tunnel_ids $LNS_NS | wc -l)\" = 1" 10 "the LNS holds one tunnel"
nsx "$LAC_NS" ip l2tp del tunnel tunnel_id 4000

capture_stop
assert_ctl "$CAPTURE_FILE" StopCCN "$LAC_IP" "tunnel == $old_lns_tid" \
    "the restarted LAC answers the old tunnel's HELLO with a StopCCN to tunnel $old_lns_tid"
log "ok: old LAC tunnel $old_lac_tid replaced; static tunnel kept"
