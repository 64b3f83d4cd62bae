#!/bin/bash
# l2tpd LAC -> xl2tpd LNS: our tunnel and session against the reference LNS,
# PPP up with addresses on both ends, ping across, and the kernel's view of
# the tunnel matches what l2tpd logged.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_xl2tpd_lns_conf "$WORK/xl2tpd-lns.conf"
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac
capture_start "$LAC_NS" "$LAC_IF"

start_xl2tpd "$LNS_NS" xl2tpd-lns "$WORK/xl2tpd-lns.conf"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"

wait_for "ip netns exec $LAC_NS ip l2tp show tunnel | grep -q '^Tunnel'" 20 "kernel tunnel in $LAC_NS"
wait_for "ip netns exec $LAC_NS ip l2tp show session | grep -q '^Session'" 20 "kernel session in $LAC_NS"
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 30
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 30
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"

# `ip l2tp show tunnel` in the LAC namespace: our tunnel id, xl2tpd's as
# "Peer tunnel"; the session likewise; both mirrored by xl2tpd's kernel state.
section "ip l2tp show tunnel / session ($LAC_NS)"
nsx "$LAC_NS" ip l2tp show tunnel
nsx "$LAC_NS" ip l2tp show session
assert_l2tp_mirror 1 1
assert_logged_tunnel "$RESULT_DIR/l2tpd-lac.log" "$LAC_TID" "$LNS_TID"
assert_ppp_link_logged "$RESULT_DIR/l2tpd-lac.log" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCCN ICRQ ICCN" "$LAC_IP"
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRP ICRP" "$LNS_IP"
