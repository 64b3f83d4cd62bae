#!/bin/bash
# l2tpd LAC -> l2tpd LNS, two sessions in one tunnel: two PPP links per side
# (ppp0, ppp1), LAC addresses from the LNS's ip_pool, ping across each link.
# The LNS has `pppd_max_starting = 1`: the second call waits for its ICRP
# until the first call's PPP link is up (after IPCP on the wire).
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns --pool --system 'pppd_max_starting = 1'
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --sessions "s1 s2"
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"

wait_for "test \$(ip netns exec $LAC_NS ip l2tp show session | grep -c '^Session') -eq 2" 30 \
    "two kernel sessions in $LAC_NS"
wait_for "test \$(ip netns exec $LNS_NS ip -o -4 addr show | grep -c ' ppp[0-9]* .*peer') -eq 2" 40 \
    "two ppp links with addresses in $LNS_NS"
wait_for "test \$(ip netns exec $LAC_NS ip -o -4 addr show | grep -c ' ppp[0-9]* .*peer') -eq 2" 40 \
    "two ppp links with addresses in $LAC_NS"
assert_l2tp_mirror 1 2

# Each LAC link: a distinct pool address, the LNS's address as peer.
declare -A seen=()
for ifc in $(ppp_ifaces "$LAC_NS"); do
    read -r local peer <<<"$(ppp_addrs "$LAC_NS" "$ifc")"
    log "$LAC_NS $ifc: local $local peer $peer"
    [[ $peer == "$LNS_PPP_IP" ]] || fail "$LAC_NS $ifc has peer $peer, expected $LNS_PPP_IP"
    [[ -z ${seen[$local]:-} ]] || fail "$LAC_NS: $ifc and ${seen[$local]} both got $local"
    awk -v a="$local" -v lo="$PPP_POOL_START" -v hi="$PPP_POOL_END" 'BEGIN {
        split(a, x, "."); split(lo, l, "."); split(hi, h, ".");
        exit !(x[1] "." x[2] "." x[3] == l[1] "." l[2] "." l[3] && x[4] >= l[4] && x[4] <= h[4]) }' ||
        fail "$LAC_NS $ifc got $local, outside the pool $PPP_POOL"
    seen[$local]=$ifc
    # Across this link: bound to the interface, so the other link cannot answer.
    out=$(nsx "$LAC_NS" ping -c 3 -i 0.3 -W 2 -I "$ifc" "$LNS_PPP_IP" 2>&1) || {
        printf '%s\n' "$out" | sed 's/^/    | /'
        fail "ping $LNS_PPP_IP over $ifc from $LAC_NS failed"
    }
    log "ok: ping $LNS_PPP_IP over $LAC_NS $ifc"
    ping_ok "$LNS_NS" "$local"
done
((${#seen[@]} == 2)) || fail "expected 2 ppp links in $LAC_NS, found ${#seen[@]}"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCCN ICRQ ICCN" "$LAC_IP"
assert_msg_count "$CAPTURE_FILE" SCCRQ 1 "$LAC_IP"
assert_msg_count "$CAPTURE_FILE" ICRQ 2 "$LAC_IP"
assert_msg_count "$CAPTURE_FILE" ICCN 2 "$LAC_IP"
# The LNS's second ICRP (message type 11) comes after IPCP both ways. ICRPs
# are told apart by (tunnel, Ns): a retransmitted first ICRP is not the second.
icrp2=$(awk -F'\t' -v lac="$LAC_IP" -v lns="$LNS_IP" '
    $22 ~ /PPP IPCP/ { sub(/\|.*/, "", $2); ipcp[$2] = 1 }
    $4 == 1 && $5 ~ /^11(\||$)/ && $2 ~ "^" lns && !seen[$6 " " $8]++ && ++n == 2 {
        print (ipcp[lac] && ipcp[lns]) ? "after IPCP" : "before IPCP"; exit
    }' "$(tshark_decode "$CAPTURE_FILE")")
[[ $icrp2 == "after IPCP" ]] || fail "pppd_max_starting = 1: the second ICRP came ${icrp2:-never}"
log "ok: pppd_max_starting = 1: the second ICRP came after the first call's IPCP"
