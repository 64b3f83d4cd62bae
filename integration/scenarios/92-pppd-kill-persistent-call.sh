#!/bin/bash
# timeout: 300
# l2tpd LAC -> l2tpd LNS, the LAC's tunnel and call persistent. The LAC's pppd
# is killed with kill -9 while the session is up: the LAC clears the call with
# a CDN whose Result Code says what happened (not the contradictory "2, see
# Error Code" with Error Code 0), then places the call again by itself: a new
# session with a new pppd, ppp0 back. Done twice (the second re-call waits
# for the back-off). Prints the recovery time.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --persist
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
lac_pid=$LAST_PID
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 40
ping_ok "$LAC_NS" "$LNS_PPP_IP"
assert_l2tp_mirror 1 1
tid=$LAC_TID

for round in 1 2; do
    old_pppd=$(pppd_pids_in "$LAC_NS")
    old_sid=$(l2tp_sessions "$LAC_NS" | awk '{ print $1 }')
    [[ -n $old_pppd && -n $old_sid ]] || fail "no pppd or session in $LAC_NS"
    log "round $round: kill -9 the LAC's pppd $old_pppd (session $old_sid)"
    kill -KILL "$old_pppd"
    t_kill=$EPOCHREALTIME
    wait_for "! l2tp_sessions $LAC_NS | grep -q '^$old_sid '" 20 "the LAC deletes session $old_sid"
    wait_for "test -n \"\$(pppd_pids_in $LAC_NS)\" && ! pppd_pids_in $LAC_NS | grep -qx $old_pppd" 40 "a new pppd in $LAC_NS"
    wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 40
    t_up=$EPOCHREALTIME
    ping_ok "$LAC_NS" "$LNS_PPP_IP"
    log "RECOVERY pppd-death (round $round): ppp0 back $(awk -v a="$t_kill" -v b="$t_up" 'BEGIN { printf "%.1f", b - a }') s after the kill"
    # Same tunnel, one session, mirrored.
    assert_l2tp_mirror 1 1
    [[ $LAC_TID == "$tid" ]] || fail "the tunnel changed ($tid -> $LAC_TID): only the call should be placed again"
done
assert_alive "$lac_pid" "LAC l2tpd"

capture_stop
# pppd killed by a signal: Result Code 2 with Error Code 6 (generic
# vendor-specific error) and pppd's reason as the message.
assert_ctl "$CAPTURE_FILE" CDN "$LAC_IP" 'result == 2 && error == 6 && errmsg ~ /pppd/' \
    "Result Code 2, Error Code 6 and pppd's reason"
