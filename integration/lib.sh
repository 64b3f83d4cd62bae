# shellcheck shell=bash
# Scenario library for the VM integration tests. Sourced by every
# integration/scenarios/NN-name.sh and by integration/demo.sh.
#
# Runs inside the VM booted by `cargo xtask integration` (see
# /work/shared/docs/kernel-vm.md): the host's / is mounted read-only, system
# directories such as /var/tmp are writable overlays, and $RESULT_DIR lives in
# the --rwdir that is written back to the host.
#
# Topology (always the same, RFC 5737 addresses only):
#
#   netns l2tp-lac  veth-lac 192.0.2.1/24  <---->  192.0.2.2/24 veth-lns  netns l2tp-lns
#   PPP: LNS side 198.51.100.1, LAC side from 198.51.100.10-198.51.100.20
#
# Conventions:
#   - every wait is bounded (wait_for) and prints what it saw on timeout;
#   - `fail MSG` ends the scenario; the EXIT trap then dumps daemon logs,
#     `ip l2tp show tunnel|session`, `ip -d addr` of each namespace and pppd
#     processes, kills everything this scenario started and deletes the
#     namespaces.

set -euo pipefail

HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HARNESS_DIR/.." && pwd)
SCENARIO=$(basename "$0" .sh)

# The daemon under test (built on the host; the guest sees the host FS).
L2TPD=${L2TPD_BIN:-$REPO_ROOT/target/debug/l2tpd}
L2TPD_LOG=${L2TPD_LOG:-debug}
XL2TPD=${XL2TPD:-/usr/sbin/xl2tpd}
[[ -x $XL2TPD ]] || XL2TPD=$(command -v xl2tpd || echo "$XL2TPD")
PPPD=${PPPD:-/usr/sbin/pppd}
[[ -x $PPPD ]] || PPPD=$(command -v pppd || echo "$PPPD")

# Per-scenario results (logs, captures) are written back to the host; the
# scratch dir (configs, fifos, pid files, raw captures) is guest-local.
RESULT_DIR=${RESULT_DIR:-/var/tmp/l2tp-results/$SCENARIO}
mkdir -p "$RESULT_DIR"
WORK=$(mktemp -d "/var/tmp/l2tp-$SCENARIO.XXXXXX")
KEEP_ARTIFACTS=${L2TP_KEEP:-0}

LAC_NS=l2tp-lac
LNS_NS=l2tp-lns
LAC_IF=veth-lac
LNS_IF=veth-lns
LAC_IP=192.0.2.1
LNS_IP=192.0.2.2
LNS_PPP_IP=198.51.100.1
PPP_POOL_START=198.51.100.10
PPP_POOL_END=198.51.100.20
PPP_POOL="$PPP_POOL_START-$PPP_POOL_END"

BG_PIDS=()       # every background process this scenario started
DAEMON_LOGS=()   # log files shown by dump_state
NAMESPACES=()    # namespaces to delete on exit
CAPTURE_PID=""
CAPTURE_RAW=""
CAPTURE_LOG=""
CAPTURE_FILE=""  # set by capture_stop: the pcap inside $RESULT_DIR
LAST_PID=""      # set by start_l2tpd / start_xl2tpd
_T0=$EPOCHREALTIME
_STATE_DUMPED=0
_WAITING_FOR=""

# ---------------------------------------------------------------------------
# Output helpers

_elapsed() { awk -v a="$_T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%6.1f", b - a }'; }

log() { printf '[%ss] %s\n' "$(_elapsed)" "$*"; }

section() { printf '\n===== %s =====\n' "$*"; }

# indent: prefix stdin's lines with four spaces.
indent() { sed 's/^/    /'; }

# fail MSG: end the scenario with a clear reason (the EXIT trap dumps state).
fail() {
    printf '[%ss] FAIL: %s\n' "$(_elapsed)" "$*"
    exit 1
}

# nsx NS CMD...: run CMD inside namespace NS.
nsx() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# ---------------------------------------------------------------------------
# Bounded waiting

# wait_for CMD TIMEOUT [DESCRIPTION]: poll the shell command CMD (a string,
# eval'ed in a subshell, so lib.sh functions work; without errexit and
# pipefail, so `cmd | grep -q` is safe) every 0.2 s until it succeeds; after
# TIMEOUT seconds print the last output of CMD and fail the scenario.
# The daemon reports the PPP link it found through rtnetlink:
# assert_ppp_link_logged LOG IFNAME LOCAL PEER
assert_ppp_link_logged() {
    local logf=$1 ifname=$2 local_ip=$3 peer_ip=$4
    wait_for "grep -q 'ppp link up.*ifname=$ifname.*$local_ip peer $peer_ip/32' '$logf'" 10 \
        "l2tpd logs 'ppp link up' for $ifname with $local_ip peer $peer_ip (rtnetlink)"
}

wait_for() {
    local cmd=$1 timeout=$2 desc=${3:-$1}
    local deadline out
    deadline=$(awk -v t="$EPOCHREALTIME" -v d="$timeout" 'BEGIN { printf "%.3f", t + d }')
    _WAITING_FOR=$desc
    while :; do
        if out=$(_try "$cmd" 2>&1); then
            log "ok: $desc"
            _WAITING_FOR=""
            return 0
        fi
        if awk -v t="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(t >= d) }'; then
            printf '[%ss] timed out after %ss waiting for: %s\n' "$(_elapsed)" "$timeout" "$desc"
            printf '  command: %s\n  last output:\n' "$cmd"
            printf '%s\n' "${out:-<none>}" | sed 's/^/    | /'
            fail "timeout ($timeout s): $desc"
        fi
        sleep 0.2
    done
}

_try() (
    set +e +u
    set +o pipefail
    eval "$1"
)

# poll CMD TIMEOUT: like wait_for but returns 1 on timeout instead of failing.
poll() {
    local cmd=$1 timeout=$2 deadline
    deadline=$(awk -v t="$EPOCHREALTIME" -v d="$timeout" 'BEGIN { printf "%.3f", t + d }')
    until _try "$cmd" >/dev/null 2>&1; do
        awk -v t="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(t >= d) }' && return 1
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------
# Topology

# setup_netns: the two namespaces, the veth pair between them, checked with ping.
setup_netns() {
    local ns
    for ns in "$LAC_NS" "$LNS_NS"; do
        if ip netns list | grep -qw "$ns"; then
            ip netns del "$ns"
        fi
        ip netns add "$ns"
        NAMESPACES+=("$ns")
        nsx "$ns" ip link set lo up
    done
    ip link add "$LAC_IF" netns "$LAC_NS" type veth peer name "$LNS_IF" netns "$LNS_NS"
    nsx "$LAC_NS" ip addr add "$LAC_IP/24" dev "$LAC_IF"
    nsx "$LNS_NS" ip addr add "$LNS_IP/24" dev "$LNS_IF"
    nsx "$LAC_NS" ip link set "$LAC_IF" up
    nsx "$LNS_NS" ip link set "$LNS_IF" up
    wait_for "ip netns exec $LAC_NS ping -c1 -W1 $LNS_IP" 10 "veth link $LAC_IP -> $LNS_IP"
    log "namespaces $LAC_NS ($LAC_IP) and $LNS_NS ($LNS_IP) ready"
}

# ---------------------------------------------------------------------------
# Daemons

# _start_bg NS LOG CMD...: start CMD in NS in the background, output to LOG.
_start_bg() {
    local ns=$1 logf=$2
    shift 2
    ip netns exec "$ns" "$@" >"$logf" 2>&1 </dev/null &
    LAST_PID=$!
    BG_PIDS+=("$LAST_PID")
    DAEMON_LOGS+=("$logf")
}

# _check_alive PID NAME LOG: fail at once when a daemon died on startup.
_check_alive() {
    local pid=$1 name=$2 logf=$3
    sleep 0.5
    if ! kill -0 "$pid" 2>/dev/null; then
        local rc=0
        wait "$pid" || rc=$?
        printf '%s exited at startup with status %s; its log (%s):\n' "$name" "$rc" "$logf"
        sed 's/^/    | /' "$logf"
        fail "$name did not start"
    fi
}

# start_l2tpd NS CONFIG LOG: run the daemon under test in the foreground
# (logs to stderr) in NS; its pid is left in LAST_PID.
start_l2tpd() {
    local ns=$1 conf=$2 logf=$3
    [[ -x $L2TPD ]] || fail "l2tpd binary not found at $L2TPD (run: cargo build --workspace --bins)"
    cp "$conf" "$RESULT_DIR/" 2>/dev/null || true
    log "starting l2tpd in $ns: $L2TPD --config $conf (log: $logf)"
    _start_bg "$ns" "$logf" env L2TPD_LOG="$L2TPD_LOG" NO_COLOR=1 RUST_BACKTRACE=1 "$L2TPD" --config "$conf"
    _check_alive "$LAST_PID" "l2tpd ($ns)" "$logf"
}

# start_xl2tpd NS NAME CONF: run xl2tpd in the foreground in NS with its own
# pid file and control fifo ($WORK/NAME.pid, $WORK/NAME-control); log in
# $RESULT_DIR/NAME.log; pid in LAST_PID.
start_xl2tpd() {
    local ns=$1 name=$2 conf=$3
    local logf=$RESULT_DIR/$name.log
    cp "$conf" "$RESULT_DIR/" 2>/dev/null || true
    log "starting xl2tpd '$name' in $ns (log: $logf)"
    _start_bg "$ns" "$logf" "$XL2TPD" -D -c "$conf" -p "$WORK/$name.pid" -C "$WORK/$name-control"
    local pid=$LAST_PID
    _check_alive "$pid" "xl2tpd $name ($ns)" "$logf"
    wait_for "test -p $WORK/$name-control" 10 "xl2tpd $name control fifo"
    LAST_PID=$pid
}

# xl2tpd_control NAME CMD: write a command ("c lac1", "d lac1") to an
# xl2tpd control fifo, bounded so a dead daemon cannot hang the scenario.
xl2tpd_control() {
    local name=$1 cmd=$2
    log "xl2tpd $name control: $cmd"
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    timeout 5 bash -c 'echo "$1" > "$2"' _ "$cmd" "$WORK/$name-control" ||
        fail "could not write '$cmd' to xl2tpd $name control fifo"
}

# write_ppp_options FILE ROLE(lac|lns) [LOGFILE]: pppd options file.
write_ppp_options() {
    local file=$1 role=$2 logfile=${3:-$RESULT_DIR/pppd-$2.log}
    {
        echo "noauth"
        echo "nodefaultroute"
        echo "noccp"
        echo "mtu 1400"
        echo "mru 1400"
        echo "lcp-echo-interval 5"
        echo "lcp-echo-failure 3"
        echo "debug"
        echo "logfile $logfile"
        if [[ $role == lac ]]; then
            echo "ipcp-accept-local"
            echo "ipcp-accept-remote"
        fi
    } >"$file"
    DAEMON_LOGS+=("$logfile")
}

# write_xl2tpd_lns_conf FILE: the verified xl2tpd LNS on $LNS_IP.
write_xl2tpd_lns_conf() {
    local file=$1
    echo "* * l2tp-integration-secret" >"$WORK/l2tp-secrets"
    chmod 600 "$WORK/l2tp-secrets"
    write_ppp_options "$WORK/options.xl2tpd-lns" lns
    cat >"$file" <<EOF
[global]
listen-addr = $LNS_IP
port = 1701
auth file = $WORK/l2tp-secrets
access control = no
[lns default]
ip range = $PPP_POOL
local ip = $LNS_PPP_IP
require authentication = no
refuse pap = yes
refuse chap = yes
pppoptfile = $WORK/options.xl2tpd-lns
length bit = yes
EOF
}

# write_xl2tpd_lac_conf FILE: the verified xl2tpd LAC on $LAC_IP, call "lac1".
write_xl2tpd_lac_conf() {
    local file=$1
    echo "* * l2tp-integration-secret" >"$WORK/l2tp-secrets"
    chmod 600 "$WORK/l2tp-secrets"
    write_ppp_options "$WORK/options.xl2tpd-lac" lac
    cat >"$file" <<EOF
[global]
listen-addr = $LAC_IP
port = 1701
auth file = $WORK/l2tp-secrets
access control = no
[lac lac1]
lns = $LNS_IP
require authentication = no
refuse pap = yes
refuse chap = yes
pppoptfile = $WORK/options.xl2tpd-lac
length bit = yes
EOF
}

# write_l2tpd_conf FILE ROLE(lac|lns) [OPTIONS]: an l2tpd config (TOML).
#   --sessions "s1 s2"   LAC: sessions placed in tunnel "lac1" (default "s1")
#   --pool               LNS: hand out peer addresses from ip_pool
#                        ($PPP_POOL) instead of remote_ipaddr ($PPP_POOL_START)
#   --timers "TOML"      lines replacing the [tunnel_profile.default] timers
# The LAC dials tunnel "lac1" to $LNS_IP; the LNS accepts incoming tunnels.
write_l2tpd_conf() {
    local file=$1 role=$2
    shift 2
    local sessions="s1" pool=0 listen deny ppp_log sess
    local timers='hello_timeout = "60s"
retry_timeout = "1s"
retry_max_timeout = "8s"
max_retries = 5'
    while (($#)); do
        case $1 in
        --sessions) sessions=$2; shift 2 ;;
        --pool) pool=1; shift ;;
        --timers) timers=$2; shift 2 ;;
        *) fail "write_l2tpd_conf: unknown option $1" ;;
        esac
    done
    if [[ $role == lac ]]; then listen=$LAC_IP deny=true; else listen=$LNS_IP deny=false; fi
    ppp_log=$RESULT_DIR/pppd-l2tpd-$role.log
    DAEMON_LOGS+=("$ppp_log")
    cat >"$file" <<EOF
# l2tpd $role config for integration scenario $SCENARIO
[system]
listen_addr = "$listen"
udp_port = 1701
data_plane = "netlink"
pppd_path = "$PPPD"
deny_remote_tunnel_creates = $deny

[tunnel_profile.default]
$timers

[ppp_profile.default]
EOF
    if [[ $role == lns ]]; then
        echo "local_ipaddr = \"$LNS_PPP_IP\"" >>"$file"
        if ((pool)); then
            echo "ip_pool = \"$PPP_POOL\"" >>"$file"
        else
            echo "remote_ipaddr = \"$PPP_POOL_START\"" >>"$file"
        fi
        cat >>"$file" <<EOF
pppd_options = ["noauth", "nodefaultroute", "noccp", "mtu", "1400", "mru", "1400", "debug"]
EOF
    else
        cat >>"$file" <<EOF
pppd_options = ["noauth", "nodefaultroute", "noccp", "mtu", "1400", "mru", "1400", "ipcp-accept-local", "ipcp-accept-remote", "debug"]

[tunnel.lac1]
peer_addr = "$LNS_IP"
peer_udp_port = 1701
EOF
        for sess in $sessions; do
            printf '\n[tunnel.lac1.session.%s]\n' "$sess" >>"$file"
        done
    fi
}

# ---------------------------------------------------------------------------
# State queries

# pppd_pids_in NS: pids of pppd processes whose network namespace is NS.
pppd_pids_in() {
    local ns=$1 p
    for p in $(pgrep -x pppd || true); do
        if [[ $(ip netns identify "$p" 2>/dev/null) == "$ns" ]]; then
            echo "$p"
        fi
    done
}

# ppp_ifaces NS: names of ppp interfaces that are up with an IPv4 address.
ppp_ifaces() {
    nsx "$1" ip -o -4 addr show 2>/dev/null | awk '$2 ~ /^ppp/ { print $2 }' | sort -u
}

# ppp_addrs NS IFACE: "LOCAL PEER" IPv4 addresses of a ppp interface.
ppp_addrs() {
    nsx "$1" ip -o -4 addr show dev "$2" 2>/dev/null |
        awk '{ for (i = 1; i <= NF; i++) if ($i == "inet") l = $(i+1); else if ($i == "peer") p = $(i+1) }
             END { sub("/.*", "", l); sub("/.*", "", p); if (l != "") print l, p }'
}

# l2tp_tunnels NS: one line per kernel tunnel in NS, from `ip l2tp show
# tunnel`: "TUNNEL_ID PEER_TUNNEL_ID LOCAL_ADDR PEER_ADDR SPORT DPORT".
l2tp_tunnels() {
    nsx "$1" ip l2tp show tunnel 2>/dev/null | awk '
        function flush() { if (t != "") print t, p, la, pa, sp, dp; t = p = la = pa = sp = dp = "" }
        /^Tunnel/ { flush(); t = $2; sub(",", "", t) }
        /^ *From/ { la = $2; pa = $4 }
        /^ *Peer tunnel/ { p = $3 }
        /^ *UDP source/ { split($NF, a, "/"); sp = a[1]; dp = a[2] }
        END { flush() }'
}

# l2tp_sessions NS: one line per kernel session in NS, from `ip l2tp show
# session`: "SESSION_ID TUNNEL_ID PEER_SESSION_ID PEER_TUNNEL_ID". Session 0
# is left out: it is the tunnel management socket of the legacy PPPoL2TP API
# (xl2tpd connects one per tunnel), not a session.
l2tp_sessions() {
    nsx "$1" ip l2tp show session 2>/dev/null | awk '
        /^Session/ { s = $2; t = $5 }
        /^ *Peer session/ { ps = $3; sub(",", "", ps); if (s != 0) print s, t, ps, $5 }'
}

# l2tp_tunnel_ids NS: kernel tunnel ids in NS.
l2tp_tunnel_ids() { l2tp_tunnels "$1" | awk '{ print $1 }'; }

# l2tp_session_count NS
l2tp_session_count() { l2tp_sessions "$1" | wc -l; }

# assert_l2tp_mirror NTUNNELS NSESSIONS: the kernels of both namespaces hold
# NTUNNELS tunnels and NSESSIONS sessions, and each side's ids are the
# other's peer ids (LAC tunnel T peer P <=> LNS tunnel P peer T, likewise for
# sessions), between 192.0.2.1:1701 and 192.0.2.2:1701. Sets LAC_TID and
# LNS_TID (of the first tunnel).
assert_l2tp_mirror() {
    local want_t=$1 want_s=$2 lac_t lns_t lac_s lns_s
    lac_t=$(l2tp_tunnels "$LAC_NS")
    lns_t=$(l2tp_tunnels "$LNS_NS")
    lac_s=$(l2tp_sessions "$LAC_NS")
    lns_s=$(l2tp_sessions "$LNS_NS")
    _show_l2tp() {
        echo "LAC tunnels (id peer local peer sport dport):"; indent <<<"$lac_t"
        echo "LNS tunnels:"; indent <<<"$lns_t"
        echo "LAC sessions (id tunnel peer_session peer_tunnel):"; indent <<<"$lac_s"
        echo "LNS sessions:"; indent <<<"$lns_s"
    }
    local n
    for n in "$(grep -c . <<<"$lac_t" || true)" "$(grep -c . <<<"$lns_t" || true)"; do
        ((n == want_t)) || { _show_l2tp; fail "expected $want_t kernel tunnel(s) on each side"; }
    done
    for n in "$(grep -c . <<<"$lac_s" || true)" "$(grep -c . <<<"$lns_s" || true)"; do
        ((n == want_s)) || { _show_l2tp; fail "expected $want_s kernel session(s) on each side"; }
    done
    while read -r t p la pa sp dp; do
        [[ -n $t ]] || continue
        grep -q "^$p $t $LNS_IP $LAC_IP 1701 1701\$" <<<"$lns_t" || {
            _show_l2tp
            fail "LAC tunnel $t (peer $p) has no mirror 'tunnel $p peer $t $LNS_IP->$LAC_IP 1701/1701' in $LNS_NS"
        }
        [[ "$la $pa $sp $dp" == "$LAC_IP $LNS_IP 1701 1701" ]] || {
            _show_l2tp
            fail "LAC tunnel $t is $la:$sp -> $pa:$dp, expected $LAC_IP:1701 -> $LNS_IP:1701"
        }
    done <<<"$lac_t"
    while read -r s t ps pt; do
        [[ -n $s ]] || continue
        grep -q "^$ps $pt $s $t\$" <<<"$lns_s" || {
            _show_l2tp
            fail "LAC session $s in tunnel $t (peer $ps/$pt) has no mirror in $LNS_NS"
        }
    done <<<"$lac_s"
    LAC_TID=$(head -n1 <<<"$lac_t" | awk '{ print $1 }')
    LNS_TID=$(head -n1 <<<"$lac_t" | awk '{ print $2 }')
    log "ok: kernel state mirrors: $want_t tunnel(s), $want_s session(s); LAC tunnel $LAC_TID <-> LNS tunnel $LNS_TID"
}

# l2tpd_logged_tunnel LOG: "TUNNEL_ID PEER_TUNNEL_ID" from the daemon's first
# log line containing "tunnel up" (fields tunnel_id=N peer_tunnel_id=M).
l2tpd_logged_tunnel() {
    local line t p
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -m1 'tunnel up') || return 1
    t=$(grep -oE '(^|[^_[:alnum:]])tunnel_id=[^0-9 ]*[0-9]+' <<<"$line" | head -n1 | grep -oE '[0-9]+$')
    p=$(grep -oE 'peer_tunnel_id=[^0-9 ]*[0-9]+' <<<"$line" | head -n1 | grep -oE '[0-9]+$')
    [[ -n $t && -n $p ]] || return 1
    echo "$t $p"
}

# assert_logged_tunnel LOG TUNNEL_ID PEER_TUNNEL_ID: l2tpd logged "tunnel up"
# with exactly these ids (the kernel's, e.g. from assert_l2tp_mirror).
assert_logged_tunnel() {
    local logf=$1 ids
    wait_for "grep -q 'tunnel up' $logf" 10 "'tunnel up' logged in $(basename "$logf")"
    ids=$(l2tpd_logged_tunnel "$logf") ||
        fail "no 'tunnel_id=N peer_tunnel_id=M' in the 'tunnel up' line of $logf: $(grep -m1 'tunnel up' "$logf")"
    [[ $ids == "$2 $3" ]] ||
        fail "$(basename "$logf") logged tunnel_id/peer_tunnel_id '$ids', the kernel has '$2 $3'"
    log "ok: $(basename "$logf") logged tunnel up with tunnel_id=$2 peer_tunnel_id=$3"
}

# ---------------------------------------------------------------------------
# Captures

# capture_start NS IFACE [NAME]: dumpcap on IFACE in NS (udp port 1701),
# written to $WORK (guest tmpfs) until capture_stop copies it to $RESULT_DIR.
capture_start() {
    local ns=$1 iface=$2 name=${3:-capture-$1}
    CAPTURE_RAW=$WORK/$name.pcapng
    CAPTURE_LOG=$WORK/$name.dumpcap.log
    ip netns exec "$ns" dumpcap -q -i "$iface" -f "udp port 1701" -w "$CAPTURE_RAW" \
        >"$CAPTURE_LOG" 2>&1 </dev/null &
    CAPTURE_PID=$!
    BG_PIDS+=("$CAPTURE_PID")
    wait_for "grep -q 'Capturing on' $CAPTURE_LOG" 15 "dumpcap capturing on $ns/$iface"
}

# capture_stop: stop dumpcap, copy the capture to $RESULT_DIR, set CAPTURE_FILE.
capture_stop() {
    [[ -n $CAPTURE_PID ]] || fail "capture_stop without capture_start"
    sleep 0.5 # let the last packets reach the file
    kill -INT "$CAPTURE_PID" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$CAPTURE_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$CAPTURE_PID" 2>/dev/null || true
    wait "$CAPTURE_PID" 2>/dev/null || true
    CAPTURE_PID=""
    [[ -s $CAPTURE_RAW ]] || {
        sed 's/^/    | /' "$CAPTURE_LOG"
        fail "dumpcap wrote no capture file"
    }
    CAPTURE_FILE=$RESULT_DIR/$(basename "$CAPTURE_RAW")
    cp "$CAPTURE_RAW" "$CAPTURE_FILE"
    log "capture saved: $CAPTURE_FILE"
}

# L2TP control message names (RFC 2661 §3.2) -> Message Type AVP values.
declare -A L2TP_MSGTYPE=(
    [SCCRQ]=1 [SCCRP]=2 [SCCCN]=3 [StopCCN]=4 [HELLO]=6
    [OCRQ]=7 [OCRP]=8 [OCCN]=9 [ICRQ]=10 [ICRP]=11 [ICCN]=12
    [CDN]=14 [WEN]=15 [SLI]=16
)

# _tshark ARGS...: tshark using the tmpfs copy of its libraries that
# run-in-vm.sh prepared (each start from the 9p root costs 10-30 s under TCG).
_tshark() {
    if [[ -z ${L2TP_TSHARK_LIBDIR:-} ]]; then
        prepare_tshark_libs
    fi
    LD_LIBRARY_PATH=$L2TP_TSHARK_LIBDIR tshark "$@"
}

# prepare_tshark_libs: copy tshark's big libraries to tmpfs once per boot.
prepare_tshark_libs() {
    L2TP_TSHARK_LIBDIR=/var/tmp/l2tp-tshark-libs
    if [[ ! -e $L2TP_TSHARK_LIBDIR/.complete ]]; then
        mkdir -p "$L2TP_TSHARK_LIBDIR"
        local lib
        for lib in $(ldd "$(command -v tshark)" | awk '/libwireshark|libwiretap|libwsutil|libicudata/ { print $3 }'); do
            cp -L "$lib" "$L2TP_TSHARK_LIBDIR/"
        done
        touch "$L2TP_TSHARK_LIBDIR/.complete"
    fi
    export L2TP_TSHARK_LIBDIR
}

# tshark_msgtypes PCAP: the L2TP control messages of a capture in order, one
# per line: "NAME SRC DST TUNNEL SESSION NS NR" (NAME is ZLB for an empty control
# message). Decoded once per capture (tshark is slow in the VM) and kept next
# to it as PCAP.l2tp.txt.
tshark_msgtypes() {
    local pcap=$1 txt=$1.l2tp.txt
    if [[ ! -s $txt || $txt -ot $pcap ]]; then
        _tshark -n -r "$pcap" -Y "l2tp.type == 1" -T fields -E occurrence=f \
            -e l2tp.avp.message_type -e ip.src -e ip.dst -e l2tp.tunnel -e l2tp.session \
            -e l2tp.Ns -e l2tp.Nr 2>"$WORK/tshark.err" |
            awk -F'\t' -v names="$(for n in "${!L2TP_MSGTYPE[@]}"; do printf '%s=%s ' "${L2TP_MSGTYPE[$n]}" "$n"; done)" '
                BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); name[kv[1]] = kv[2] } }
                { t = $1 == "" ? "ZLB" : (($1 in name) ? name[$1] : "type" $1); print t, $2, $3, $4, $5, $6, $7 }' >"$txt" ||
            fail "tshark could not read $pcap: $(cat "$WORK/tshark.err")"
    fi
    cat "$txt"
}

# assert_tshark_msgtypes PCAP "SCCRQ SCCRP ..." [FROM_ADDR]: the listed
# control messages appear in the capture in this order (others may come in
# between); with FROM_ADDR only messages sent from that IPv4 address count.
assert_tshark_msgtypes() {
    local pcap=$1 want=$2 from=${3:-}
    local seen w idx=0
    local -a want_arr got_arr
    read -r -a want_arr <<<"$want"
    for w in "${want_arr[@]}"; do
        [[ -n ${L2TP_MSGTYPE[$w]:-} ]] || fail "assert_tshark_msgtypes: unknown message name '$w'"
    done
    seen=$(tshark_msgtypes "$pcap")
    mapfile -t got_arr < <(awk -v from="$from" 'from == "" || $2 == from { print $1 }' <<<"$seen")
    for w in "${got_arr[@]}"; do
        if ((idx < ${#want_arr[@]})) && [[ $w == "${want_arr[$idx]}" ]]; then
            idx=$((idx + 1))
        fi
    done
    if ((idx < ${#want_arr[@]})); then
        echo "expected control messages in this order${from:+ from $from}: $want"
        echo "missing from '${want_arr[$idx]}' on; $pcap has (name src dst tunnel session Ns Nr):"
        printf '%s\n' "${seen:-<no L2TP control messages>}" | sed 's/^/    | /'
        fail "capture lacks expected L2TP messages${from:+ from $from}: $want"
    fi
    log "ok: capture has $want${from:+ (from $from)}"
}

# assert_msg_count PCAP NAME COUNT [FROM_ADDR]: the capture holds exactly
# COUNT distinct NAME messages (retransmissions, same tunnel and Ns, count once).
assert_msg_count() {
    local pcap=$1 name=$2 want=$3 from=${4:-} got
    got=$(tshark_msgtypes "$pcap" | awk -v n="$name" -v from="$from" \
        '$1 == n && (from == "" || $2 == from) && !seen[$4 " " $6]++' | wc -l)
    if ((got != want)); then
        tshark_msgtypes "$pcap" | sed 's/^/    | /'
        fail "expected $want $name message(s)${from:+ from $from} in the capture, found $got"
    fi
    log "ok: capture has $want $name${from:+ from $from}"
}

# ---------------------------------------------------------------------------
# Checks used by several scenarios

# ping_ok NS ADDR: ping across; fail with the ping output otherwise.
ping_ok() {
    local ns=$1 addr=$2 out
    if out=$(nsx "$ns" ping -c 3 -i 0.3 -W 2 "$addr" 2>&1); then
        log "ok: ping $addr from $ns: $(grep -o '[0-9]* received' <<<"$out") of 3"
    else
        printf '%s\n' "$out" | sed 's/^/    | /'
        fail "ping $addr from $ns failed"
    fi
}

# wait_ppp_up NS IFACE LOCAL PEER TIMEOUT: IFACE in NS has LOCAL peer PEER
# (either may be "*" for any address).
wait_ppp_up() {
    local ns=$1 ifc=$2 lo=$3 pe=$4 timeout=${5:-30}
    local lre=${lo//./\\.} pre=${pe//./\\.}
    [[ $lo == "*" ]] && lre='[0-9.]+'
    [[ $pe == "*" ]] && pre='[0-9.]+'
    wait_for "ip netns exec $ns ip -o -4 addr show dev $ifc | grep -Eq 'inet $lre peer $pre/'" "$timeout" \
        "$ns: $ifc up with local $lo peer $pe"
}

# ---------------------------------------------------------------------------
# Diagnostics and cleanup

dump_state() {
    local ns f p
    section "STATE DUMP ($SCENARIO)"
    for f in "${DAEMON_LOGS[@]}"; do
        [[ -e $f ]] || continue
        section "log $f (last 200 lines)"
        tail -n 200 "$f"
    done
    for ns in "${NAMESPACES[@]}"; do
        ip netns list | grep -qw "$ns" || continue
        section "namespace $ns: ip l2tp show tunnel"
        nsx "$ns" ip l2tp show tunnel 2>&1 || true
        section "namespace $ns: ip l2tp show session"
        nsx "$ns" ip l2tp show session 2>&1 || true
        section "namespace $ns: ip -d addr"
        nsx "$ns" ip -d addr 2>&1 || true
        section "namespace $ns: ss -uanp"
        nsx "$ns" ss -uanp 2>&1 || true
    done
    section "pppd / l2tpd / xl2tpd processes (pid netns cmdline)"
    for p in $(pgrep -x pppd) $(pgrep -x xl2tpd) $(pgrep -x l2tpd); do
        printf '%s %s %s\n' "$p" "$(ip netns identify "$p" 2>/dev/null || echo '?')" \
            "$(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)"
    done
    echo
}

_kill_all() {
    local p ns alive
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 30); do
        alive=0
        for p in "${BG_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    # Anything still running inside our namespaces (pppd forked by a daemon).
    for ns in "${NAMESPACES[@]}"; do
        ip netns list | grep -qw "$ns" || continue
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    done
    wait 2>/dev/null || true
}

_on_exit() {
    local rc=$?
    # `timeout` signals the whole process group, possibly more than once:
    # ignore further signals so the state dump and cleanup run to the end.
    trap - EXIT
    trap '' INT TERM
    set +e
    if ((rc != 0)) && ((!_STATE_DUMPED)); then
        _STATE_DUMPED=1
        dump_state
    fi
    _kill_all
    local ns
    for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
    if ((rc != 0)) || [[ $KEEP_ARTIFACTS == 1 ]]; then
        mkdir -p "$RESULT_DIR/work" && cp -a "$WORK/." "$RESULT_DIR/work/" 2>/dev/null
    fi
    rm -rf "$WORK"
    if ((rc == 0)); then
        log "PASS: $SCENARIO"
    else
        log "FAIL: $SCENARIO (exit status $rc)"
    fi
    exit "$rc"
}
trap _on_exit EXIT
trap 'echo "interrupted (SIGTERM, probably the per-scenario timeout)${_WAITING_FOR:+ while waiting for: $_WAITING_FOR}"; exit 124' TERM
trap 'echo "interrupted (SIGINT)"; exit 130' INT

log "scenario $SCENARIO: results in $RESULT_DIR, scratch in $WORK"
