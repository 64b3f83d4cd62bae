#!/bin/bash
# Outgoing call the other way: l2tpd (session_type "lns_outgoing") sends OCRQ
# to xl2tpd. xl2tpd 1.3.18 cannot take an OCRQ: its message_type_avp (avp.c)
# has no case for it ("i don't know how to handle Outgoing-Call-Request
# messages") and it clears the whole tunnel with StopCCN Result Code 1, Error
# Code 0. This proves that limitation (capture and xl2tpd's log) and checks
# l2tpd's side: it sent a well-formed OCRQ, it acts on the StopCCN, and no
# kernel tunnel or session and no pppd are left; l2tpd keeps running.
# (l2tpd's OCRQ against an l2tpd peer: 79-outgoing-call-l2tpd-pair.)
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_xl2tpd_lns_conf "$WORK/xl2tpd-lns.conf"
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --session-type lns_outgoing
capture_start "$LAC_NS" "$LAC_IF"

start_xl2tpd "$LNS_NS" xl2tpd-lns "$WORK/xl2tpd-lns.conf"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
lac_pid=$LAST_PID
wait_for "grep -q \"i don't know how to handle Outgoing-Call-Request messages\" $RESULT_DIR/xl2tpd-lns.log" 20 \
    "xl2tpd logs that it cannot handle Outgoing-Call-Request"
wait_for "grep -q 'tunnel down' $RESULT_DIR/l2tpd-lac.log" 10 "l2tpd logs 'tunnel down'"
assert_nothing_left
assert_alive "$lac_pid" "l2tpd"
sleep 1

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCCN OCRQ" "$LAC_IP"
assert_ctl "$CAPTURE_FILE" StopCCN "$LNS_IP" 'result == 1' "Result Code 1 (xl2tpd clears the tunnel)"
assert_msg_count "$CAPTURE_FILE" OCRP 0
assert_msg_count "$CAPTURE_FILE" ICRQ 0
