#!/bin/bash
# Outgoing call (RFC 2661 §7.5): xl2tpd requests it, l2tpd places it.
# xl2tpd 1.3.18's control command "o LAC NUMBER" opens the tunnel of its
# [lac lac1] section and sends OCRQ (Called Number NUMBER) instead of ICRQ;
# l2tpd accepts the tunnel, answers OCRP then OCCN and, as the LAC of the
# call (call_type lac-outgoing), creates the kernel session and runs pppd.
# xl2tpd starts its pppd on OCCN with "file /var/l2tp/NUMBER.options"
# (hard-coded in its control.c), so that file must exist. PPP comes up with
# l2tpd's ppp_profile addresses and ping crosses.
# The other direction cannot work with xl2tpd 1.3.18 (it cannot take an
# OCRQ): see 78-outgoing-call-l2tpd-ocrq-xl2tpd-refused.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

DIAL_NUMBER=5550177
# /var is a writable overlay in the guest; this file exists only there.
mkdir -p /var/l2tp
echo "# pppd options for xl2tpd's outgoing call to $DIAL_NUMBER ($SCENARIO)" >"/var/l2tp/$DIAL_NUMBER.options"
CLEANUP_PATHS+=("/var/l2tp/$DIAL_NUMBER.options")

setup_netns
write_xl2tpd_lac_conf "$WORK/xl2tpd-lac.conf"
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_xl2tpd "$LAC_NS" xl2tpd-lac "$WORK/xl2tpd-lac.conf"
xl2tpd_control xl2tpd-lac "o lac1 $DIAL_NUMBER"

wait_for "ip netns exec $LNS_NS ip l2tp show session | grep -q '^Session'" 20 "kernel session in $LNS_NS"
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 30
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 30
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"
assert_l2tp_mirror 1 1
assert_logged_tunnel "$RESULT_DIR/l2tpd-lns.log" "$LNS_TID" "$LAC_TID"
grep -q 'session up .*call_type=lac-outgoing' "$RESULT_DIR/l2tpd-lns.log" ||
    fail "l2tpd did not log 'session up ... call_type=lac-outgoing'"
log "ok: l2tpd logged the session up as call_type=lac-outgoing"
grep -q "Phoneid: $DIAL_NUMBER" "$RESULT_DIR/xl2tpd-lac.log" ||
    fail "xl2tpd did not log its outgoing call to $DIAL_NUMBER ('parameters: ... Phoneid: $DIAL_NUMBER')"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCCN OCRQ" "$LAC_IP"
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRP OCRP OCCN" "$LNS_IP"
assert_ctl "$CAPTURE_FILE" OCRQ "$LAC_IP" "called == \"$DIAL_NUMBER\"" "Called Number $DIAL_NUMBER"
assert_msg_count "$CAPTURE_FILE" ICRQ 0
assert_msg_count "$CAPTURE_FILE" OCRP 1 "$LNS_IP"
assert_msg_count "$CAPTURE_FILE" OCCN 1 "$LNS_IP"
