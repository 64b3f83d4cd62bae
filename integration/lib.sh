# shellcheck shell=bash
# Scenario library for the VM integration tests. Sourced by every
# integration/scenarios/NN-name.sh and by integration/demo.sh.
#
# Runs inside the VM booted by `cargo xtask integration` (see
# doc/kernel-vm.md): the host's / is mounted read-only, system
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
CLEANUP_PATHS=() # files outside $WORK to delete on exit
CAPTURE_PID=""
CAPTURE_RAW=""
CAPTURE_LOG=""
CAPTURE_FILE=""  # set by capture_stop: the pcap inside $RESULT_DIR
LAST_PID=""      # set by start_l2tpd / start_xl2tpd
_T0=$EPOCHREALTIME
_STATE_DUMPED=0
_CAPTURE_CHECKED=0 # set by assert_tshark_clean
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
    local pid=$LAST_PID
    _check_alive "$pid" "l2tpd ($ns)" "$logf"
    # The debug binary takes seconds to start under TCG; a peer that dials
    # before it listens gets ICMP port unreachable and waits for its retry.
    wait_for "grep -q 'l2tpd started' $logf || ! kill -0 $pid" 30 "l2tpd ($ns) listening ('l2tpd started')"
    _check_alive "$pid" "l2tpd ($ns)" "$logf"
    LAST_PID=$pid
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
    wait_for "grep -q 'Listening on IP address' $logf" 10 "xl2tpd $name listening"
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
        if [[ -n $PPP_DEBUG ]]; then echo "$PPP_DEBUG"; fi
        echo "logfile $logfile"
        local opt
        for opt in $PPP_EXTRA_OPTS; do echo "$opt"; done
        if [[ $role == lac ]]; then
            echo "ipcp-accept-local"
            echo "ipcp-accept-remote"
        fi
    } >"$file"
    DAEMON_LOGS+=("$logfile")
}

# The tunnel secret both sides use unless a scenario sets another one.
L2TP_SECRET=l2tp-integration-secret

# _xl2tpd_opts ARGS...: parse the options shared by write_xl2tpd_{lns,lac}_conf
# into _XO_SECRET and _XO_EXTRA (lines appended to the [lns]/[lac] section).
#   --secret S      the secret in the auth file FILE.secrets ("* * S";
#                   default $L2TP_SECRET)
#   --challenge     "challenge = yes": xl2tpd challenges the peer (RFC 2661 §4.2)
#   --hidden        "hidden bit = yes": xl2tpd sends a Random Vector and
#                   expects hidden AVPs (1.3.18 hides none of its own)
_xl2tpd_opts() {
    _XO_SECRET=$L2TP_SECRET
    _XO_EXTRA=""
    while (($#)); do
        case $1 in
        --secret) _XO_SECRET=$2; shift 2 ;;
        --challenge) _XO_EXTRA+=$'challenge = yes\n'; shift ;;
        --hidden) _XO_EXTRA+=$'hidden bit = yes\n'; shift ;;
        *) fail "write_xl2tpd_*_conf: unknown option $1" ;;
        esac
    done
}

# _xl2tpd_secrets FILE: write the auth file FILE ("* * SECRET", mode 0600).
_xl2tpd_secrets() {
    echo "* * $_XO_SECRET" >"$1"
    chmod 600 "$1"
}

# write_xl2tpd_lns_conf FILE [--secret S] [--challenge] [--hidden]: the
# verified xl2tpd LNS on $LNS_IP (options: see _xl2tpd_opts).
write_xl2tpd_lns_conf() {
    local file=$1
    shift
    _xl2tpd_opts "$@"
    _xl2tpd_secrets "$file.secrets"
    write_ppp_options "$WORK/options.xl2tpd-lns" lns
    cat >"$file" <<EOF
[global]
listen-addr = $LNS_IP
port = 1701
auth file = $file.secrets
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
    printf '%s' "$_XO_EXTRA" >>"$file"
}

# write_xl2tpd_lac_conf FILE [--secret S] [--challenge] [--hidden]: the
# verified xl2tpd LAC on $LAC_IP, call "lac1" (options: see _xl2tpd_opts).
write_xl2tpd_lac_conf() {
    local file=$1
    shift
    _xl2tpd_opts "$@"
    _xl2tpd_secrets "$file.secrets"
    write_ppp_options "$WORK/options.xl2tpd-lac" lac
    cat >"$file" <<EOF
[global]
listen-addr = $LAC_IP
port = 1701
auth file = $file.secrets
access control = no
[lac lac1]
lns = $LNS_IP
require authentication = no
refuse pap = yes
refuse chap = yes
pppoptfile = $WORK/options.xl2tpd-lac
length bit = yes
EOF
    printf '%s' "$_XO_EXTRA" >>"$file"
}

# Further pppd options (words, e.g. "lcp-max-configure 40") for every pppd a
# scenario starts, under l2tpd and xl2tpd alike.
PPP_EXTRA_OPTS=${PPP_EXTRA_OPTS:-}
# pppd's `debug` (every LCP/IPCP packet logged) for every pppd; empty: off
# (a load scenario, whose hundreds of pppds would measure their own logs).
PPP_DEBUG=${PPP_DEBUG-debug}

# _toml_extra_opts: $PPP_DEBUG and $PPP_EXTRA_OPTS as further TOML array items.
_toml_extra_opts() {
    local w
    for w in $PPP_DEBUG $PPP_EXTRA_OPTS; do printf ', "%s"' "$w"; done
}

# write_l2tpd_conf FILE ROLE(lac|lns) [OPTIONS]: an l2tpd config (TOML).
#   --sessions "s1 s2"   LAC: sessions placed in tunnel "lac1" (default "s1")
#   --pool               LNS: hand out peer addresses from ip_pool
#                        ($PPP_POOL) instead of remote_ipaddr ($PPP_POOL_START)
#   --timers "TOML"      lines replacing the [tunnel_profile.default] timers
#   --secret S           tunnel secret (answers a peer's Challenge; hides AVPs)
#   --auth MODE          auth_mode: none | simple | challenge (LNS: with
#                        simple/challenge a [peer_profile.lac] for $LAC_IP is
#                        added, as l2tpd then refuses unknown peers)
#   --hide               hide_avps = true (needs --secret)
#   --session-type T     LAC: session_type of every session (default: none
#                        given, i.e. lac_incoming; "lns_outgoing" sends OCRQ)
#   --api-socket PATH    the management API socket (default:
#                        $WORK/run-ROLE/io.l2tpd.sock; "" turns the API off)
#   --persist            LAC: persist = true on tunnel "lac1" (re-dialled,
#                        and its calls placed again, whenever they end)
#   --system "TOML"      a line added to [system] (repeatable)
# Each daemon gets its own runtime directory $WORK/run-ROLE (API socket and
# state_file), never the shared /run/l2tpd of the VM.
# The LAC dials tunnel "lac1" to $LNS_IP; the LNS accepts incoming tunnels.
write_l2tpd_conf() {
    local file=$1 role=$2
    shift 2
    local sessions="s1" pool=0 listen deny ppp_log sess
    local auth_lines="" session_type="" auth=none api_socket=unset persist=0 system_lines=""
    local timers='hello_timeout = "60s"
retry_timeout = "1s"
retry_max_timeout = "8s"
max_retries = 5'
    while (($#)); do
        case $1 in
        --sessions) sessions=$2; shift 2 ;;
        --pool) pool=1; shift ;;
        --timers) timers=$2; shift 2 ;;
        --secret) auth_lines+="secret = \"$2\""$'\n'; shift 2 ;;
        --auth) auth_lines+="auth_mode = \"$2\""$'\n'; auth=$2; shift 2 ;;
        --hide) auth_lines+=$'hide_avps = true\n'; shift ;;
        --session-type) session_type=$2; shift 2 ;;
        --api-socket) api_socket=$2; shift 2 ;;
        --persist) persist=1; shift ;;
        --system) system_lines+="$2"$'\n'; shift 2 ;;
        *) fail "write_l2tpd_conf: unknown option $1" ;;
        esac
    done
    if [[ $role == lac ]]; then listen=$LAC_IP deny=true; else listen=$LNS_IP deny=false; fi
    mkdir -p "$WORK/run-$role"
    [[ $api_socket != unset ]] || api_socket=$WORK/run-$role/io.l2tpd.sock
    # It may hold a secret: l2tpd warns about secrets in files others can read.
    : >"$file"
    chmod 600 "$file"
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
api_socket = "$api_socket"
state_file = "$WORK/run-$role/l2tpd.state"
${system_lines}
[tunnel_profile.default]
$timers
${auth_lines}
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
pppd_options = ["noauth", "nodefaultroute", "noccp", "mtu", "1400", "mru", "1400"$(_toml_extra_opts)]
EOF
        if [[ $auth != none ]]; then
            # With auth_mode simple or challenge an LNS accepts tunnels only
            # from peers that match a configured peer profile.
            cat >>"$file" <<EOF

[peer_profile.lac]
peer_addr = "$LAC_IP"
EOF
        fi
    else
        cat >>"$file" <<EOF
pppd_options = ["noauth", "nodefaultroute", "noccp", "mtu", "1400", "mru", "1400", "ipcp-accept-local", "ipcp-accept-remote"$(_toml_extra_opts)]

[tunnel.lac1]
peer_addr = "$LNS_IP"
peer_udp_port = 1701
EOF
        if ((persist)); then
            echo "persist = true" >>"$file"
        fi
        for sess in $sessions; do
            printf '\n[tunnel.lac1.session.%s]\n' "$sess" >>"$file"
            if [[ -n $session_type ]]; then
                printf 'session_type = "%s"\n' "$session_type" >>"$file"
            fi
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

# assert_l2tp_mirror NTUNNELS NSESSIONS [any]: the kernels of both namespaces
# hold NTUNNELS tunnels and NSESSIONS sessions, and each side's ids and UDP
# ports are the other's peer ids and ports (LAC tunnel T peer P <=> LNS tunnel
# P peer T, likewise for sessions), between 192.0.2.1:1701 and
# 192.0.2.2:1701 (with "any", on any ports). Sets LAC_TID and LNS_TID (of the
# first tunnel).
assert_l2tp_mirror() {
    local want_t=$1 want_s=$2 ports=${3:-1701} lac_t lns_t lac_s lns_s
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
        grep -q "^$p $t $LNS_IP $LAC_IP $dp $sp\$" <<<"$lns_t" || {
            _show_l2tp
            fail "LAC tunnel $t (peer $p) has no mirror 'tunnel $p peer $t $LNS_IP->$LAC_IP $dp/$sp' in $LNS_NS"
        }
        [[ $ports == any || "$la $pa $sp $dp" == "$LAC_IP $LNS_IP 1701 1701" ]] || {
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
    # awk reads to the end: `grep -m1` would leave sed writing into a closed
    # pipe (SIGPIPE, a failed pipeline under pipefail) once the log is long.
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '!f && /tunnel up/ { print; f = 1 }')
    [[ -n $line ]] || return 1
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

# UDP port of the capture-readiness probes (discard): see capture_start.
CAPTURE_PROBE_PORT=9

# capture_start NS IFACE [NAME [PROBE_DST]]: dumpcap on IFACE in NS, written
# to $WORK (guest tmpfs) until capture_stop copies it to $RESULT_DIR. Filter:
# L2TP (udp port 1701, or $CAPTURE_FILTER when set) and ICMP (port unreachable while a daemon is not yet
# listening). dumpcap prints "Capturing on" before it has opened the
# interface, and under TCG opening it takes long enough to miss a whole tunnel
# setup, so this sends probe datagrams from NS to PROBE_DST (default: LNS_IP
# from the LAC namespace, else LAC_IP) port $CAPTURE_PROBE_PORT, which the
# filter also takes, until dumpcap counts one ("Packets: N" on stderr; up to
# 120 s: dumpcap has needed over 60 s to start on a loaded host). The
# probes stay in the capture (tshark decodes them as the Discard protocol).
capture_start() {
    local ns=$1 iface=$2 name=${3:-capture-$1} dst=${4:-}
    CAPTURE_RAW=$WORK/$name.pcapng
    CAPTURE_LOG=$WORK/$name.dumpcap.log
    if [[ -z $dst ]]; then
        if [[ $ns == "$LAC_NS" ]]; then dst=$LNS_IP; else dst=$LAC_IP; fi
    fi
    ip netns exec "$ns" dumpcap -i "$iface" \
        -f "${CAPTURE_FILTER:-udp port 1701} or udp port $CAPTURE_PROBE_PORT or icmp" -w "$CAPTURE_RAW" \
        >"$CAPTURE_LOG" 2>&1 </dev/null &
    CAPTURE_PID=$!
    BG_PIDS+=("$CAPTURE_PID")
    wait_for "ip netns exec $ns bash -c 'echo l2tp-capture-probe >/dev/udp/$dst/$CAPTURE_PROBE_PORT'; grep -q 'Packets: ' $CAPTURE_LOG" 120 \
        "dumpcap capturing on $ns/$iface (a probe datagram counted)"
}

# capture_stop: stop dumpcap, copy the capture to $RESULT_DIR, set
# CAPTURE_FILE, and check that tshark decodes it cleanly (assert_tshark_clean).
# Every scenario must end with a checked capture: a scenario that exits 0
# without one fails (see _on_exit).
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
    assert_tshark_clean "$CAPTURE_FILE"
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

# The one tshark pass over a capture (tshark_decode): these fields, one
# line per packet, tab-separated, a field's several values joined with '|'.
# Hidden AVPs: tshark 4.0 shows the H bit (l2tp.avp.hidden) but neither the
# type (no l2tp.avp.type occurrence) nor the value of a hidden AVP.
TSHARK_FIELDS=(
    frame.number ip.src ip.dst l2tp.type l2tp.avp.message_type   # 1-5
    l2tp.tunnel l2tp.session l2tp.Ns l2tp.Nr                     # 6-9
    l2tp.avp.type l2tp.avp.hidden l2tp.avp.random_vector         # 10-12
    l2tp.avp.chap_challenge l2tp.avp.chap_challenge_response     # 13-14 (Challenge, Challenge Response)
    l2tp.result_code l2tp.avp.error_code l2tp.avp.error_message  # 15-17
    l2tp.avp.called_number                                       # 18
    _ws.expert.severity _ws.expert.message _ws.malformed         # 19-21
    _ws.col.Protocol                                             # 22
)

# Extra tshark arguments, e.g. (-d udp.port==PORT,l2tp) for tunnels on ports
# other than 1701, which tshark would not decode as L2TP.
TSHARK_DECODE_AS=()

# tshark_decode PCAP: decode the capture once (tshark is slow to start in the
# VM) into PCAP.fields.tsv (see TSHARK_FIELDS) and print that file's path.
tshark_decode() {
    local pcap=$1 tsv=$1.fields.tsv f
    local -a args=()
    if [[ ! -s $tsv || $tsv -ot $pcap ]]; then
        for f in "${TSHARK_FIELDS[@]}"; do args+=(-e "$f"); done
        _tshark -n -r "$pcap" "${TSHARK_DECODE_AS[@]}" -T fields -E occurrence=a -E 'aggregator=|' "${args[@]}" \
            >"$tsv.tmp" 2>"$WORK/tshark.err" ||
            fail "tshark could not read $pcap: $(cat "$WORK/tshark.err")"
        mv "$tsv.tmp" "$tsv"
    fi
    echo "$tsv"
}

# The message-type names as an awk initialiser ("1=SCCRQ 2=SCCRP ...").
_msgtype_names() { local n; for n in "${!L2TP_MSGTYPE[@]}"; do printf '%s=%s ' "${L2TP_MSGTYPE[$n]}" "$n"; done; }

# tshark_ctl PCAP: one tab-separated line per L2TP control message, in order:
#   NAME SRC DST TUNNEL SESSION NS NR HIDDEN RV CHAL RESP RESULT ERROR ERRMSG CALLED CHALV RESPV
# NAME is ZLB for an empty control message; HIDDEN is the number of AVPs with
# the H bit; RV, CHAL, RESP are 1 when a (visible) Random Vector, Challenge,
# Challenge Response AVP is present; RESULT/ERROR/ERRMSG come from a Result
# Code AVP (StopCCN, CDN), CALLED from a Called Number AVP; CHALV and RESPV
# are the Challenge and Challenge Response values in hex.
tshark_ctl() {
    local tsv
    tsv=$(tshark_decode "$1")
    awk -F'\t' -v OFS='\t' -v names="$(_msgtype_names)" '
        BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); name[kv[1]] = kv[2] } }
        function first(s) { sub(/\|.*/, "", s); return s }
        $4 != 1 { next }
        {
            mt = first($5)
            t = mt == "" ? "ZLB" : ((mt in name) ? name[mt] : "type" mt)
            hidden = gsub(/1/, "1", $11)
            print t, first($2), first($3), first($6), first($7), first($8), first($9), hidden,
                ($12 != ""), ($13 != ""), ($14 != ""), first($15), first($16), $17, $18,
                first($13), first($14)
        }' "$tsv"
}

# tshark_msgtypes PCAP: the L2TP control messages of a capture in order, one
# per line: "NAME SRC DST TUNNEL SESSION NS NR" (NAME is ZLB for an empty
# control message); also kept next to the capture as PCAP.l2tp.txt.
tshark_msgtypes() {
    local pcap=$1 txt=$1.l2tp.txt
    if [[ ! -s $txt || $txt -ot $pcap ]]; then
        tshark_ctl "$pcap" | cut -f1-7 | tr '\t' ' ' >"$txt"
    fi
    cat "$txt"
}

# assert_ctl PCAP NAME FROM_ADDR COND DESC: the capture holds at least one NAME
# message sent from FROM_ADDR ("" = either side), and every one of them
# satisfies COND, an awk expression over the tshark_ctl columns named
# name src dst tunnel session ns nr hidden rv chal resp result error errmsg
# called chalv respv
# (e.g. 'chal && !resp', 'hidden > 0 && rv', 'result == 4').
assert_ctl() {
    local pcap=$1 want=$2 from=$3 cond=$4 desc=$5 verdict
    verdict=$(tshark_ctl "$pcap" | awk -F'\t' -v want="$want" -v from="$from" "
        {
            name = \$1; src = \$2; dst = \$3; tunnel = \$4; session = \$5; ns = \$6; nr = \$7
            hidden = \$8 + 0; rv = \$9 + 0; chal = \$10 + 0; resp = \$11 + 0
            result = \$12; error = \$13; errmsg = \$14; called = \$15; chalv = \$16; respv = \$17
            if (name != want || (from != \"\" && src != from)) next
            n++
            if (!($cond)) bad++
        }
        END { print n + 0, bad + 0 }")
    read -r n bad <<<"$verdict"
    if ((n == 0 || bad > 0)); then
        echo "control messages (name src dst tunnel session Ns Nr hidden rv chal resp result error errmsg called):"
        tshark_ctl "$pcap" | sed 's/^/    | /'
        if ((n == 0)); then
            fail "no $want${from:+ from $from} in the capture (wanted: $desc)"
        fi
        fail "$bad of $n $want message(s)${from:+ from $from} lack: $desc ($cond)"
    fi
    log "ok: every $want${from:+ from $from} ($n) has $desc"
}

# ctl_field PCAP NAME FROM_ADDR COLUMN: COLUMN (a tshark_ctl column number)
# of the first NAME message from FROM_ADDR ("" = either side); empty if none.
ctl_field() {
    tshark_ctl "$1" | awk -F'\t' -v want="$2" -v from="$3" -v col="$4" \
        '!done && $1 == want && (from == "" || $2 == from) { print $col; done = 1 }'
}

# assert_challenge_responses PCAP SECRET INITIATOR_ADDR RESPONDER_ADDR: the
# Challenge Responses of the capture are right for SECRET, computed here from
# RFC 2661 §4.2 (MD5 of the response's message type, the secret and the
# challenge): the responder's SCCRP answers the initiator's SCCRQ Challenge
# (type 2), the initiator's SCCCN answers the SCCRP Challenge (type 3). Either
# pair is checked only when that Challenge was sent.
assert_challenge_responses() {
    local pcap=$1 secret=$2 ini=$3 resp=$4 c r want type msg from to n=0
    for type in 2 3; do
        if ((type == 2)); then msg=SCCRQ from=$ini to=$resp; else msg=SCCRP from=$resp to=$ini; fi
        c=$(ctl_field "$pcap" "$msg" "$from" 16)
        [[ -n $c ]] || continue
        local rmsg=SCCRP
        ((type == 3)) && rmsg=SCCCN
        r=$(ctl_field "$pcap" "$rmsg" "$to" 17)
        want=$({ printf '%b' "\\x0$type"; printf '%s' "$secret"; xxd -r -p <<<"$c"; } | md5sum | cut -d' ' -f1)
        [[ ${r,,} == "$want" ]] ||
            fail "$rmsg from $to: Challenge Response '${r:-<none>}', expected MD5($type|secret|$msg challenge $c) = $want"
        log "ok: $rmsg from $to answers the $msg challenge from $from correctly (MD5 = $want)"
        n=$((n + 1))
    done
    ((n > 0)) || fail "assert_challenge_responses: no Challenge in the capture"
}

# Expert info that is not a failure although its severity is warning or
# above: extended regular expressions on the message, each with the reason.
# (None so far: every scenario's capture decodes without warnings.)
TSHARK_EXPERT_ALLOW=()

# assert_tshark_clean PCAP: tshark decodes every packet of the capture (L2TP
# control and data, the PPP and IP inside) without a malformed packet and
# without expert info of severity warning or error (except those allowed in
# TSHARK_EXPERT_ALLOW); notes and chats are listed but are no failure.
assert_tshark_clean() {
    local pcap=$1 tsv report bad=0 line re allowed
    tsv=$(tshark_decode "$pcap")
    # One line per finding: "LEVEL<TAB>FRAME<TAB>PROTOCOL<TAB>MESSAGE".
    report=$(awk -F'\t' -v OFS='\t' '
        function level(s) {
            s += 0
            if (s >= 8388608) return "error"    # PI_ERROR 0x00800000
            if (s >= 6291456) return "warning"  # PI_WARN  0x00600000
            if (s >= 4194304) return "note"     # PI_NOTE  0x00400000
            if (s >= 2097152) return "chat"     # PI_CHAT  0x00200000
            return "comment"
        }
        {
            if ($21 != "") print "malformed", $1, $22, $21
            ns = split($19, sev, "|"); split($20, msg, "|")
            for (i = 1; i <= ns; i++) if (sev[i] != "") print level(sev[i]), $1, $22, msg[i]
        }' "$tsv")
    local -a failures=() tolerated=() minor=()
    while IFS=$'\t' read -r lvl frame proto msg; do
        [[ -n $lvl ]] || continue
        line="frame $frame ($proto): $lvl: $msg"
        case $lvl in
        malformed | error)
            failures+=("$line") ;;
        warning)
            allowed=0
            for re in "${TSHARK_EXPERT_ALLOW[@]}"; do
                [[ $msg =~ $re ]] && allowed=1
            done
            if ((allowed)); then tolerated+=("$line"); else failures+=("$line"); fi ;;
        *)
            minor+=("$line") ;;
        esac
    done <<<"$report"
    if ((${#minor[@]})); then
        log "tshark notes/chats in $(basename "$pcap") (not failures):"
        printf '%s\n' "${minor[@]}" | sed 's/^frame [0-9]* //' | sort | uniq -c | sed 's/^/    | /'
    fi
    if ((${#tolerated[@]})); then
        log "tshark warnings allowed by TSHARK_EXPERT_ALLOW in $(basename "$pcap"):"
        printf '%s\n' "${tolerated[@]}" | sed 's/^/    | /'
    fi
    if ((${#failures[@]})); then
        printf '%s\n' "${failures[@]}" | sed 's/^/    | /'
        fail "tshark flags ${#failures[@]} malformed packet(s) / warning or error expert info in $pcap"
    fi
    grep -q $'^[^\t]*\t[^\t]*\t[^\t]*\t[01]\t' "$tsv" ||
        fail "$pcap holds no L2TP packet: the capture missed the traffic"
    _CAPTURE_CHECKED=1
    log "ok: tshark decodes all $(wc -l <"$tsv") packets of $(basename "$pcap") with no malformed packet and no warning/error expert info"
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

# assert_nothing_left: no kernel tunnel or session and no pppd in either
# namespace (after a refused or cleared tunnel), within 10 s.
assert_nothing_left() {
    local ns
    for ns in "$LAC_NS" "$LNS_NS"; do
        wait_for "test -z \"\$(ip netns exec $ns ip l2tp show tunnel)\"" 10 "no kernel tunnel in $ns"
        wait_for "test -z \"\$(l2tp_sessions $ns)\"" 5 "no kernel session in $ns"
        wait_for "test -z \"\$(pppd_pids_in $ns)\"" 5 "no pppd in $ns"
    done
}

# assert_alive PID NAME: the daemon is still running.
assert_alive() {
    kill -0 "$1" 2>/dev/null || fail "$2 (pid $1) exited"
    log "ok: $2 still running"
}

# ---------------------------------------------------------------------------
# Lossy link (tc netem)

# "NS DEV" of every veth end that netem_loss gave a netem qdisc (removed by
# netem_clear, and on exit should the scenario fail before it).
NETEM_DEVS=()

# netem_loss PERCENT: a root netem qdisc on both veth ends, each inside its
# namespace, dropping PERCENT % of the packets that leave it (`tc qdisc
# replace ... netem loss PERCENT%`, independent random loss; needs the
# sch_netem module, which run-in-vm.sh loads). netem acts on egress only, so
# one qdisc per end makes both directions lossy. dumpcap taps a packet after
# the sending end's qdisc, so a capture on either end holds exactly the
# packets that crossed the link.
netem_loss() {
    local pct=$1 pair ns dev
    for pair in "$LAC_NS $LAC_IF" "$LNS_NS $LNS_IF"; do
        read -r ns dev <<<"$pair"
        nsx "$ns" tc qdisc replace dev "$dev" root netem loss "$pct%" ||
            fail "tc qdisc replace dev $dev root netem loss $pct% failed in $ns (sch_netem loaded?)"
        NETEM_DEVS+=("$pair")
        log "netem: $ns $dev drops $pct % of what it sends: $(nsx "$ns" tc qdisc show dev "$dev" root)"
    done
}

# netem_counts NS DEV: "SENT DROPPED" packet counts of the netem qdisc on DEV
# (`tc -s qdisc show`: "Sent B bytes P pkt (dropped D, ..."); the packets it
# dropped are not in SENT.
netem_counts() {
    nsx "$1" tc -s qdisc show dev "$2" root | awk '
        /^qdisc netem/ { f = 1; next }
        f && /Sent/ {
            gsub(/[(),]/, " ")
            for (i = 1; i <= NF; i++) { if ($i == "pkt") s = $(i - 1); if ($i == "dropped") d = $(i + 1) }
            print s + 0, d + 0; exit
        }'
}

# netem_report: log what each end's netem qdisc sent and dropped, with the
# loss rate seen (dropped / (sent + dropped)).
netem_report() {
    local pair ns dev sent dropped
    for pair in "${NETEM_DEVS[@]}"; do
        read -r ns dev <<<"$pair"
        read -r sent dropped <<<"$(netem_counts "$ns" "$dev")"
        [[ -n $sent ]] || fail "no netem qdisc statistics on $dev in $ns"
        log "netem $ns $dev: $sent packets sent, $dropped dropped ($(awk -v s="$sent" -v d="$dropped" \
            'BEGIN { printf "%.1f", (s + d) ? 100 * d / (s + d) : 0 }') %)"
    done
}

# netem_clear: delete the netem qdiscs netem_loss added and check that none
# is left on either veth end.
netem_clear() {
    local pair ns dev
    for pair in "${NETEM_DEVS[@]}"; do
        read -r ns dev <<<"$pair"
        nsx "$ns" tc qdisc del dev "$dev" root || fail "tc qdisc del dev $dev root failed in $ns"
        if nsx "$ns" tc qdisc show dev "$dev" | grep -q netem; then
            fail "a netem qdisc is still on $dev in $ns: $(nsx "$ns" tc qdisc show dev "$dev")"
        fi
    done
    log "ok: netem qdiscs removed from ${#NETEM_DEVS[@]} veth end(s)"
    NETEM_DEVS=()
}

# hello_stats PCAP FROM TO: "DISTINCT SENT ACKED MAXCOPIES" for the HELLOs
# FROM sent to TO in the capture: distinct HELLOs (by tunnel and Ns), their
# transmissions that crossed the link (retransmissions included), how many
# of them TO acknowledged (a later message from TO with Nr above the HELLO's
# Ns, RFC 2661 §5.8), and the most transmissions of one HELLO. Assumes Ns did
# not wrap (fewer than 32768 control messages in the capture).
hello_stats() {
    tshark_msgtypes "$1" | awk -v a="$2" -v b="$3" '
        $1 == "HELLO" && $2 == a && $3 == b {
            k = $4 " " $6
            if (!(k in n)) { distinct++; ns[k] = $6 + 0 }
            n[k]++; sent++
        }
        $2 == b && $3 == a && $7 + 0 > maxnr { maxnr = $7 + 0 }
        END {
            for (k in n) { if (ns[k] < maxnr) acked++; if (n[k] > most) most = n[k] }
            print distinct + 0, sent + 0, acked + 0, most + 0
        }'
}

# ---------------------------------------------------------------------------
# l2tpctl (the management API; write_l2tpd_conf --api-socket PATH enables it)

L2TPCTL=${L2TPCTL_BIN:-$(dirname "$L2TPD")/l2tpctl}

# l2tpctl_json SOCKET ARGS...: `l2tpctl --socket SOCKET --json ARGS...`; the
# reply on stdout; status 1 with l2tpctl's error on stderr when it fails or
# takes over 60 s (a start of the debug binary takes seconds under TCG, far
# more on a loaded host).
l2tpctl_json() {
    local sock=$1 rc=0
    shift
    [[ -x $L2TPCTL ]] || { echo "l2tpctl binary not found at $L2TPCTL" >&2; return 1; }
    timeout 60 "$L2TPCTL" --socket "$sock" --json "$@" || rc=$?
    if ((rc == 124)); then
        echo "l2tpctl --socket $sock --json $*: no answer within 60 s" >&2
    elif ((rc != 0)); then
        echo "l2tpctl --socket $sock --json $*: exit status $rc" >&2
    fi
    return "$rc"
}

# json_field FIELD: the value of the first `"FIELD": VALUE` line of the
# pretty-printed JSON on stdin (a number, true/false/null, or a string
# without its quotes); empty when there is none.
json_field() {
    sed -n "s/^ *\"$1\": //p" | head -n 1 | sed 's/,$//; s/^"\(.*\)"$/\1/'
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
    if ((rc == 0)) && ((!_CAPTURE_CHECKED)); then
        printf '[%ss] FAIL: the scenario ended without a tshark-checked capture (capture_start ... capture_stop)\n' "$(_elapsed)"
        rc=1
    fi
    if [[ -n $CAPTURE_PID ]]; then
        # Failed before capture_stop: keep what was captured for diagnosis.
        kill -INT "$CAPTURE_PID" 2>/dev/null
        for _ in $(seq 30); do kill -0 "$CAPTURE_PID" 2>/dev/null || break; sleep 0.1; done
        [[ -s $CAPTURE_RAW ]] && cp "$CAPTURE_RAW" "$RESULT_DIR/" &&
            printf 'capture (unchecked) saved: %s\n' "$RESULT_DIR/$(basename "$CAPTURE_RAW")"
    fi
    if ((rc != 0)) && ((!_STATE_DUMPED)); then
        _STATE_DUMPED=1
        dump_state
    fi
    _kill_all
    local ns pair dev
    for pair in "${NETEM_DEVS[@]}"; do
        read -r ns dev <<<"$pair"
        nsx "$ns" tc qdisc del dev "$dev" root 2>/dev/null
    done
    for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
    if ((rc != 0)) || [[ $KEEP_ARTIFACTS == 1 ]]; then
        mkdir -p "$RESULT_DIR/work" && cp -a "$WORK/." "$RESULT_DIR/work/" 2>/dev/null
    fi
    rm -rf "$WORK"
    ((${#CLEANUP_PATHS[@]})) && rm -f "${CLEANUP_PATHS[@]}"
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
