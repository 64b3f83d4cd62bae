#!/usr/bin/env bash
# Runs examples/kernel_smoke.rs inside a VM booting a stock Debian kernel (vng, TCG),
# as described in doc/kernel-vm.md. Exits with the smoke test's status.
#
#   crates/l2tp-kernel/scripts/vm-smoke.sh [netlink|legacy|all]
#
# KDIR: unpacked linux-image .deb (default /tmp/kvm, must contain boot/vmlinuz-*).
# OUT:  writable results directory (default /tmp/kout): smoke.txt, pppd-*.log.
set -euo pipefail
MODE="${1:-all}"
KDIR="${KDIR:-/tmp/kvm}"
OUT="${OUT:-/tmp/kout}"
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"

command -v vng >/dev/null || { echo "vng (virtme-ng) not installed" >&2; exit 2; }
KERNEL=$(ls "$KDIR"/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
[ -n "$KERNEL" ] || { echo "no kernel in $KDIR/boot (dpkg-deb -x linux-image-*.deb $KDIR)" >&2; exit 2; }

(cd "$ROOT" && cargo build -q -p l2tp-kernel --example kernel_smoke)
BIN="$ROOT/target/debug/examples/kernel_smoke"
mkdir -p "$OUT"
rm -f "$OUT"/smoke.txt "$OUT"/pppd-*.log

set +e
timeout 900 vng -r "$KERNEL" --disable-kvm --force-9p --rwdir "$OUT" -- \
  "ip link set lo up; modprobe -a l2tp_netlink l2tp_ppp ppp_generic && $BIN $MODE > $OUT/smoke.txt 2>&1; rc=\$?; ip l2tp show tunnel >> $OUT/smoke.txt 2>&1; exit \$rc"
rc=$?
set -e
cat "$OUT/smoke.txt" 2>/dev/null || echo "no output from the VM (vng exit $rc)" >&2
echo "kernel_smoke in VM: exit $rc"
exit $rc
