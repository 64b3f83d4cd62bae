#!/bin/bash
# l2tpd LAC -> l2tpd LNS, then SIGTERM to the LAC daemon: it sends CDN and
# StopCCN, its kernel tunnel is gone within 2 s, no pppd is left in its
# namespace, and the LNS cleans up too.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
lns_pid=$LAST_PID
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
lac_pid=$LAST_PID

wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 40
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 20
ping_ok "$LAC_NS" "$LNS_PPP_IP"
assert_l2tp_mirror 1 1

log "SIGTERM to the LAC l2tpd (pid $lac_pid)"
kill -TERM "$lac_pid"
wait_for "test -z \"\$(ip netns exec $LAC_NS ip l2tp show tunnel)\"" 2 "no kernel tunnel in $LAC_NS within 2 s of SIGTERM"
wait_for "test -z \"\$(ip netns exec $LAC_NS ip l2tp show session)\"" 2 "no kernel session in $LAC_NS"
wait_for "! kill -0 $lac_pid" 10 "LAC l2tpd exits after SIGTERM"
rc=0
wait "$lac_pid" || rc=$?
((rc == 0)) || fail "LAC l2tpd exited with status $rc after SIGTERM (expected 0)"
wait_for "test -z \"\$(pppd_pids_in $LAC_NS)\"" 5 "no pppd left in $LAC_NS"

# The LNS saw the StopCCN: tunnel, session and pppd gone there too.
wait_for "test -z \"\$(ip netns exec $LNS_NS ip l2tp show tunnel)\"" 10 "no kernel tunnel in $LNS_NS"
wait_for "test -z \"\$(pppd_pids_in $LNS_NS)\"" 10 "no pppd left in $LNS_NS"
kill -0 "$lns_pid" 2>/dev/null || fail "the LNS l2tpd exited when its peer hung up"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "CDN StopCCN" "$LAC_IP"
