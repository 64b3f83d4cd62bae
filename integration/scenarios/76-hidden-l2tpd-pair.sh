#!/bin/bash
# Hidden AVPs (RFC 2661 §4.3) between two l2tpd, proving l2tpd unhides what it
# hides, both ways: both hide_avps = true and auth_mode "challenge" with the
# same secret, so the SCCCN's Challenge Response travels hidden and the LNS
# must unhide it to authenticate the LAC. Tunnel, session and PPP up, ping
# across; SIGTERM to the LAC sends hidden CDN and StopCCN, which the LNS acts
# on. Every message but SCCRQ and SCCRP (never hidden: Cisco and xl2tpd cannot
# unhide them, see 75) and ZLB carries a Random Vector and H-bit AVPs, from
# either side; neither daemon drops a message as malformed.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns --secret "$L2TP_SECRET" --auth challenge --hide
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --secret "$L2TP_SECRET" --auth challenge --hide
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
lac_pid=$LAST_PID

wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 40
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 20
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"
assert_l2tp_mirror 1 1
log "SIGTERM to the LAC l2tpd: hidden CDN and StopCCN"
kill -TERM "$lac_pid"
wait_for "test -z \"\$(ip netns exec $LNS_NS ip l2tp show tunnel)\"" 15 "the LNS removed its kernel tunnel after the hidden StopCCN"
wait_for "test -z \"\$(pppd_pids_in $LNS_NS)\"" 10 "no pppd left in $LNS_NS"
if grep -E 'malformed|AVP at offset' "$RESULT_DIR/l2tpd-lns.log" "$RESULT_DIR/l2tpd-lac.log"; then
    fail "an l2tpd dropped a message it could not decode"
fi

capture_stop
assert_ctl "$CAPTURE_FILE" SCCRQ "$LAC_IP" 'hidden == 0 && chal' "no hidden AVP (never in SCCRQ) and a Challenge"
for m in SCCCN ICRQ ICCN CDN StopCCN; do
    assert_ctl "$CAPTURE_FILE" "$m" "$LAC_IP" 'hidden > 0 && rv' "a Random Vector and hidden AVPs"
done
assert_ctl "$CAPTURE_FILE" SCCRP "$LNS_IP" 'hidden == 0 && chal && resp' "no hidden AVP (never in SCCRP), a Challenge and a Challenge Response"
assert_ctl "$CAPTURE_FILE" ICRP "$LNS_IP" 'hidden > 0 && rv' "a Random Vector and hidden AVPs"
