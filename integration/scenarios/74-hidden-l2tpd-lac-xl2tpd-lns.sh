#!/bin/bash
# Hidden AVPs (RFC 2661 §4.3), l2tpd LAC -> xl2tpd LNS: l2tpd hide_avps =
# true, xl2tpd "hidden bit = yes", same secret, both challenge. Tunnel,
# session and PPP come up and ping crosses, i.e. xl2tpd unhid every AVP we
# hid; the capture (l2tp.avp.hidden, l2tp.avp.random_vector) shows l2tpd's
# SCCCN, ICRQ and ICCN, and on SIGTERM its CDN and StopCCN, each with a
# Random Vector and H-bit AVPs, and its SCCRQ with none. xl2tpd clears its
# call and tunnel on our hidden CDN/StopCCN and logs no hidden-AVP error.
#
# xl2tpd 1.3.18 unhides with the secret it looks up only when it is
# challenged (aaa.c decrypt_avp uses chal_us.secret, filled by
# handle_challenge), so l2tpd's Challenge is what lets it read our hidden
# AVPs: with auth_mode "none" it refuses our ICRQ with StopCCN Result 2,
# Error 6 "Invalid Hidden AVP" ("decrypt_avp: Decrypted length is too long").
# xl2tpd itself sends a Random Vector but hides none of its own AVPs.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_xl2tpd_lns_conf "$WORK/xl2tpd-lns.conf" --challenge --hidden
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --secret "$L2TP_SECRET" --auth challenge --hide
capture_start "$LAC_NS" "$LAC_IF"

start_xl2tpd "$LNS_NS" xl2tpd-lns "$WORK/xl2tpd-lns.conf"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
lac_pid=$LAST_PID

wait_for "ip netns exec $LAC_NS ip l2tp show session | grep -q '^Session'" 20 "kernel session in $LAC_NS"
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 30
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 30
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"
assert_l2tp_mirror 1 1

log "SIGTERM to l2tpd: its CDN and StopCCN are hidden too"
kill -TERM "$lac_pid"
wait_for "test -z \"\$(ip netns exec $LNS_NS ip l2tp show tunnel)\"" 15 "xl2tpd removed its kernel tunnel after l2tpd's StopCCN"
wait_for "test -z \"\$(pppd_pids_in $LNS_NS)\"" 10 "no pppd left in $LNS_NS"
if grep -E 'decrypt_avp|Invalid Hidden AVP|Unable to handle hidden' "$RESULT_DIR/xl2tpd-lns.log"; then
    fail "xl2tpd could not unhide an AVP of l2tpd's"
fi

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCCN ICRQ ICCN CDN StopCCN" "$LAC_IP"
assert_ctl "$CAPTURE_FILE" SCCRQ "$LAC_IP" 'hidden == 0 && chal' "no hidden AVP (never in SCCRQ) and a Challenge"
for m in SCCCN ICRQ ICCN CDN StopCCN; do
    assert_ctl "$CAPTURE_FILE" "$m" "$LAC_IP" 'hidden > 0 && rv' "a Random Vector and hidden AVPs"
done
assert_ctl "$CAPTURE_FILE" SCCRP "$LNS_IP" 'rv' "a Random Vector (xl2tpd's 'hidden bit = yes')"
log "hidden AVPs per message from xl2tpd: $(tshark_ctl "$CAPTURE_FILE" | awk -F'\t' -v x="$LNS_IP" '$2 == x && $1 != "ZLB" { printf "%s:%s ", $1, $8 }')"
