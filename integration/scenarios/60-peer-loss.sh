#!/bin/bash
# l2tpd LAC -> l2tpd LNS with short LAC timers; then the LNS dies (kill -9,
# with its pppds). The LAC's HELLO goes unanswered, its retransmissions give
# up, and the tunnel is cleared: no kernel tunnel or session and no pppd left
# in the LAC namespace within a bounded time.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --timers 'hello_timeout = "2s"
retry_timeout = "200ms"
retry_max_timeout = "400ms"
max_retries = 3'
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
lns_pid=$LAST_PID
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
lac_pid=$LAST_PID

wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 40
ping_ok "$LAC_NS" "$LNS_PPP_IP"
assert_l2tp_mirror 1 1

lns_pppds=$(pppd_pids_in "$LNS_NS")
log "kill -9 the LNS l2tpd (pid $lns_pid) and its pppd(s) ($lns_pppds)"
# shellcheck disable=SC2086 # a list of pids
kill -KILL "$lns_pid" $lns_pppds
t_kill=$EPOCHREALTIME

# hello 2 s + retransmissions (0.2 + 0.4 + 0.4 s) + slack for TCG.
wait_for "test -z \"\$(ip netns exec $LAC_NS ip l2tp show tunnel)\"" 20 "LAC clears its kernel tunnel after losing the peer"
wait_for "test -z \"\$(ip netns exec $LAC_NS ip l2tp show session)\"" 5 "no kernel session in $LAC_NS"
wait_for "test -z \"\$(pppd_pids_in $LAC_NS)\"" 10 "no pppd left in $LAC_NS"
log "peer loss handled $(awk -v a="$t_kill" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s after the kill"

# The daemon itself must survive losing a peer (a panic or signal is a bug).
if ! kill -0 "$lac_pid" 2>/dev/null; then
    rc=0
    wait "$lac_pid" || rc=$?
    if ((rc == 101 || rc > 128)) || grep -q 'panicked' "$RESULT_DIR/l2tpd-lac.log"; then
        fail "LAC l2tpd crashed (exit status $rc) after losing its peer"
    fi
    log "note: LAC l2tpd exited with status $rc after losing its only tunnel"
fi

capture_stop
# A HELLO sent again with the same Ns is a retransmission that went unanswered.
hellos=$(tshark_msgtypes "$CAPTURE_FILE" | awk -v lac="$LAC_IP" '$1 == "HELLO" && $2 == lac { n[$6]++ } END { for (ns in n) if (n[ns] > m) m = n[ns]; print m + 0 }')
((hellos >= 2)) || {
    tshark_msgtypes "$CAPTURE_FILE" | sed 's/^/    | /'
    fail "no retransmitted HELLO from the LAC in the capture (most copies of one Ns: $hellos)"
}
log "ok: the LAC sent its last HELLO $hellos times"
