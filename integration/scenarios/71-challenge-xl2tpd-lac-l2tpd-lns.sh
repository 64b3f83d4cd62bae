#!/bin/bash
# Tunnel authentication (RFC 2661 §4.2), xl2tpd LAC -> l2tpd LNS: same secret,
# both challenge (xl2tpd "challenge = yes", l2tpd auth_mode "challenge").
# Tunnel, session and PPP up, ping across; the capture shows xl2tpd's
# Challenge in SCCRQ, ours and our Challenge Response in SCCRP, xl2tpd's
# Challenge Response in SCCCN, each response checked against RFC 2661 §4.2.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_xl2tpd_lac_conf "$WORK/xl2tpd-lac.conf" --challenge
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns --secret "$L2TP_SECRET" --auth challenge
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_xl2tpd "$LAC_NS" xl2tpd-lac "$WORK/xl2tpd-lac.conf"
xl2tpd_control xl2tpd-lac "c lac1"

wait_for "ip netns exec $LNS_NS ip l2tp show session | grep -q '^Session'" 20 "kernel session in $LNS_NS"
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 30
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 30
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"
assert_l2tp_mirror 1 1
assert_logged_tunnel "$RESULT_DIR/l2tpd-lns.log" "$LNS_TID" "$LAC_TID"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCRP SCCCN ICRQ ICRP ICCN"
assert_ctl "$CAPTURE_FILE" SCCRQ "$LAC_IP" 'chal && !resp' "a Challenge AVP (xl2tpd challenges l2tpd)"
assert_ctl "$CAPTURE_FILE" SCCRP "$LNS_IP" 'chal && resp' "a Challenge Response and a Challenge AVP (l2tpd)"
assert_ctl "$CAPTURE_FILE" SCCCN "$LAC_IP" 'resp && !chal' "a Challenge Response AVP (xl2tpd answers)"
assert_challenge_responses "$CAPTURE_FILE" "$L2TP_SECRET" "$LAC_IP" "$LNS_IP"
