#!/bin/bash
# Migration: an xl2tpd LNS configuration as a distribution ships it
# (/etc/xl2tpd/xl2tpd.conf with "ip range", "local ip" and a pppoptfile in
# /etc/ppp) is converted by `l2tpd import xl2tpd`; the converted l2tpd LNS
# then serves an xl2tpd LAC: the session comes up, the LAC's ppp0 gets the
# first address of the converted range, and ping works both ways.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

setup_netns
capture_start "$LNS_NS" "$LNS_IF"
write_xl2tpd_lac_conf "$WORK/xl2tpd-lac.conf"

# The LNS as it ran under xl2tpd: the distribution's layout, our addresses.
cat >"$WORK/options.xl2tpd" <<OPTIONS
# /etc/ppp/options.xl2tpd
ipcp-accept-local
ipcp-accept-remote
ms-dns 198.51.100.53
noccp
noauth
mtu 1400
mru 1400
nodefaultroute
lcp-echo-interval 5
lcp-echo-failure 3
debug
logfile $RESULT_DIR/pppd-l2tpd-lns.log
OPTIONS
DAEMON_LOGS+=("$RESULT_DIR/pppd-l2tpd-lns.log")
cat >"$WORK/xl2tpd.conf" <<CONF
; /etc/xl2tpd/xl2tpd.conf
[global]
listen-addr = $LNS_IP
port = 1701
access control = no

[lns default]
ip range = $PPP_POOL
local ip = $LNS_PPP_IP
require authentication = no
refuse pap = yes
refuse chap = yes
name = l2tpd-import-lns
pppoptfile = $WORK/options.xl2tpd
length bit = yes
CONF

section "l2tpd import xl2tpd $WORK/xl2tpd.conf"
rc=0
"$L2TPD" import xl2tpd "$WORK/xl2tpd.conf" >"$WORK/lns.toml" 2>"$WORK/import.err" || rc=$?
indent <"$WORK/lns.toml"
indent <"$WORK/import.err"
cp "$WORK/lns.toml" "$RESULT_DIR/lns-imported.toml"
((rc == 0)) || fail "l2tpd import exited with status $rc"
grep -qx "ip_pool = \"$PPP_POOL\"" "$WORK/lns.toml" || fail "the converted ip_pool is not $PPP_POOL"
grep -qx "local_ipaddr = \"$LNS_PPP_IP\"" "$WORK/lns.toml" || fail "the converted local_ipaddr is not $LNS_PPP_IP"

# What only the VM needs (this pppd, a private state file, no API socket)
# goes in a drop-in, so the imported file is used as it came out.
mkdir -p "$WORK/lns.toml.d"
cat >"$WORK/lns.toml.d/90-vm.toml" <<DROPIN
[system]
pppd_path = "$PPPD"
state_file = "$WORK/l2tpd-lns.state"
api_socket = ""
DROPIN
"$L2TPD" check --config "$WORK/lns.toml" >"$RESULT_DIR/lns-effective.toml" ||
    fail "l2tpd check refused the imported configuration"

start_l2tpd "$LNS_NS" "$WORK/lns.toml" "$RESULT_DIR/l2tpd-lns.log"
start_xl2tpd "$LAC_NS" xl2tpd-lac "$WORK/xl2tpd-lac.conf"
xl2tpd_control xl2tpd-lac "c lac1"

wait_for "ip netns exec $LNS_NS ip l2tp show session | grep -q '^Session'" 30 "kernel session in $LNS_NS"
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 40
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 40
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"

# The pppoptfile's options reached pppd (its command line is logged).
grep -q "ms-dns 198.51.100.53" "$RESULT_DIR/l2tpd-lns.log" ||
    fail "pppd was not started with the imported ms-dns option"

capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRP ICRP" "$LNS_IP"
