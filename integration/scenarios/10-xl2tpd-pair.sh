#!/bin/bash
# xl2tpd LAC -> xl2tpd LNS: the verified reference pair (kernel-vm.md).
# Proves the harness itself: namespaces, modules, pppd, captures.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_xl2tpd_lns_conf "$WORK/xl2tpd-lns.conf"
write_xl2tpd_lac_conf "$WORK/xl2tpd-lac.conf"
capture_start "$LAC_NS" "$LAC_IF"

start_xl2tpd "$LNS_NS" xl2tpd-lns "$WORK/xl2tpd-lns.conf"
start_xl2tpd "$LAC_NS" xl2tpd-lac "$WORK/xl2tpd-lac.conf"
wait_for "grep -q 'Using l2tp kernel support' $RESULT_DIR/xl2tpd-lns.log" 10 "xl2tpd LNS uses kernel support"
xl2tpd_control xl2tpd-lac "c lac1"

wait_for "ip netns exec $LAC_NS ip l2tp show tunnel | grep -q '^Tunnel'" 20 "kernel tunnel in $LAC_NS"
wait_for "ip netns exec $LNS_NS ip l2tp show tunnel | grep -q '^Tunnel'" 20 "kernel tunnel in $LNS_NS"
wait_for "ip netns exec $LAC_NS ip l2tp show session | grep -q '^Session'" 20 "kernel session in $LAC_NS"
wait_for "ip netns exec $LNS_NS ip l2tp show session | grep -q '^Session'" 20 "kernel session in $LNS_NS"

wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 30
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 30
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"

# The ids the two kernels hold must mirror each other.
assert_l2tp_mirror 1 1

xl2tpd_control xl2tpd-lac "d lac1"
wait_for "! ip netns exec $LAC_NS ip l2tp show tunnel | grep -q '^Tunnel'" 15 "tunnel gone in $LAC_NS after hangup"
capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCRP SCCCN ICRQ ICRP ICCN"
assert_tshark_msgtypes "$CAPTURE_FILE" "StopCCN" "$LAC_IP"
wait_for "test -z \"\$(pppd_pids_in $LAC_NS)\"" 10 "no pppd left in $LAC_NS"
