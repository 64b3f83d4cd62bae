#!/bin/bash
# `cargo xtask demo`, guest side: a LAC and an LNS in two namespaces bring up
# a tunnel, a session and PPP; ping across; show the kernel's view; tear down.
#
#   DEMO_LAC=l2tpd|xl2tpd  DEMO_LNS=l2tpd|xl2tpd  (default: l2tpd on both sides)
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

DEMO_LAC=${DEMO_LAC:-l2tpd}
DEMO_LNS=${DEMO_LNS:-l2tpd}

if [[ ${DEMO_COLOR:-0} == 1 ]]; then
    banner() { printf '\n\033[1m################ %s ################\033[0m\n' "$*"; }
else
    banner() { printf '\n################ %s ################\n' "$*"; }
fi
show() {
    printf '\n$ %s\n' "$*"
    "$@" 2>&1 | sed 's/^/  /'
}
show_ns() {
    local ns=$1
    shift
    printf '\n[%s] $ %s\n' "$ns" "$*"
    local out
    out=$(ip netns exec "$ns" "$@" 2>&1)
    printf '%s\n' "${out:-(nothing)}" | sed 's/^/  /'
}

banner "Guest"
echo "kernel $(uname -r); loading the L2TP and PPP modules"
modprobe -a l2tp_netlink l2tp_ppp l2tp_eth ppp_generic || fail "modprobe failed"
lsmod | grep -E "^(l2tp|ppp)" | sed "s/^/  /"
echo "LAC: $DEMO_LAC    LNS: $DEMO_LNS"

banner "Topology"
setup_netns
echo "  [$LAC_NS] $LAC_IF $LAC_IP/24  <== veth ==>  $LNS_IP/24 $LNS_IF [$LNS_NS]"
echo "  PPP: LNS $LNS_PPP_IP, LAC from $PPP_POOL"
capture_start "$LAC_NS" "$LAC_IF" demo

banner "Starting the LNS ($DEMO_LNS) in $LNS_NS"
case $DEMO_LNS in
l2tpd)
    write_l2tpd_conf "$WORK/lns.toml" lns --pool
    show cat "$WORK/lns.toml"
    start_l2tpd "$LNS_NS" "$WORK/lns.toml" "$RESULT_DIR/l2tpd-lns.log"
    ;;
xl2tpd)
    write_xl2tpd_lns_conf "$WORK/xl2tpd-lns.conf"
    show cat "$WORK/xl2tpd-lns.conf"
    start_xl2tpd "$LNS_NS" xl2tpd-lns "$WORK/xl2tpd-lns.conf"
    ;;
*) fail "DEMO_LNS must be l2tpd or xl2tpd" ;;
esac

banner "Starting the LAC ($DEMO_LAC) in $LAC_NS"
case $DEMO_LAC in
l2tpd)
    write_l2tpd_conf "$WORK/lac.toml" lac
    show cat "$WORK/lac.toml"
    start_l2tpd "$LAC_NS" "$WORK/lac.toml" "$RESULT_DIR/l2tpd-lac.log"
    ;;
xl2tpd)
    write_xl2tpd_lac_conf "$WORK/xl2tpd-lac.conf"
    show cat "$WORK/xl2tpd-lac.conf"
    start_xl2tpd "$LAC_NS" xl2tpd-lac "$WORK/xl2tpd-lac.conf"
    xl2tpd_control xl2tpd-lac "c lac1"
    ;;
*) fail "DEMO_LAC must be l2tpd or xl2tpd" ;;
esac
lac_pid=$LAST_PID

banner "Waiting for tunnel, session and PPP"
wait_for "ip netns exec $LAC_NS ip l2tp show tunnel | grep -q '^Tunnel'" 20 "tunnel in the LAC's kernel"
wait_for "ip netns exec $LAC_NS ip l2tp show session | grep -q '^Session'" 20 "session in the LAC's kernel"
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "*" 30
wait_ppp_up "$LAC_NS" ppp0 "*" "$LNS_PPP_IP" 30

banner "Tunnels (ip l2tp show tunnel)"
show_ns "$LAC_NS" ip l2tp show tunnel
show_ns "$LNS_NS" ip l2tp show tunnel

banner "Sessions (ip l2tp show session)"
show_ns "$LAC_NS" ip l2tp show session
show_ns "$LNS_NS" ip l2tp show session

banner "PPP interfaces (ip addr show ppp0)"
show_ns "$LAC_NS" ip addr show ppp0
show_ns "$LNS_NS" ip addr show ppp0

banner "Ping across the PPP link"
printf '\n[%s] $ ping -c 3 %s\n' "$LAC_NS" "$LNS_PPP_IP"
nsx "$LAC_NS" ping -c 3 -i 0.5 -W 2 "$LNS_PPP_IP" | sed 's/^/  /' || fail "ping across the PPP link failed"
lac_ppp=$(ppp_addrs "$LAC_NS" ppp0 | awk '{ print $1 }')
printf '\n[%s] $ ping -c 3 %s\n' "$LNS_NS" "$lac_ppp"
nsx "$LNS_NS" ping -c 3 -i 0.5 -W 2 "$lac_ppp" | sed 's/^/  /' || fail "ping back across the PPP link failed"

banner "Teardown: SIGTERM to the LAC ($DEMO_LAC, pid $lac_pid)"
kill -TERM "$lac_pid"
wait_for "test -z \"\$(ip netns exec $LAC_NS ip l2tp show tunnel)\"" 10 "LAC's kernel tunnel removed"
wait_for "test -z \"\$(ip netns exec $LNS_NS ip l2tp show tunnel)\"" 10 "LNS's kernel tunnel removed"
wait_for "test -z \"\$(pppd_pids_in $LAC_NS)\"" 10 "LAC's pppd gone"
show_ns "$LAC_NS" ip l2tp show tunnel
show_ns "$LNS_NS" ip l2tp show tunnel

banner "L2TP control messages seen on $LAC_IF (name src dst tunnel session Ns Nr)"
capture_stop
tshark_msgtypes "$CAPTURE_FILE" | sed 's/^/  /'

banner "Done"
echo "logs and capture: $RESULT_DIR"
