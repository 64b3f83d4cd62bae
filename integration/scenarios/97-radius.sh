#!/bin/bash
# timeout: 360
# RADIUS for subscribers: an l2tpd LNS whose PPP profile has radius = true
# (pppd's radius.so and radattr.so) requires CHAP and asks FreeRADIUS,
# running in the LNS namespace on 127.0.0.1 with a configuration of its own
# written here, about the l2tpd LAC's user (the LAC's PPP profile sets
# user_name / user_password).
#  (a) the known user with the right password: CHAP succeeds, the LAC's ppp0
#      gets exactly the Access-Accept's Framed-IP-Address ($RADIUS_FRAMED_IP,
#      no pool on the LNS), radattr.so wrote the attributes for ip-up, the
#      radius_avpairs entry reached the server;
#  (b) the same user with a wrong password: FreeRADIUS rejects, pppd exits
#      (11 on the LNS, 19 on the LAC) and the session is cleared with a CDN
#      whose Result Code says why: 2 (general error), Error Code 6 and pppd's
#      reason as the message; no ppp0, no session, no pppd left;
#  (c) accounting: the Start record (when IPCP came up) and the Stop record
#      (when the LAC ended the call) arrive in FreeRADIUS's detail file.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

FREERADIUS=${FREERADIUS:-/usr/sbin/freeradius}
RADIUS_SECRET=radius-integration-secret
RADIUS_USER=subscriber1
RADIUS_PASSWORD=correct-horse
RADIUS_FRAMED_IP=198.51.100.42
RADIUS_AVPAIR=Connect-Info=l2tpd-scenario-97
RADDB=$WORK/raddb
RADCLI=$WORK/radcli
RADIUS_LOG=$RESULT_DIR/freeradius.log
DETAIL=$RADDB/acct/detail

[[ -x $FREERADIUS ]] || fail "FreeRADIUS not found at $FREERADIUS (Debian package freeradius; cargo xtask installs it)"

# write_freeradius_conf DIR: a FreeRADIUS 3 configuration directory of its
# own (nothing from /etc/freeradius): one client, 127.0.0.1 with
# $RADIUS_SECRET; one user, $RADIUS_USER with $RADIUS_PASSWORD, a framed PPP
# user with Framed-IP-Address $RADIUS_FRAMED_IP; PAP and CHAP; accounting
# written to DIR/acct/detail; no delay before an Access-Reject.
write_freeradius_conf() {
    local dir=$1
    mkdir -p "$dir/acct" "$dir/run" "$dir/log"
    cat >"$dir/radiusd.conf" <<EOF
# FreeRADIUS for integration scenario $SCENARIO
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
confdir = $dir
raddbdir = $dir
radacctdir = $dir/acct
logdir = $dir/log
run_dir = $dir/run
libdir = /usr/lib/freeradius
pidfile = $dir/run/radiusd.pid
name = radiusd
max_request_time = 10
cleanup_delay = 1
max_requests = 64
hostname_lookups = no
proxy_requests = no
log {
    destination = stdout
    auth = yes
}
security {
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = no
}
client lns {
    ipaddr = 127.0.0.1
    secret = $RADIUS_SECRET
    shortname = lns
}
modules {
    pap {
    }
    chap {
    }
    files {
        filename = $dir/users
    }
    detail {
        filename = $dir/acct/detail
        permissions = 0600
        header = "%t"
    }
}
server default {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = 1812
    }
    listen {
        type = acct
        ipaddr = 127.0.0.1
        port = 1813
    }
    authorize {
        chap
        files
        pap
    }
    authenticate {
        Auth-Type PAP {
            pap
        }
        Auth-Type CHAP {
            chap
        }
    }
    preacct {
    }
    accounting {
        detail
    }
    post-auth {
    }
}
EOF
    cat >"$dir/users" <<EOF
$RADIUS_USER Cleartext-Password := "$RADIUS_PASSWORD"
    Service-Type = Framed-User,
    Framed-Protocol = PPP,
    Framed-IP-Address = $RADIUS_FRAMED_IP
EOF
    chmod -R go-rwx "$dir"
}

# write_radiusclient_conf DIR: the configuration pppd's radius.so reads
# (radiusclient format, pppd-radius(8)): servers on 127.0.0.1, the shared
# secret in DIR/servers, and a dictionary of the RFC 2865 / 2866 attributes
# radius.so sends and reads (its own; Debian's ppp ships none).
write_radiusclient_conf() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/radiusclient.conf" <<EOF
# radiusclient configuration for pppd's radius.so, scenario $SCENARIO
auth_order radius
login_tries 4
login_timeout 60
nologin /etc/nologin
issue $dir/issue
authserver 127.0.0.1:1812
acctserver 127.0.0.1:1813
servers $dir/servers
dictionary $dir/dictionary
login_radius /usr/sbin/login.radius
seqfile $dir/radius.seq
mapfile $dir/port-id-map
default_realm
radius_timeout 5
radius_retries 2
nas_identifier l2tpd-lns
login_local /bin/login
EOF
    printf '127.0.0.1 %s\n' "$RADIUS_SECRET" >"$dir/servers"
    : >"$dir/issue"
    printf '/dev/ttyS0 1\n' >"$dir/port-id-map"
    {
        echo "# RADIUS attributes (RFC 2865 section 5, RFC 2866 section 5)"
        local a
        for a in \
            "User-Name 1 string" "User-Password 2 string" "CHAP-Password 3 string" \
            "NAS-IP-Address 4 ipaddr" "NAS-Port 5 integer" "Service-Type 6 integer" \
            "Framed-Protocol 7 integer" "Framed-IP-Address 8 ipaddr" \
            "Framed-IP-Netmask 9 ipaddr" "Framed-Routing 10 integer" "Filter-Id 11 string" \
            "Framed-MTU 12 integer" "Framed-Compression 13 integer" \
            "Reply-Message 18 string" "Framed-Route 22 string" "State 24 string" \
            "Class 25 string" "Session-Timeout 27 integer" "Idle-Timeout 28 integer" \
            "Termination-Action 29 integer" "Called-Station-Id 30 string" \
            "Calling-Station-Id 31 string" "NAS-Identifier 32 string" \
            "Proxy-State 33 string" "Acct-Status-Type 40 integer" \
            "Acct-Delay-Time 41 integer" "Acct-Input-Octets 42 integer" \
            "Acct-Output-Octets 43 integer" "Acct-Session-Id 44 string" \
            "Acct-Authentic 45 integer" "Acct-Session-Time 46 integer" \
            "Acct-Input-Packets 47 integer" "Acct-Output-Packets 48 integer" \
            "Acct-Terminate-Cause 49 integer" "Acct-Multi-Session-Id 50 string" \
            "Acct-Link-Count 51 integer" "Acct-Input-Gigawords 52 integer" \
            "Acct-Output-Gigawords 53 integer" "CHAP-Challenge 60 string" \
            "NAS-Port-Type 61 integer" "Port-Limit 62 integer" "Connect-Info 77 string" \
            "Acct-Interim-Interval 85 integer" "NAS-Port-Id 87 string"; do
            echo "ATTRIBUTE $a"
        done
        for a in \
            "Service-Type Framed-User 2" "Framed-Protocol PPP 1" \
            "Acct-Status-Type Start 1" "Acct-Status-Type Stop 2" \
            "Acct-Status-Type Interim-Update 3" "Acct-Authentic RADIUS 1" \
            "NAS-Port-Type Async 0" "NAS-Port-Type Sync 1" "NAS-Port-Type Virtual 5"; do
            echo "VALUE $a"
        done
    } >"$dir/dictionary"
}

# write_conf FILE ROLE(lac|lns) PASSWORD: the l2tpd configurations. The LNS
# has no address pool: the peer's address comes from RADIUS.
write_conf() {
    local file=$1 role=$2 password=$3 listen deny
    if [[ $role == lac ]]; then listen=$LAC_IP deny=true; else listen=$LNS_IP deny=false; fi
    : >"$file"
    chmod 600 "$file"
    cat >"$file" <<EOF
# l2tpd $role config for integration scenario $SCENARIO
[system]
listen_addr = "$listen"
udp_port = 1701
data_plane = "netlink"
pppd_path = "$PPPD"
deny_remote_tunnel_creates = $deny
api_socket = ""
state_file = "$WORK/l2tpd-$role.state"

[tunnel_profile.default]
hello_timeout = "60s"
retry_timeout = "1s"
retry_max_timeout = "8s"
max_retries = 5

[ppp_profile.default]
EOF
    if [[ $role == lns ]]; then
        cat >>"$file" <<EOF
local_ipaddr = "$LNS_PPP_IP"
auth_peer = true
auth_pap = false
auth_mschapv1 = false
auth_mschapv2 = false
auth_eap = false
radius = true
radius_config_file = "$RADCLI/radiusclient.conf"
radius_avpairs = ["$RADIUS_AVPAIR"]
radattr = true
pppd_options = ["nodefaultroute", "noccp", "mtu", "1400", "mru", "1400", "debug"$(_toml_extra_opts)]
EOF
    else
        cat >>"$file" <<EOF
user_name = "$RADIUS_USER"
user_password = "$password"
pppd_options = ["noauth", "nodefaultroute", "noccp", "mtu", "1400", "mru", "1400", "ipcp-accept-local", "ipcp-accept-remote", "debug"$(_toml_extra_opts)]

[tunnel.lac1]
peer_addr = "$LNS_IP"
peer_udp_port = 1701

[tunnel.lac1.session.s1]
EOF
    fi
}

# detail_records STATUS: how many accounting records of $RADIUS_USER with
# Acct-Status-Type STATUS and Framed-IP-Address $RADIUS_FRAMED_IP the detail
# file holds (records are blank-line separated).
detail_records() {
    [[ -f $DETAIL ]] || { echo 0; return; }
    awk -v RS= -v st="$1" -v user="$RADIUS_USER" -v ip="$RADIUS_FRAMED_IP" '
        index($0, "User-Name = \"" user "\"") && index($0, "Acct-Status-Type = " st) &&
        index($0, "Framed-IP-Address = " ip) { n++ }
        END { print n + 0 }' "$DETAIL"
}

setup_netns
# Under software emulation on a loaded host the first dumpcap spends most of
# capture_start's 30 s reading its libraries; read them once beforehand.
timeout 120 dumpcap -D >/dev/null 2>&1 || true
capture_start "$LAC_NS" "$LAC_IF" capture-a
write_freeradius_conf "$RADDB"
write_radiusclient_conf "$RADCLI"
cp -a "$RADDB/radiusd.conf" "$RADDB/users" "$RADCLI/radiusclient.conf" "$RESULT_DIR/" 2>/dev/null || true

section "FreeRADIUS in $LNS_NS"
log "starting $FREERADIUS -X -d $RADDB (log: $RADIUS_LOG)"
_start_bg "$LNS_NS" "$RADIUS_LOG" "$FREERADIUS" -X -d "$RADDB"
radius_pid=$LAST_PID
_check_alive "$radius_pid" "freeradius" "$RADIUS_LOG"
wait_for "grep -q 'Ready to process requests' '$RADIUS_LOG' || ! kill -0 $radius_pid" 60 "FreeRADIUS ready"
_check_alive "$radius_pid" "freeradius" "$RADIUS_LOG"

write_conf "$WORK/l2tpd-lns.toml" lns ""
write_conf "$WORK/l2tpd-lac.toml" lac "$RADIUS_PASSWORD"
write_conf "$WORK/l2tpd-lac-bad.toml" lac "wrong-$RADIUS_PASSWORD"
# The configuration check accepts the RADIUS keys (the radiusclient file exists).
nsx "$LNS_NS" "$L2TPD" --config "$WORK/l2tpd-lns.toml" check >"$RESULT_DIR/l2tpd-lns.check.toml" 2>&1 ||
    { cat "$RESULT_DIR/l2tpd-lns.check.toml"; fail "l2tpd check refused the LNS configuration"; }
grep -q '^radius = true' "$RESULT_DIR/l2tpd-lns.check.toml" || fail "l2tpd check does not show radius = true"

section "(a) the known user: CHAP against RADIUS, Framed-IP-Address"
start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
lns_pid=$LAST_PID
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
lac_pid=$LAST_PID
wait_ppp_up "$LAC_NS" ppp0 "$RADIUS_FRAMED_IP" "$LNS_PPP_IP" 60
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$RADIUS_FRAMED_IP" 20
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$RADIUS_FRAMED_IP"
got=$(nsx "$LAC_NS" ip -o -4 addr show dev ppp0 | awk '{ print $4 }')
[[ $got == "$RADIUS_FRAMED_IP" ]] || fail "the LAC's ppp0 has $got, not the Framed-IP-Address $RADIUS_FRAMED_IP"
log "ok: the LAC's ppp0 has exactly the Framed-IP-Address $got"
lns_pppd=$(pppd_pids_in "$LNS_NS")
[[ -n $lns_pppd ]] || fail "no pppd in $LNS_NS"
cmdline=$(tr '\0' ' ' </proc/"$lns_pppd"/cmdline)
log "LNS pppd: $cmdline"
for want in "auth require-chap" "plugin radius.so radius-config-file $RADCLI/radiusclient.conf avpair $RADIUS_AVPAIR plugin radattr.so"; do
    [[ $cmdline == *"$want"* ]] || fail "the LNS's pppd command line lacks '$want'"
done
grep -q "Sent Access-Accept" "$RADIUS_LOG" || fail "FreeRADIUS sent no Access-Accept"
grep -q "CHAP-Password" "$RADIUS_LOG" || fail "the Access-Request carried no CHAP-Password (not CHAP?)"
grep -q "Connect-Info = \"${RADIUS_AVPAIR#*=}\"" "$RADIUS_LOG" || fail "the radius_avpairs entry did not reach FreeRADIUS"
log "ok: FreeRADIUS accepted $RADIUS_USER (CHAP) and saw the radius_avpairs entry"
wait_for "grep -q 'Framed-IP-Address $RADIUS_FRAMED_IP' /var/run/radattr.ppp0" 10 \
    "radattr.so wrote the Access-Accept's attributes to /var/run/radattr.ppp0"
CLEANUP_PATHS+=(/var/run/radattr.ppp0)

section "(c) accounting Start, then Stop when the LAC ends the call"
wait_for "test \"\$(detail_records Start)\" -ge 1" 20 "an accounting Start record for $RADIUS_USER with $RADIUS_FRAMED_IP"
log "SIGTERM to the LAC l2tpd: CDN and StopCCN, the LNS stops its pppd"
kill -TERM "$lac_pid"
wait_for "! kill -0 $lac_pid" 20 "the LAC l2tpd exited"
wait_for "test -z \"\$(pppd_pids_in $LNS_NS)\"" 20 "no pppd left in $LNS_NS"
wait_for "test \"\$(detail_records Stop)\" -ge 1" 20 "an accounting Stop record for $RADIUS_USER with $RADIUS_FRAMED_IP"
cp "$DETAIL" "$RESULT_DIR/radacct-detail" 2>/dev/null || true
[[ $(detail_records Start) == 1 && $(detail_records Stop) == 1 ]] ||
    fail "expected one Start and one Stop record, found $(detail_records Start) and $(detail_records Stop)"
wait_for "test -z \"\$(ip netns exec $LNS_NS ip l2tp show tunnel)\"" 15 "the LNS removed its kernel tunnel"
capture_stop

section "(b) a wrong password: Access-Reject, CDN with the cause"
capture_start "$LAC_NS" "$LAC_IF" capture-b
rejects_before=$(grep -c "Sent Access-Reject" "$RADIUS_LOG" || true)
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac-bad.toml" "$RESULT_DIR/l2tpd-lac-bad.log"
lac_pid=$LAST_PID
wait_for "test \"\$(grep -c 'Sent Access-Reject' '$RADIUS_LOG')\" -gt $rejects_before" 60 "FreeRADIUS rejects the wrong password"
# Both pppds end on their own; whichever l2tpd sees its pppd exit first
# clears the call (the other's pppd may then be stopped with SIGTERM).
wait_for "grep -q 'pppd exited with code 11' '$RESULT_DIR/l2tpd-lns.log' || grep -q 'pppd exited with code 19' '$RESULT_DIR/l2tpd-lac-bad.log'" 30 \
    "a pppd exits 11 on the LNS (the peer failed to authenticate itself) or 19 on the LAC (we failed to authenticate ourselves)"
assert_nothing_left_sessions() {
    local ns
    for ns in "$LAC_NS" "$LNS_NS"; do
        wait_for "test -z \"\$(l2tp_sessions $ns)\"" 15 "no kernel session in $ns"
        wait_for "test -z \"\$(pppd_pids_in $ns)\"" 10 "no pppd in $ns"
    done
}
assert_nothing_left_sessions
if nsx "$LAC_NS" ip -o -4 addr show 2>/dev/null | grep -q ' ppp'; then
    fail "a ppp interface with an address in $LAC_NS after the wrong password"
fi
assert_alive "$lac_pid" "LAC l2tpd"
assert_alive "$lns_pid" "LNS l2tpd"
[[ $(detail_records Start) == 1 ]] || fail "a rejected user got an accounting Start record"
capture_stop
# pppd exit 11 (LNS: the peer failed to authenticate itself) or 19 (LAC: we
# failed to authenticate ourselves): Result Code 2, Error Code 6 (generic
# vendor-specific error) and pppd's reason as the message.
assert_ctl "$CAPTURE_FILE" CDN "" 'result == 2 && error == 6 && errmsg ~ /pppd exited with code (11|19) .*authenticate/' \
    "Result Code 2, Error Code 6 and pppd's authentication failure as the message"

section "FreeRADIUS stopped"
kill -TERM "$radius_pid"
wait_for "! kill -0 $radius_pid" 10 "FreeRADIUS exited"
