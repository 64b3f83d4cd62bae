#!/bin/bash
# Outgoing call between two l2tpd (RFC 2661 §7.5), since xl2tpd cannot take an
# OCRQ (78-outgoing-call-l2tpd-ocrq-xl2tpd-refused): the dialing l2tpd's
# session has session_type "lns_outgoing" and sends OCRQ; the other accepts it
# as the LAC of the call (OCRP, OCCN, kernel session, pppd with its
# ppp_profile addresses). PPP up, ping across; the logs name the call types
# (lns-outgoing on the requester, lac-outgoing on the placer).
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --session-type lns_outgoing
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"

wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 40
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 20
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"
assert_l2tp_mirror 1 1
grep -q 'session up .*call_type=lns-outgoing' "$RESULT_DIR/l2tpd-lac.log" ||
    fail "the requesting l2tpd did not log 'session up ... call_type=lns-outgoing'"
grep -q 'session up .*call_type=lac-outgoing' "$RESULT_DIR/l2tpd-lns.log" ||
    fail "the placing l2tpd did not log 'session up ... call_type=lac-outgoing'"
log "ok: session up as lns-outgoing (requester) and lac-outgoing (placer)"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCCN OCRQ" "$LAC_IP"
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRP OCRP OCCN" "$LNS_IP"
assert_msg_count "$CAPTURE_FILE" ICRQ 0
