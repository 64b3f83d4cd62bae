#!/bin/bash
# 100 calls placed at once in one tunnel, with the real kernel and pppd:
#   A. l2tpd LAC -> l2tpd LNS: all 100 PPP links come up on both sides, every
#      LAC address is a distinct pool address, and neither daemon
#      retransmitted a single control message (on a lossless veth, a
#      retransmission can only come from our own processing delay).
#   B. the same l2tpd LAC -> xl2tpd LNS, for comparison.
# (The retransmission check of A comes last, so that B runs either way.)
# Both set-up times (LAC start to 100 links up on the LAC), with the CPU
# time of each daemon and of its pppds, are printed; they are figures, not
# assertions.
# timeout: 900
# manual: 10 minutes under TCG (200 pppd processes on two emulated CPUs),
#   too long for the test command; run it with `cargo xtask integration
#   --filter 85 --release` on a quiet host (a loaded host starves the VM,
#   and then anything retransmits). The last three runs (2026-11-30,
#   quiet host, commits 25879e2 twice and then this script's present form)
#   passed: l2tpd LNS 153.9 s, 154.9 s and 184.5 s with no retransmission,
#   xl2tpd LNS 173.7 s, 171.4 s and 172.8 s (our LAC retransmitted 53 to
#   56 messages to xl2tpd). Earlier that day, on
#   the code before, 6 of 10 runs of A had 1-3 retransmissions, among them
#   17:52 (1; then 18:55 passed) on the same set-up path. The time is pppd's:
#   when the LAC has its 100 links up, the LNS l2tpd has used 4-6 s of
#   CPU, the pppds of both sides 106-134 s.
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

CALLS=100
# Info, as a production daemon runs: debug logging of 100 calls under TCG would measure the log.
L2TPD_LOG=info
# No pppd `debug` either (some 7,000 lines per daemon through its log).
PPP_DEBUG=
# The daemons log to the guest's tmpfs ($WORK, copied to the results at the
# end, or with everything else on failure): each write to the 9p results
# directory blocks the writer, for whole seconds under load, which measured
# the log, not the daemons.
PPP_POOL_END=198.51.100.120
PPP_POOL="$PPP_POOL_START-$PPP_POOL_END"
# 200 pppd processes start on two emulated CPUs: give LCP and IPCP minutes,
# not pppd's default 30 s, to hear from the other side (same for xl2tpd).
PPP_EXTRA_OPTS="lcp-max-configure 60 ipcp-max-configure 60"
L2TPCTL=${L2TPCTL_BIN:-$(dirname "$L2TPD")/l2tpctl}
[[ -x $L2TPCTL ]] || fail "l2tpctl binary not found at $L2TPCTL (run: cargo build --workspace --bins)"

sessions=$(seq -f 's%g' 1 "$CALLS" | tr '\n' ' ')

# links_up NS: number of ppp interfaces in NS with an address and a peer.
links_up() {
    nsx "$1" ip -o -4 addr show 2>/dev/null | grep -c ' ppp[0-9]* .*peer' || true
}

# retransmits SOCKET: the daemon's retransmission counter.
retransmits() {
    "$L2TPCTL" --socket "$1" --json system counters | sed -n 's/.*"retransmits": \([0-9]*\).*/\1/p'
}

# child_stats PID: the /proc stat files of PID's pppd children, one per line.
child_stats() {
    pgrep -P "$1" -x pppd | sed 's|.*|/proc/&/stat|' || true
}

# cpu_use NAME PID: "NAME N.Ns, its K pppds M.Ms": CPU time (user + system,
# fields 14 and 15 of /proc/PID/stat; no spaces in these command names) of
# PID and of its pppd children, so far. One awk per process group: a
# process per pppd would take minutes under TCG here.
cpu_use() {
    local hz own sum stats
    hz=$(getconf CLK_TCK)
    own=$(awk -v hz="$hz" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$2/stat")
    mapfile -t stats < <(child_stats "$2")
    sum=$( ((${#stats[@]})) && awk -v hz="$hz" '{ s += $14 + $15 } END { printf "%.1f", s / hz }' "${stats[@]}" </dev/null || echo 0)
    echo "$1 ${own}s, its ${#stats[@]} pppds ${sum}s"
}

# run_calls LNS_KIND LNS_PID: start the l2tpd LAC with $CALLS sessions and wait for all
# of them; sets SETUP_S to the seconds from LAC start to all links up, and
# CPU_USE to the CPU time of each daemon and its pppds at that moment.
run_calls() {
    local kind=$1 lns=$2 t0
    t0=$EPOCHREALTIME
    start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$WORK/l2tpd-lac-$kind.log"
    LAC_PID=$LAST_PID
    wait_for "test \$(links_up $LAC_NS) -eq $CALLS" 400 "$CALLS ppp links up in $LAC_NS ($kind LNS)"
    SETUP_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    CPU_USE="CPU: $(cpu_use "LAC l2tpd" "$LAC_PID"); $(cpu_use "LNS $kind" "$lns")"
    log "$kind LNS: $CPU_USE"
    wait_for "test \$(links_up $LNS_NS) -eq $CALLS" 60 "$CALLS ppp links up in $LNS_NS ($kind LNS)"
    log "$kind LNS: $CALLS calls up in ${SETUP_S}s"
}

# stop_lac: SIGTERM to the LAC; it must clear every call and exit.
stop_lac() {
    kill -TERM "$LAC_PID"
    # l2tpd's own bound is about 19 s (3 s for the StopCCN, 10 s for the
    # pppds, 3 s for each wait on the data plane); under TCG the exits of
    # 100 pppds (LCP terminate, ip-down scripts) starve everything for
    # longer.
    wait_for "! kill -0 $LAC_PID" 90 "LAC l2tpd exits after SIGTERM"
    wait_for "test -z \"\$(pppd_pids_in $LAC_NS)\"" 30 "no pppd left in $LAC_NS"
    wait_for "test -z \"\$(ip netns exec $LAC_NS ip l2tp show tunnel)\"" 10 "no kernel tunnel in $LAC_NS"
}

setup_netns
# The LAC's pppds share the VM's CPUs with the LNS's: at l2tpd's default
# `pppd_nice = 5` they would run below xl2tpd's pppds (nice 0) in B but level
# with l2tpd's in A. At 0 the LAC is the same for both LNSs.
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --sessions "$sessions" --api-socket "$WORK/lac.sock" \
    --system 'pppd_nice = 0'

# The LNS's pppds at l2tpd's default pppd_nice = 5, which puts them below
# the LAC's in this one VM (a run at 0, level with them as xl2tpd's are in
# B, took 173.5 s against 170.4 s at 5 in the same VM: no difference).
NICE=5
section "A. l2tpd LAC -> l2tpd LNS (pppd_nice = $NICE), $CALLS calls at once"
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns --pool --api-socket "$WORK/lns.sock" \
    --system "pppd_nice = $NICE"
start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$WORK/l2tpd-lns.log"
lns_pid=$LAST_PID
run_calls l2tpd "$lns_pid"
a_s=$SETUP_S
a_cpu=$CPU_USE
declare -A seen=()
for ifc in $(ppp_ifaces "$LAC_NS"); do
    read -r addr _ <<<"$(ppp_addrs "$LAC_NS" "$ifc")"
    [[ -z ${seen[$addr]:-} ]] || fail "$LAC_NS: $ifc and ${seen[$addr]} both got $addr"
    seen[$addr]=$ifc
done
((${#seen[@]} == CALLS)) || fail "expected $CALLS distinct LAC addresses, found ${#seen[@]}"
log "ok: $CALLS distinct pool addresses on the LAC"
# pppd_nice: every LNS pppd at NICE, the LAC's at its 0, and of the LNS
# l2tpd's threads the data-plane worker at NICE (the pppds inherit it), the
# others at 0. Field 19 of /proc/PID/stat is the nice value (no spaces in
# these names; the worker thread is `l2tpd-dataplane`); one pgrep and one
# awk per daemon.
for side in "$lns_pid:$NICE" "$LAC_PID:0"; do
    mapfile -t stats < <(child_stats "${side%:*}")
    nices=$( ((${#stats[@]})) && awk '{ print $19 }' "${stats[@]}" </dev/null | sort | uniq -c | tr -s ' \n' ' ' || true)
    [[ $nices == " $CALLS ${side#*:} " ]] || fail "pppds of l2tpd ${side%:*}: count and nice value: $nices (expected $CALLS at ${side#*:})"
done
l2tpd_nice=$(awk '{ print ($2 == "(l2tpd-dataplane)" ? "worker" : "others") "=" $19 }' \
    /proc/"$lns_pid"/task/*/stat | sort -u | tr '\n' ' ')
[[ $l2tpd_nice == "others=0 worker=$NICE " ]] ||
    fail "LNS l2tpd threads at nice values $l2tpd_nice, expected others=0 worker=$NICE"
log "ok: LNS pppds and data-plane worker at nice $NICE, LAC pppds at 0, other LNS l2tpd threads at 0"
lac_rtx=$(retransmits "$WORK/lac.sock")
lns_rtx=$(retransmits "$WORK/lns.sock")
a_rtx="LAC $lac_rtx, LNS $lns_rtx"
log "retransmissions: $a_rtx"
if [[ $lac_rtx != 0 || $lns_rtx != 0 ]]; then
    # Which messages and when: each side's tunnel counters (duplicates
    # received, retransmissions, messages by type).
    for side in lac lns; do
        "$L2TPCTL" --socket "$WORK/$side.sock" tunnel list >"$RESULT_DIR/tunnels-$side.txt" 2>&1 || true
        for t in $("$L2TPCTL" --socket "$WORK/$side.sock" --json tunnel list | sed -n 's/.*"id": \([0-9]*\).*/\1/p'); do
            "$L2TPCTL" --socket "$WORK/$side.sock" tunnel show "$t" >>"$RESULT_DIR/tunnels-$side.txt" 2>&1 || true
        done
    done
fi
ping_ok "$LAC_NS" "$LNS_PPP_IP"
# The teardown on the wire (captured after the set-up, which a capture
# would slow down under TCG): the LAC's StopCCN clears the tunnel and its
# 100 calls at once.
capture_start "$LAC_NS" "$LAC_IF"
stop_lac
capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "StopCCN" "$LAC_IP"
wait_for "test -z \"\$(pppd_pids_in $LNS_NS)\"" 30 "no pppd left in $LNS_NS"
kill -TERM "$lns_pid"
wait_for "! kill -0 $lns_pid" 10 "LNS l2tpd exits after SIGTERM"

section "B. l2tpd LAC -> xl2tpd LNS, $CALLS calls at once"
write_xl2tpd_lns_conf "$WORK/xl2tpd-lns.conf"
start_xl2tpd "$LNS_NS" xl2tpd-lns "$WORK/xl2tpd-lns.conf"
run_calls xl2tpd "$LAST_PID"
xl2tpd_s=$SETUP_S
xl2tpd_cpu=$CPU_USE
log "retransmissions by our LAC against xl2tpd: $(retransmits "$WORK/lac.sock")"
stop_lac

cp "$WORK"/l2tpd-*.log "$RESULT_DIR/" 2>/dev/null || true

section "figures"
{
    printf '%s calls at once (LAC start to every link up):\n' "$CALLS"
    printf '  l2tpd LNS, pppd_nice = %s: %ss (retransmissions: %s); %s\n' "$NICE" "$a_s" "$a_rtx" "$a_cpu"
    printf '  xl2tpd LNS: %ss; %s\n' "$xl2tpd_s" "$xl2tpd_cpu"
} | tee "$RESULT_DIR/figures.txt"
# Checked last, so that the comparison is made whatever the outcome.
[[ $a_rtx == "LAC 0, LNS 0" ]] ||
    fail "control messages were retransmitted ($a_rtx): a peer waited on our processing"
