#!/bin/bash
# timeout: 420
# l2tpd LAC -> l2tpd LNS with the default timers (HELLO every 60 s), the LAC's
# tunnel and call persistent. The LNS l2tpd is killed with kill -9 and
# restarted. Its pppd must not outlive it; the restarted LNS reconciles from
# its state file, and answers the LAC's next HELLO for the old tunnel with a
# StopCCN (it knows the old tunnel from the file), so the LAC re-dials at once
# instead of waiting for its HELLO's retransmissions to give up. Prints the
# recovery time with default timers.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns --timers ''
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --persist --timers ''
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
lns_pid=$LAST_PID
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
lac_pid=$LAST_PID
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 40
assert_l2tp_mirror 1 1
old_lac_tid=$LAC_TID

lns_pppd=$(pppd_pids_in "$LNS_NS")
log "kill -9 the LNS l2tpd (pid $lns_pid); its pppd is $lns_pppd"
kill -KILL "$lns_pid"
t_kill=$EPOCHREALTIME
wait_for "test -z \"\$(pppd_pids_in $LNS_NS)\"" 20 "the LNS's pppd exits after l2tpd's death"
wait_for "test -z \"\$(ppp_ifaces $LNS_NS)\"" 10 "no ppp interface left in $LNS_NS"
wait_for "test -z \"\$(l2tp_tunnel_ids $LNS_NS)\"" 10 "no kernel tunnel left in $LNS_NS"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns-2.log"
grep -q "reconciling" "$RESULT_DIR/l2tpd-lns-2.log" || fail "the restarted LNS did not read what it owned from its state file"
# The LAC learns at its next HELLO (at most 60 s after the last message).
wait_for "! l2tp_tunnel_ids $LAC_NS | grep -qx $old_lac_tid" 100 "the LAC drops its old tunnel $old_lac_tid"
t_down=$EPOCHREALTIME
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 60
t_up=$EPOCHREALTIME
ping_ok "$LAC_NS" "$LNS_PPP_IP"
log "RECOVERY lns-restart: ppp0 back $(awk -v a="$t_kill" -v b="$t_up" 'BEGIN { printf "%.1f", b - a }') s after the kill (old tunnel dropped after $(awk -v a="$t_kill" -v b="$t_down" 'BEGIN { printf "%.1f", b - a }') s)"
assert_l2tp_mirror 1 1
assert_alive "$lac_pid" "LAC l2tpd"

capture_stop
assert_ctl "$CAPTURE_FILE" StopCCN "$LNS_IP" 'result == 2 && error == 1' \
    "Result Code 2, Error Code 1 (no control connection exists yet for this LAC-LNS pair)"
