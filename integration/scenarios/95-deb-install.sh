#!/bin/bash
# The Debian package: `dpkg -i` of the .deb that `cargo xtask integration`
# builds from the debug binaries (`cargo xtask deb --profile dev`, passed as
# L2TPD_DEB), in the VM's writable overlays of /usr, /etc, /var. The files are
# where Debian wants them, the example /etc/l2tpd/l2tpd.toml is a conffile
# that `l2tpd check` accepts and that opens no tunnel, the unit is enabled
# but not started (systemd is not PID 1 here: the maintainer scripts see no
# /run/systemd/system and start nothing). Then an LAC/LNS pair runs from the
# installed /usr/sbin/l2tpd (each daemon its own API socket and state file),
# a session comes up and pings cross it, the installed l2tpctl shows the
# tunnel on both sides, `man -l` renders the installed pages, and
# `dpkg --purge` removes it all again.
# needs: deb
# timeout: 600
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

DEB=${L2TPD_DEB:-}
[[ -n $DEB && -f $DEB ]] ||
    fail "no package (L2TPD_DEB='$DEB'): run this scenario through cargo xtask integration, which builds it"

# The man-db trigger rebuilds the whole man index, minutes under TCG: off,
# in the VM's throwaway /var overlay only (Debian's own switch for it).
rm -f /var/lib/man-db/auto-update

section "the package ($DEB)"
dpkg-deb --info "$DEB" | indent
dpkg-deb --contents "$DEB" | awk '{ print $1, $6, $7, $8 }' | indent
[[ ! -e /usr/sbin/l2tpd ]] || fail "/usr/sbin/l2tpd exists before dpkg -i: the VM is not clean"

section "dpkg -i"
log "dpkg -i $DEB"
dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1 || { indent <"$WORK/dpkg-i.log"; fail "dpkg -i failed"; }
indent <"$WORK/dpkg-i.log"
status=$(dpkg-query -W -f '${db:Status-Abbrev}' l2tpd)
[[ $status == "ii " ]] || fail "dpkg says l2tpd is '$status', not installed (ii)"
log "ok: l2tpd installed: $(dpkg-query -W -f '${Version}' l2tpd)"

for f in /usr/sbin/l2tpd /usr/bin/l2tpctl; do
    [[ -x $f ]] || fail "$f is missing or not executable"
done
for f in /usr/lib/systemd/system/l2tpd.service /etc/l2tpd/l2tpd.toml \
    /usr/lib/modules-load.d/l2tpd.conf \
    /usr/share/man/man8/l2tpd.8.gz /usr/share/man/man5/l2tpd.toml.5.gz /usr/share/man/man1/l2tpctl.1.gz \
    /usr/share/bash-completion/completions/l2tpctl /usr/share/zsh/vendor-completions/_l2tpctl \
    /usr/share/fish/vendor_completions.d/l2tpctl.fish \
    /usr/share/doc/l2tpd/copyright /usr/share/doc/l2tpd/changelog.Debian.gz; do
    [[ -s $f ]] || fail "$f is missing or empty"
done
log "ok: binaries, unit, example configuration, modules-load.d, man pages, completions, copyright, changelog"
for m in l2tp_netlink l2tp_ppp ppp_generic; do
    grep -qx "$m" /usr/lib/modules-load.d/l2tpd.conf || fail "modules-load.d/l2tpd.conf does not load $m"
done
dpkg-query -W -f '${Conffiles}\n' l2tpd | grep -q '^ /etc/l2tpd/l2tpd.toml ' ||
    fail "/etc/l2tpd/l2tpd.toml is not a conffile: $(dpkg-query -W -f '${Conffiles}' l2tpd)"
log "ok: /etc/l2tpd/l2tpd.toml is a conffile"
depends=$(dpkg-query -W -f '${Depends}' l2tpd)
for d in ppp util-linux libc6; do
    grep -qw "$d" <<<"$depends" || fail "Depends: $depends lacks $d"
done
log "ok: Depends: $depends"

section "the unit: enabled, not started (no systemd running)"
# The maintainer scripts start the unit only where /run/systemd/system exists.
if [[ -d /run/systemd/system ]]; then
    log "note: /run/systemd/system exists, but systemd is not PID 1 ($(cat /proc/1/comm))"
else
    log "ok: no /run/systemd/system: the maintainer scripts leave the unit alone"
fi
[[ -L /etc/systemd/system/multi-user.target.wants/l2tpd.service ]] ||
    fail "l2tpd.service is not enabled (no multi-user.target.wants link): $(ls -l /etc/systemd/system/multi-user.target.wants/ 2>&1)"
log "ok: enabled: $(readlink /etc/systemd/system/multi-user.target.wants/l2tpd.service)"
[[ -z $(pgrep -x l2tpd) ]] || fail "an l2tpd runs after dpkg -i: the maintainer scripts started one"
log "ok: no l2tpd started"

section "l2tpd check on the installed example configuration"
/usr/sbin/l2tpd check >"$WORK/check.toml" 2>"$WORK/check.err" ||
    { cat "$WORK/check.err"; fail "l2tpd check rejects the installed /etc/l2tpd/l2tpd.toml"; }
grep -q '^deny_remote_tunnel_creates = true$' "$WORK/check.toml" ||
    fail "the installed configuration accepts tunnels: $(grep deny_remote "$WORK/check.toml")"
! grep -q '^\[tunnel\.' "$WORK/check.toml" || fail "the installed configuration dials a tunnel"
log "ok: valid; refuses remote tunnels and dials none"

section "an LAC/LNS pair from /usr/sbin/l2tpd"
L2TPD=/usr/sbin/l2tpd
L2TPCTL=/usr/bin/l2tpctl
LAC_SOCK=$WORK/lac.sock
LNS_SOCK=$WORK/lns.sock
setup_netns
write_l2tpd_conf "$WORK/l2tpd-lns.toml" lns --api-socket "$LNS_SOCK"
write_l2tpd_conf "$WORK/l2tpd-lac.toml" lac --api-socket "$LAC_SOCK"
capture_start "$LAC_NS" "$LAC_IF"
start_l2tpd "$LNS_NS" "$WORK/l2tpd-lns.toml" "$RESULT_DIR/l2tpd-lns.log"
LNS_PID=$LAST_PID
start_l2tpd "$LAC_NS" "$WORK/l2tpd-lac.toml" "$RESULT_DIR/l2tpd-lac.log"
LAC_PID=$LAST_PID
wait_ppp_up "$LNS_NS" ppp0 "$LNS_PPP_IP" "$PPP_POOL_START" 60
wait_ppp_up "$LAC_NS" ppp0 "$PPP_POOL_START" "$LNS_PPP_IP" 30
assert_l2tp_mirror 1 1
assert_logged_tunnel "$RESULT_DIR/l2tpd-lac.log" "$LAC_TID" "$LNS_TID"
ping_ok "$LAC_NS" "$LNS_PPP_IP"
ping_ok "$LNS_NS" "$PPP_POOL_START"

section "the installed l2tpctl"
log "l2tpctl --socket $LAC_SOCK tunnel list"
"$L2TPCTL" --socket "$LAC_SOCK" tunnel list >"$WORK/lac-tunnels.txt" || fail "l2tpctl tunnel list (LAC) failed"
indent <"$WORK/lac-tunnels.txt"
grep -qw lac1 "$WORK/lac-tunnels.txt" || fail "l2tpctl tunnel list (LAC) does not show tunnel lac1"
grep -qw "$LAC_TID" "$WORK/lac-tunnels.txt" || fail "l2tpctl tunnel list (LAC) does not show tunnel id $LAC_TID"
log "l2tpctl --socket $LNS_SOCK tunnel list"
"$L2TPCTL" --socket "$LNS_SOCK" tunnel list >"$WORK/lns-tunnels.txt" || fail "l2tpctl tunnel list (LNS) failed"
indent <"$WORK/lns-tunnels.txt"
grep -qw "$LNS_TID" "$WORK/lns-tunnels.txt" || fail "l2tpctl tunnel list (LNS) does not show tunnel id $LNS_TID"
log "ok: l2tpctl shows tunnel $LAC_TID (LAC) and $LNS_TID (LNS)"

section "SIGTERM: clean shutdown"
for pid in "$LAC_PID" "$LNS_PID"; do kill -TERM "$pid"; done
for pid in "$LAC_PID" "$LNS_PID"; do
    wait_for "! kill -0 $pid" 30 "l2tpd $pid exits after SIGTERM"
    rc=0
    wait "$pid" || rc=$?
    ((rc == 0)) || fail "l2tpd $pid exited with status $rc after SIGTERM"
done
assert_nothing_left
capture_stop
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCRQ SCCRP SCCCN ICRQ ICRP ICCN"
assert_tshark_msgtypes "$CAPTURE_FILE" "SCCCN StopCCN"

section "the installed man pages"
for page in man8/l2tpd.8.gz man5/l2tpd.toml.5.gz man1/l2tpctl.1.gz; do
    name=$(basename "$page" .gz)
    MANWIDTH=80 man -l "/usr/share/man/$page" >"$WORK/$name.txt" 2>"$WORK/$name.err" ||
        { cat "$WORK/$name.err"; fail "man -l /usr/share/man/$page failed"; }
    head -n 8 "$WORK/$name.txt" | indent
    grep -q '^NAME' "$WORK/$name.txt" || fail "man -l $page renders no NAME section"
done
grep -q 'l2tpd - L2TPv2' "$WORK/l2tpd.8.txt" || fail "l2tpd(8) does not render its NAME line"
grep -q 'SIGHUP' "$WORK/l2tpd.8.txt" || fail "l2tpd(8) renders without its SIGNALS"
[[ $(man -w l2tpd) == /usr/share/man/man8/l2tpd.8.gz ]] ||
    fail "man -w l2tpd finds '$(man -w l2tpd 2>&1)', not the installed page"
log "ok: man -l renders l2tpd(8), l2tpd.toml(5), l2tpctl(1); man -w l2tpd finds the installed page"

section "dpkg --purge"
dpkg --purge l2tpd >"$WORK/dpkg-purge.log" 2>&1 || { indent <"$WORK/dpkg-purge.log"; fail "dpkg --purge l2tpd failed"; }
indent <"$WORK/dpkg-purge.log"
for f in /usr/sbin/l2tpd /usr/bin/l2tpctl /etc/l2tpd/l2tpd.toml /usr/lib/systemd/system/l2tpd.service \
    /etc/systemd/system/multi-user.target.wants/l2tpd.service; do
    [[ ! -e $f && ! -L $f ]] || fail "$f is still there after dpkg --purge"
done
log "ok: purged: binaries, conffile, unit and its enablement link are gone"
