#!/bin/bash
# timeout: 600
# l2tpd LAC -> l2tpd LNS over a link that loses 10 % of the packets in each
# direction (tc netem on both veth ends): the tunnel, the session and PPP come
# up through the loss (retransmitted control messages, PPP's own retries), a
# ping across the PPP link for 60 s (kernel data plane) gets most of its
# replies (0.9 x 0.9 = 81 % expected; at least half required), and at the end
# the tunnel and the session are the same ones, up in both kernels (`ip l2tp
# show`) and in both daemons (`l2tpctl tunnel show`), with no `tunnel down`
# logged. Short timers (HELLO after 2 s of silence, retransmissions from
# 250 ms) with the default max_retries = 5: at 10 % loss one HELLO is given up
# with probability (1 - 0.9^2)^6 = 4.7e-5 (see max_retries in l2tpd.toml(5)).
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

LOSS=10
PING_COUNT=60
TIMERS='hello_timeout = "2s"
retry_timeout = "250ms"
retry_max_timeout = "1s"
max_retries = 5'
LAC_SOCK=$WORK/lac.sock
LNS_SOCK=$WORK/lns.sock

setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns --timers "$TIMERS" --api-socket "$LNS_SOCK"
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --timers "$TIMERS" --api-socket "$LAC_SOCK"
capture_start "$LAC_NS" "$LAC_IF"
netem_loss "$LOSS"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
lns_pid=$LAST_PID
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
lac_pid=$LAST_PID

# LCP and IPCP retry every 3 s (pppd's default): loss costs whole retries.
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 120
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 30
assert_l2tp_mirror 1 1
lac_tid=$LAC_TID lns_tid=$LNS_TID
lac_sessions=$(l2tp_sessions "$LAC_NS")

section "ping over the PPP link for $PING_COUNT s ($LOSS % loss each way)"
t_ping=$EPOCHREALTIME
rc=0
# -c without -w: PING_COUNT echo requests, one a second (with -w, ping
# would go on until PING_COUNT replies); `timeout` bounds it all the same.
out=$(nsx "$LAC_NS" timeout $((PING_COUNT + 30)) ping -n -c "$PING_COUNT" -i 1 -W 2 "$LNS_PPP_IP" 2>&1) || rc=$?
tail -n 3 <<<"$out" | indent
# ping: 0 all answered, 1 some lost, 2 an error (no address, no route...).
((rc <= 1)) || fail "ping $LNS_PPP_IP from $LAC_NS failed (exit status $rc)"
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' <<<"$out")
got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$out")
[[ -n $sent && -n $got ]] || fail "no ping summary in: $out"
((sent >= PING_COUNT)) || fail "ping sent only $sent of $PING_COUNT echo requests"
((got * 2 >= sent)) ||
    fail "ping over the lossy link: $got of $sent replies, expected at least half (about 81 % at $LOSS % each way)"
log "ok: ping over ppp0: $got of $sent replies ($(awk -v g="$got" -v s="$sent" 'BEGIN { printf "%.1f", 100 * (s - g) / s }') % lost) in $(awk -v a="$t_ping" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"

section "state after the ping"
# The same tunnel and session, in both kernels...
assert_l2tp_mirror 1 1
[[ $LAC_TID == "$lac_tid" && $LNS_TID == "$lns_tid" ]] ||
    fail "the kernel tunnel changed: was $lac_tid/$lns_tid, now $LAC_TID/$LNS_TID"
[[ $(l2tp_sessions "$LAC_NS") == "$lac_sessions" ]] ||
    fail "the kernel session changed: was '$lac_sessions', now '$(l2tp_sessions "$LAC_NS")'"
# ...and in both daemons, which never logged a tunnel going down.
for side in lac lns; do
    if [[ $side == lac ]]; then sock=$LAC_SOCK tunnel=lac1; else sock=$LNS_SOCK tunnel=$lns_tid; fi
    show=$(l2tpctl_json "$sock" tunnel show "$tunnel") || fail "l2tpctl tunnel show $tunnel ($side) failed"
    state=$(json_field state <<<"$show")
    [[ $state == established ]] || fail "$side l2tpd: tunnel $tunnel is '$state', expected established"
    nsess=$(grep -c '"state": "established"' <<<"$show" || true)
    ((nsess == 2)) || fail "$side l2tpd: expected the tunnel and one session established, found $nsess established: $show"
    log "ok: $side l2tpd: tunnel $tunnel and its session established;" \
        "HELLOs tx $(json_field tx_hellos <<<"$show") rx $(json_field rx_hellos <<<"$show")," \
        "control messages tx $(json_field tx_messages <<<"$show") rx $(json_field rx_messages <<<"$show")," \
        "retransmissions $(json_field retransmits <<<"$show"), duplicates $(json_field duplicates <<<"$show")"
    if grep -q 'tunnel down' "$RESULT_DIR/l2tpd-$side.log"; then
        grep 'tunnel down' "$RESULT_DIR/l2tpd-$side.log" | indent
        fail "$side l2tpd logged 'tunnel down'"
    fi
done
assert_alive "$lac_pid" "LAC l2tpd"
assert_alive "$lns_pid" "LNS l2tpd"

netem_report
netem_clear
capture_stop
# One of each set-up message from the LAC, however often it was sent. Not
# in a fixed order: when the first SCCCN is lost, the ICRQ sent right after
# it crosses first (the LNS holds it until the SCCCN's retransmission fills
# the gap, RFC 2661 §5.8).
for msg in SCCRQ SCCCN ICRQ ICCN; do
    assert_msg_count "$CAPTURE_FILE" "$msg" 1 "$LAC_IP"
done
for dir in "$LAC_IP $LNS_IP" "$LNS_IP $LAC_IP"; do
    read -r from to <<<"$dir"
    read -r distinct tx acked most <<<"$(hello_stats "$CAPTURE_FILE" "$from" "$to")"
    log "capture: HELLOs $from -> $to: $distinct distinct, $tx transmissions on the wire, $acked acknowledged, at most $most copies of one"
done
