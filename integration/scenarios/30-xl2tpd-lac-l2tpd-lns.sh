#!/bin/bash
# xl2tpd LAC -> l2tpd LNS: the reverse direction. The PPP addresses come
# from our LNS's ppp_profile: local_ipaddr 198.51.100.1 for us,
# remote_ipaddr 198.51.100.10 for the LAC.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_xl2tpd_lac_conf "$WORK/xl2tpd-lac.conf"
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns
capture_start "$LNS_NS" "$LNS_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_xl2tpd "$LAC_NS" xl2tpd-lac "$WORK/xl2tpd-lac.conf"
xl2tpd_control xl2tpd-lac "c lac1"

wait_for "ip netns exec $LNS_NS ip l2tp show tunnel | grep -q '^Tunnel'" 20 "kernel tunnel in $LNS_NS"
wait_for "ip netns exec $LNS_NS ip l2tp show session | grep -q '^Session'" 20 "kernel session in $LNS_NS"
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 30
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 30
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"
assert_ppp_link_logged "$RESULT_DIR/l2tpd-lns.log" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START"

section "ip l2tp show tunnel / session ($LNS_NS)"
nsx "$LNS_NS" ip l2tp show tunnel
nsx "$LNS_NS" ip l2tp show session
assert_l2tp_mirror 1 1
# Our (LNS-side) tunnel id is the LAC's peer tunnel.
assert_logged_tunnel "$RESULT_DIR/l2tpd-lns.log" "$LNS_TID" "$LAC_TID"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRP ICRP" "$LNS_IP"
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCCN ICRQ ICCN" "$LAC_IP"
