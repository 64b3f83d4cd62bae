#!/bin/bash
# l2tpd LAC -> l2tpd LNS with `our_udp_port = 0` on both sides (RFC 2661
# §8.1): the LNS answers the SCCRQ from an ephemeral port of the tunnel's
# own, the LAC follows it there, and the kernel tunnels are made on those
# sockets: neither kernel tunnel uses port 1701, their ports mirror each
# other, and PPP carries pings over both calls.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

TIMERS='hello_timeout = "60s"
retry_timeout = "1s"
retry_max_timeout = "8s"
max_retries = 5
our_udp_port = 0'

setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns --pool --timers "$TIMERS"
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --sessions "s1 s2" --timers "$TIMERS"
# All UDP: the tunnel's ports are not known in advance.
CAPTURE_FILTER=udp
capture_start "$LAC_NS" "$LAC_IF"

start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"

for ns in "$LAC_NS" "$LNS_NS"; do
    wait_for "test \$(ip netns exec $ns ip -o -4 addr show | grep -c ' ppp[0-9]* .*peer') -eq 2" 60 \
        "two ppp links with addresses in $ns"
done
assert_l2tp_mirror 1 2 any

# "TUNNEL_ID PEER_TUNNEL_ID LOCAL_ADDR PEER_ADDR SPORT DPORT"
read -r _ _ _ _ lac_sport lac_dport <<<"$(l2tp_tunnels "$LAC_NS")"
read -r _ _ _ _ lns_sport lns_dport <<<"$(l2tp_tunnels "$LNS_NS")"
log "kernel tunnel ports: LAC $lac_sport -> $lac_dport, LNS $lns_sport -> $lns_dport"
[[ $lac_sport != 1701 && $lns_sport != 1701 ]] || fail "a kernel tunnel is on port 1701"
[[ $lac_sport == "$lns_dport" && $lns_sport == "$lac_dport" ]] || fail "the kernel tunnels' ports do not mirror"

for ifc in $(ppp_ifaces "$LAC_NS"); do
    out=$(nsx "$LAC_NS" ping -c 3 -i 0.3 -W 2 -I "$ifc" "$LNS_PPP_IP" 2>&1) || {
        printf '%s\n' "$out" | sed 's/^/    | /'
        fail "ping $LNS_PPP_IP over $ifc from $LAC_NS failed"
    }
    log "ok: ping $LNS_PPP_IP over $LAC_NS $ifc"
done

# Every control message after the SCCRQ travels between the two ephemeral
# ports: the SCCRP comes from the LNS's, and the LAC answers there.
TSHARK_DECODE_AS=(-d "udp.port==$lns_sport,l2tp" -d "udp.port==$lac_sport,l2tp")
capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCCN ICRQ ICCN" "$LAC_IP"
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRP ICRP" "$LNS_IP"
assert_msg_count "$CAPTURE_FILE" ICRQ 2 "$LAC_IP"
assert_msg_count "$CAPTURE_FILE" ICCN 2 "$LAC_IP"
assert_msg_count "$CAPTURE_FILE" ICRP 2 "$LNS_IP"
