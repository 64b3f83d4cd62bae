#!/bin/bash
# Wrong tunnel secret, xl2tpd LAC -> l2tpd LNS; two rounds, one capture each.
#
# A. l2tpd detects it: l2tpd challenges (auth_mode "challenge"), xl2tpd does
#    not but answers with another secret in SCCCN. l2tpd must send StopCCN
#    with Result Code 4 ("not authorized", RFC 2661 §4.4.2) and never create
#    a kernel tunnel; xl2tpd's kernel tunnel (made when it sent SCCCN) goes
#    away with the tunnel.
# B. xl2tpd detects it: xl2tpd challenges ("challenge = yes"), l2tpd does not
#    (auth_mode "none") and answers in SCCRP with its own secret. xl2tpd
#    1.3.18 refuses with StopCCN Result Code 2, Error Code 6, "Invalid
#    challenge authentication" (not 4, see 72-wrong-secret-l2tpd-lac-xl2tpd-lns);
#    l2tpd must drop the half-open tunnel and send no StopCCN of its own.
# After each round: no kernel tunnel or session and no pppd in either
# namespace, and l2tpd still running.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

WRONG_SECRET=not-the-l2tpd-secret
setup_netns

section "A: l2tpd (LNS) detects xl2tpd's wrong Challenge Response"
write_l2tpd_conf "$WORK/l2tpd-lns-a.toml" lns --secret "$L2TP_SECRET" --auth challenge
write_xl2tpd_lac_conf "$WORK/xl2tpd-lac-a.conf" --secret "$WRONG_SECRET"
capture_start "$LAC_NS" "$LAC_IF" capture-a
start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns-a.toml" "$RESULT_DIR/l2tpd-lns-a.log"
lns_pid=$LAST_PID
start_xl2tpd "$LAC_NS" xl2tpd-lac-a "$WORK/xl2tpd-lac-a.conf"
xl2tpd_pid=$LAST_PID
xl2tpd_control xl2tpd-lac-a "c lac1"
wait_for "grep -q 'tunnel authentication failed: wrong Challenge Response' $RESULT_DIR/l2tpd-lns-a.log" 20 \
    "l2tpd logs 'tunnel authentication failed: wrong Challenge Response'"
wait_for "grep -q 'tunnel down' $RESULT_DIR/l2tpd-lns-a.log" 10 "l2tpd logs 'tunnel down'"
assert_nothing_left
if grep 'kernel tunnel created' "$RESULT_DIR/l2tpd-lns-a.log"; then
    fail "l2tpd created a kernel tunnel for a peer that failed authentication"
fi
assert_alive "$lns_pid" "l2tpd"
sleep 1
capture_stop
assert_ctl "$CAPTURE_FILE" SCCRP "$LNS_IP" 'chal && !resp' "a Challenge (l2tpd's) and no Challenge Response"
assert_ctl "$CAPTURE_FILE" SCCCN "$LAC_IP" 'resp' "a Challenge Response (xl2tpd's, from the other secret)"
assert_ctl "$CAPTURE_FILE" StopCCN "$LNS_IP" 'result == 4' "Result Code 4 (not authorized)"
assert_msg_count "$CAPTURE_FILE" ICRP 0
kill -TERM "$lns_pid" "$xl2tpd_pid"
wait_for "! kill -0 $lns_pid && ! kill -0 $xl2tpd_pid" 10 "round A daemons stopped"

section "B: xl2tpd (LAC) detects l2tpd's wrong Challenge Response"
write_l2tpd_conf "$WORK/l2tpd-lns-b.toml" lns --secret "$L2TP_SECRET" --auth none
write_xl2tpd_lac_conf "$WORK/xl2tpd-lac-b.conf" --challenge --secret "$WRONG_SECRET"
capture_start "$LAC_NS" "$LAC_IF" capture-b
start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns-b.toml" "$RESULT_DIR/l2tpd-lns-b.log"
lns_pid=$LAST_PID
start_xl2tpd "$LAC_NS" xl2tpd-lac-b "$WORK/xl2tpd-lac-b.conf"
xl2tpd_control xl2tpd-lac-b "c lac1"
wait_for "grep -q 'closed to .*(Invalid challenge authentication)' $RESULT_DIR/xl2tpd-lac-b.log" 20 \
    "xl2tpd logs 'Connection ... closed to ... (Invalid challenge authentication)'"
wait_for "grep -q 'tunnel down' $RESULT_DIR/l2tpd-lns-b.log" 10 "l2tpd logs 'tunnel down'"
assert_nothing_left
assert_alive "$lns_pid" "l2tpd"
sleep 1
capture_stop
assert_ctl "$CAPTURE_FILE" SCCRQ "$LAC_IP" 'chal' "a Challenge (xl2tpd's)"
assert_ctl "$CAPTURE_FILE" SCCRP "$LNS_IP" 'resp && !chal' "a Challenge Response (l2tpd's, from the other secret) and no Challenge"
assert_ctl "$CAPTURE_FILE" StopCCN "$LAC_IP" 'result == 2 && error == 6 && errmsg ~ /Invalid challenge authentication/' \
    "xl2tpd 1.3.18's Result Code 2, Error Code 6, 'Invalid challenge authentication'"
assert_msg_count "$CAPTURE_FILE" StopCCN 0 "$LNS_IP"
