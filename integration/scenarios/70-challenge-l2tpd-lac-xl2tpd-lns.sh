#!/bin/bash
# Tunnel authentication (RFC 2661 §4.2, §5.1.1), l2tpd LAC -> xl2tpd LNS:
# both have the same secret and both challenge (l2tpd auth_mode "challenge",
# xl2tpd "challenge = yes"). The tunnel, the session and PPP come up and ping
# crosses; the capture shows a Challenge in SCCRQ (ours) and SCCRP (xl2tpd's)
# and the Challenge Responses in SCCRP (xl2tpd's) and SCCCN (ours), each the
# MD5 of RFC 2661 §4.2 recomputed here from the captured challenge.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_xl2tpd_lns_conf "$WORK/xl2tpd-lns.conf" --challenge
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --secret "$L2TP_SECRET" --auth challenge
capture_start "$LAC_NS" "$LAC_IF"

start_xl2tpd "$LNS_NS" xl2tpd-lns "$WORK/xl2tpd-lns.conf"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"

wait_for "ip netns exec $LAC_NS ip l2tp show session | grep -q '^Session'" 20 "kernel session in $LAC_NS"
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 30
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 30
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"
assert_l2tp_mirror 1 1
assert_logged_tunnel "$RESULT_DIR/l2tpd-lac.log" "$LAC_TID" "$LNS_TID"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCRP SCCCN ICRQ ICRP ICCN"
assert_ctl "$CAPTURE_FILE" SCCRQ "$LAC_IP" 'chal && !resp' "a Challenge AVP (l2tpd challenges xl2tpd)"
assert_ctl "$CAPTURE_FILE" SCCRP "$LNS_IP" 'chal && resp' "a Challenge Response and a Challenge AVP (xl2tpd)"
assert_ctl "$CAPTURE_FILE" SCCCN "$LAC_IP" 'resp && !chal' "a Challenge Response AVP (l2tpd answers)"
assert_challenge_responses "$CAPTURE_FILE" "$L2TP_SECRET" "$LAC_IP" "$LNS_IP"
