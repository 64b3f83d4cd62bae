#!/bin/bash
# Issue 4: dropping a new LAC tunnel file into the drop-in directory and
# sending SIGHUP brings the tunnel up, while the existing session keeps its
# session id and its pppd process.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns --pool
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac
mkdir -p "$WORK/l2tpd-lac.toml.d"
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
lac_pid=$LAST_PID
wait_ppp_up "$LAC_NS" ppp0 "*" "$LNS_PPP_IP" 40

first_session=$(nsx "$LAC_NS" ip l2tp show session | awk '/^Session/ { print $2; exit }')
first_pppd=$(pppd_pids_in "$LAC_NS")
[[ -n $first_session && -n $first_pppd ]] || fail "no session or pppd before the reload"
log "before reload: session $first_session, pppd $first_pppd"

cat >"$WORK/l2tpd-lac.toml.d/50-second-tunnel.toml" <<EOF2
[tunnel.lac2]
peer_addr = "$LNS_IP"

[tunnel.lac2.session.s1]
EOF2
log "SIGHUP to the LAC l2tpd (pid $lac_pid) after adding 50-second-tunnel.toml"
kill -HUP "$lac_pid"

wait_for "grep -q 'configuration reloaded.*added=1' '$RESULT_DIR/l2tpd-lac.log'" 10 "reload with one tunnel added"
wait_for "test \$(ip netns exec $LAC_NS ip l2tp show tunnel | grep -c '^Tunnel') -eq 2" 30 "two kernel tunnels in $LAC_NS"
wait_for "test \$(ppp_ifaces $LAC_NS | wc -l) -eq 2" 40 "two PPP links in $LAC_NS"
for ifc in $(ppp_ifaces "$LAC_NS"); do
    read -r local peer <<<"$(ppp_addrs "$LAC_NS" "$ifc")"
    ping_ok "$LAC_NS" "$peer"
done

# The first session is untouched: same kernel session id, same pppd.
nsx "$LAC_NS" ip l2tp show session | grep -q "^Session $first_session " ||
    fail "session $first_session is gone after the reload"
kill -0 "$first_pppd" 2>/dev/null || fail "the first session's pppd ($first_pppd) is gone after the reload"
! grep -q "session down" "$RESULT_DIR/l2tpd-lac.log" || fail "a session went down during the reload"
# The second tunnel to the same LNS uses its own source port (one 5-tuple per kernel tunnel).
n=$(l2tp_tunnels "$LAC_NS" | awk '{ print $5 }' | sort -u | wc -l)
((n == 2)) || fail "the two tunnels share a source port"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCRQ" "$LAC_IP"
