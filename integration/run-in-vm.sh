#!/bin/bash
# Guest side of `cargo xtask integration`: runs inside the VM.
#
#   L2TP_RESULTS=DIR [L2TPD_BIN=PATH] [L2TP_SCENARIO_TIMEOUT=120] [L2TP_KEEP=1] \
#       [L2TP_SHARD=vmN] run-in-vm.sh SCENARIO...
#
# SCENARIO is a file name under integration/scenarios/ without ".sh". Each
# scenario runs on its own (fresh namespaces, bounded by `timeout`: the
# scenario timeout, or the "# timeout: SECONDS" line of its header), its output
# goes to DIR/SCENARIO/scenario.log, and one line per scenario is appended to
# DIR/results.tsv:   NAME <TAB> PASS|FAIL|TIMEOUT <TAB> SECONDS <TAB> EXIT_STATUS
# DIR/done is written last, so the host can tell a complete run from a VM that
# died. Exit status: 0 all passed, 1 some failed, 2 the guest setup failed.
# With L2TP_SHARD=vmN (several VMs sharing DIR, each with its own scenarios)
# those files are results-vmN.tsv, done-vmN, setup-error-vmN and
# guest-uptime-at-start-vmN.

set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${L2TP_RESULTS:?L2TP_RESULTS must name the results directory}
TIMEOUT=${L2TP_SCENARIO_TIMEOUT:-120}
export L2TPD_BIN=${L2TPD_BIN:-$HERE/../target/debug/l2tpd}
export L2TP_KEEP=${L2TP_KEEP:-0}

SFX=${L2TP_SHARD:+-$L2TP_SHARD}
mkdir -p "$RESULTS"
: >"$RESULTS/results$SFX.tsv"
boot_s=$(cut -d' ' -f1 /proc/uptime)
echo "$boot_s" >"$RESULTS/guest-uptime-at-start$SFX"
echo "guest: kernel $(uname -r), $(nproc) cpu(s), harness started ${boot_s}s after boot"

setup_fail() {
    echo "guest setup failed: $*" | tee "$RESULTS/setup-error$SFX"
    exit 2
}

modprobe -a l2tp_netlink l2tp_ppp l2tp_eth ppp_generic ||
    setup_fail "modprobe l2tp_netlink l2tp_ppp l2tp_eth ppp_generic failed"
[[ -c /dev/ppp ]] || setup_fail "/dev/ppp missing after modprobe ppp_generic"
# tc netem (lossy links, lib.sh netem_loss): only some scenarios need it, and
# they fail with a clear reason without it, so a missing module is a warning.
modprobe sch_netem || echo "warning: modprobe sch_netem failed; netem scenarios will fail"
ip l2tp show tunnel >/dev/null || setup_fail "'ip l2tp show tunnel' does not work"
for tool in xl2tpd pppd dumpcap tshark; do
    command -v "$tool" >/dev/null || setup_fail "$tool not found in the guest"
done
# tshark maps ~150 MB of libraries; page faults over the 9p root make every
# start take 10-30 s under TCG. A copy in tmpfs brings that down to ~5 s.
# (lib.sh uses the same directory; .complete marks a finished copy.)
tshark_libdir=/var/tmp/l2tp-tshark-libs
mkdir -p "$tshark_libdir"
for lib in $(ldd "$(command -v tshark)" | awk '/libwireshark|libwiretap|libwsutil|libicudata/ { print $3 }'); do
    cp -L "$lib" "$tshark_libdir/" || setup_fail "cannot copy $lib to $tshark_libdir"
done
touch "$tshark_libdir/.complete"
export L2TP_TSHARK_LIBDIR=$tshark_libdir

if [[ ! -x $L2TPD_BIN ]]; then
    echo "warning: $L2TPD_BIN not found; scenarios using l2tpd will fail"
fi

# Remove whatever a scenario may have left behind, so the next one starts clean.
reap() {
    local ns p
    for p in $(pgrep -x pppd) $(pgrep -x xl2tpd) $(pgrep -x l2tpd) $(pgrep -x dumpcap); do
        kill -KILL "$p" 2>/dev/null
    done
    for ns in $(ip netns list | awk '{ print $1 }'); do ip netns del "$ns" 2>/dev/null; done
}

failed=0
for name in "$@"; do
    script=$HERE/scenarios/$name.sh
    dir=$RESULTS/$name
    mkdir -p "$dir"
    t0=$EPOCHREALTIME
    if [[ -f $script ]]; then
        # A scenario may need longer: a "# timeout: SECONDS" line in its header.
        limit=$(sed -n 's/^# timeout: \([0-9][0-9]*\)$/\1/p' "$script" | head -n 1)
        limit=${limit:-$TIMEOUT}
        RESULT_DIR=$dir timeout --kill-after=10 "$limit" bash "$script" >"$dir/scenario.log" 2>&1 </dev/null
        rc=$?
    else
        echo "no such scenario: $script" >"$dir/scenario.log"
        rc=127
    fi
    secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    case $rc in
    0) status=PASS ;;
    124 | 137) status=TIMEOUT ;;
    *) status=FAIL ;;
    esac
    if [[ $status == TIMEOUT ]]; then
        echo "scenario killed after the ${TIMEOUT}s timeout (exit status $rc)" >>"$dir/scenario.log"
    fi
    [[ $status == PASS ]] || failed=$((failed + 1))
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$secs" "$rc" >>"$RESULTS/results$SFX.tsv"
    printf '  %-40s %-7s %6ss\n' "$name" "$status" "$secs"
    reap
done

cut -d' ' -f1 /proc/uptime >"$RESULTS/done$SFX"
sync
((failed == 0))
