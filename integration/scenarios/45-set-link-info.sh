#!/bin/bash
# Set-Link-Info (RFC 2661 §6.16): the LNS's pppd reports the negotiated ACCM
# through its openl2tp.so plugin (ppp_accm_events = true on the LNS), l2tpd
# sends SLI to the LAC, and the LAC's l2tpd reports it.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns --pool
sed -i '/^\[system\]/a ppp_accm_events = true' "$WORK/l2tpd-lns.toml"
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"

wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 40
ping_ok "$LAC_NS" "$LNS_PPP_IP"
wait_for "grep -q 'pppd negotiated ACCM: sending SLI' '$RESULT_DIR/l2tpd-lns.log'" 10 \
    "the LNS l2tpd hears the ACCM from pppd's openl2tp.so plugin"
wait_for "grep -q 'Set-Link-Info' '$RESULT_DIR/l2tpd-lac.log'" 10 "the LAC l2tpd receives SLI"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SLI" "$LNS_IP"
