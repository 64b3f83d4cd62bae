#!/bin/bash
# Wrong tunnel secret, l2tpd LAC -> xl2tpd LNS; two rounds, one capture each.
#
# A. l2tpd detects it: both challenge (l2tpd auth_mode "challenge", xl2tpd
#    "challenge = yes"), the secrets differ, so xl2tpd's SCCRP carries a
#    Challenge Response l2tpd cannot accept. l2tpd must answer StopCCN with
#    Result Code 4 ("not authorized", RFC 2661 §4.4.2) instead of SCCCN.
# B. xl2tpd detects it: l2tpd does not challenge (auth_mode "none") but
#    answers xl2tpd's Challenge with its own secret in SCCCN. xl2tpd 1.3.18
#    refuses with StopCCN Result Code 2 ("general error"), Error Code 6
#    (vendor specific), "Invalid challenge authentication", not Result Code 4:
#    its control.c reports every SCCRP/SCCCN check with set_error(c,
#    VENDOR_ERROR, ...). l2tpd, which made its kernel tunnel when it sent
#    SCCCN, must take it down again and send no StopCCN of its own.
# After each round: no kernel tunnel or session and no pppd in either
# namespace, and l2tpd still running.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

WRONG_SECRET=not-the-l2tpd-secret
setup_netns

section "A: l2tpd (LAC) detects xl2tpd's wrong Challenge Response"
write_xl2tpd_lns_conf "$WORK/xl2tpd-lns-a.conf" --challenge --secret "$WRONG_SECRET"
write_l2tpd_conf "$WORK/l2tpd-lac-a.toml" lac --secret "$L2TP_SECRET" --auth challenge
capture_start "$LAC_NS" "$LAC_IF" capture-a
start_xl2tpd "$LNS_NS" xl2tpd-lns-a "$WORK/xl2tpd-lns-a.conf"
xl2tpd_pid=$LAST_PID
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac-a.toml" "$RESULT_DIR/l2tpd-lac-a.log"
lac_pid=$LAST_PID
wait_for "grep -q 'tunnel authentication failed: wrong Challenge Response' $RESULT_DIR/l2tpd-lac-a.log" 20 \
    "l2tpd logs 'tunnel authentication failed: wrong Challenge Response'"
wait_for "grep -q 'tunnel down' $RESULT_DIR/l2tpd-lac-a.log" 10 "l2tpd logs 'tunnel down'"
assert_nothing_left
assert_alive "$lac_pid" "l2tpd"
sleep 1 # xl2tpd's acknowledgement of the StopCCN
capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ StopCCN" "$LAC_IP"
assert_ctl "$CAPTURE_FILE" SCCRP "$LNS_IP" 'chal && resp' "a Challenge and a Challenge Response (xl2tpd's, from the other secret)"
assert_ctl "$CAPTURE_FILE" StopCCN "$LAC_IP" 'result == 4' "Result Code 4 (not authorized)"
assert_msg_count "$CAPTURE_FILE" SCCCN 0
assert_msg_count "$CAPTURE_FILE" ICRQ 0
kill -TERM "$lac_pid" "$xl2tpd_pid"
wait_for "! kill -0 $lac_pid && ! kill -0 $xl2tpd_pid" 10 "round A daemons stopped"

section "B: xl2tpd (LNS) detects l2tpd's wrong Challenge Response"
write_xl2tpd_lns_conf "$WORK/xl2tpd-lns-b.conf" --challenge --secret "$WRONG_SECRET"
write_l2tpd_conf "$WORK/l2tpd-lac-b.toml" lac --secret "$L2TP_SECRET" --auth none
capture_start "$LAC_NS" "$LAC_IF" capture-b
start_xl2tpd "$LNS_NS" xl2tpd-lns-b "$WORK/xl2tpd-lns-b.conf"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac-b.toml" "$RESULT_DIR/l2tpd-lac-b.log"
lac_pid=$LAST_PID
wait_for "grep -q 'closed to .*(Invalid challenge authentication)' $RESULT_DIR/xl2tpd-lns-b.log" 20 \
    "xl2tpd logs 'Connection ... closed to ... (Invalid challenge authentication)'"
wait_for "grep -q 'tunnel down' $RESULT_DIR/l2tpd-lac-b.log" 10 "l2tpd logs 'tunnel down'"
assert_nothing_left
assert_alive "$lac_pid" "l2tpd"
sleep 1
capture_stop
assert_ctl "$CAPTURE_FILE" SCCRP "$LNS_IP" 'chal' "a Challenge (xl2tpd's)"
assert_ctl "$CAPTURE_FILE" SCCCN "$LAC_IP" 'resp' "a Challenge Response (l2tpd's, from the other secret)"
assert_ctl "$CAPTURE_FILE" StopCCN "$LNS_IP" 'result == 2 && error == 6 && errmsg ~ /Invalid challenge authentication/' \
    "xl2tpd 1.3.18's Result Code 2, Error Code 6, 'Invalid challenge authentication'"
assert_msg_count "$CAPTURE_FILE" StopCCN 0 "$LAC_IP"
