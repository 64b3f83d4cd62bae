//! pppd supervision: one pppd per PPP session, started on the connected
//! PPPoL2TP socket with the `pppol2tp.so` plugin, its output logged, its exit
//! reported back to the daemon loop.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

/// What the supervisor reports to the daemon loop.
#[derive(Debug)]
pub(crate) enum PppEvent {
    /// pppd reported the interface it created ("Using interface ppp0").
    Interface { key: SessionKey, ifname: String },
    /// The PPP interface is up (rtnetlink): its addresses as `local peer/prefix` text.
    LinkUp {
        key: SessionKey,
        ifname: String,
        addrs: Vec<String>,
    },
    /// The PPP interface was not seen up: not within [`LINK_UP_TIMEOUT`], or
    /// it could not be watched (the error's text).
    LinkNotUp {
        key: SessionKey,
        ifname: String,
        error: String,
    },
    /// A report from pppd's `openl2tp.so` plugin.
    Plugin(crate::ppp_events::PluginEvent),
    /// pppd exited.
    Exited {
        key: SessionKey,
        pid: u32,
        code: Option<i32>,
        signal: Option<i32>,
    },
}

/// How long to wait for a PPP interface pppd named to come up (IPCP done).
const LINK_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The daemon's one [`l2tp_kernel::LinkWatcher`] (one rtnetlink notification socket
/// shared by every session), created on first use on the calling runtime and created
/// again if it died (socket error, or the runtime that owned it shut down).
fn link_watcher() -> Result<l2tp_kernel::LinkWatcher, l2tp_kernel::Error> {
    static WATCHER: std::sync::Mutex<Option<l2tp_kernel::LinkWatcher>> =
        std::sync::Mutex::new(None);
    let mut slot = WATCHER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(w) = slot.as_ref().filter(|w| w.is_alive()) {
        return Ok(w.clone());
    }
    let w = l2tp_kernel::LinkWatcher::new()?;
    *slot = Some(w.clone());
    Ok(w)
}

/// Wait (bounded by [`LINK_UP_TIMEOUT`]) for `ifname` to be up and report it with its
/// addresses as [`PppEvent::LinkUp`]. Driven by rtnetlink notifications through the
/// shared watcher: one query when the wait starts, no polling. Must be called on the
/// daemon's tokio runtime.
pub(crate) fn watch_link(key: SessionKey, ifname: String, events: mpsc::UnboundedSender<PppEvent>) {
    let watcher = match link_watcher() {
        Ok(w) => w,
        Err(e) => {
            let error = format!("cannot watch the PPP interface: {e}");
            let _ = events.send(PppEvent::LinkNotUp { key, ifname, error });
            return;
        }
    };
    tokio::spawn(async move {
        // Returns once the link is up with an IPv4 address (IPCP done), or a short
        // grace (l2tp_kernel::IPV4_GRACE) after it went up without one.
        match watcher.wait_up(&ifname, LINK_UP_TIMEOUT).await {
            Ok(info) => {
                let addrs = info
                    .addrs
                    .iter()
                    .map(|(ip, len, peer)| match peer {
                        Some(p) => format!("{ip} peer {p}/{len}"),
                        None => format!("{ip}/{len}"),
                    })
                    .collect();
                let _ = events.send(PppEvent::LinkUp { key, ifname, addrs });
            }
            Err(e) => {
                let error = format!("PPP interface did not come up: {e}");
                let _ = events.send(PppEvent::LinkNotUp { key, ifname, error });
            }
        }
    });
}

/// (our tunnel id, our session id), as u16 values of RFC 2661.
pub(crate) type SessionKey = (u16, u16);

/// How to start pppd for one session. Its `Debug` redacts the password.
#[derive(Clone)]
pub(crate) struct PppLaunch {
    /// pppd binary, normally `/usr/sbin/pppd`.
    pub pppd: std::path::PathBuf,
    /// Our tunnel id.
    pub tunnel_id: u16,
    /// Our session id.
    pub session_id: u16,
    /// We are the LNS (adds `pppol2tp_lns_mode`).
    pub lns_mode: bool,
    /// Profile-derived options (mtu, addresses, auth, extra options).
    pub options: Vec<String>,
    /// `ipparam` value handed to pppd's ip-up scripts.
    pub ipparam: String,
    /// Load `openl2tp.so` after `pppol2tp.so` so that pppd reports ACCM and up/down.
    pub event_plugin: bool,
}

impl std::fmt::Debug for PppLaunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PppLaunch")
            .field("pppd", &self.pppd)
            .field("tunnel_id", &self.tunnel_id)
            .field("session_id", &self.session_id)
            .field("lns_mode", &self.lns_mode)
            .field("options", &loggable_args(&self.options))
            .field("ipparam", &self.ipparam)
            .field("event_plugin", &self.event_plugin)
            .finish()
    }
}

impl PppLaunch {
    /// The full pppd argument vector (reference.md §4.1 for the plugin
    /// options), with the PPPoL2TP socket at descriptor `fd` in pppd.
    pub(crate) fn args(&self, fd: i32) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "plugin".into(),
            "pppol2tp.so".into(),
            "pppol2tp".into(),
            fd.to_string(),
        ];
        if self.event_plugin {
            // Must come after pppol2tp.so, whose hooks it chains.
            a.extend(["plugin".into(), "openl2tp.so".into()]);
        }
        if self.lns_mode {
            a.push("pppol2tp_lns_mode".into());
        }
        a.extend([
            "pppol2tp_tunnel_id".into(),
            self.tunnel_id.to_string(),
            "pppol2tp_session_id".into(),
            self.session_id.to_string(),
            // pppd must stay our child so that we see it exit, and must not
            // touch a tty.
            "nodetach".into(),
            "ipparam".into(),
            self.ipparam.clone(),
        ]);
        a.extend(self.options.iter().cloned());
        a
    }
}

/// pppd's arguments joined for a log line, the value of `password` (the
/// PPP password, a secret) shown as `<redacted>`.
fn loggable_args(args: &[String]) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(args.len());
    let mut after_password = false;
    for a in args {
        out.push(if after_password { "<redacted>" } else { a });
        after_password = a == "password";
    }
    out.join(" ")
}

/// Text of pppd's exit codes (pppd(8), "EXIT STATUS").
pub(crate) fn exit_text(code: i32) -> &'static str {
    match code {
        0 => "pppd detached or the link was terminated normally",
        1 => "fatal error",
        2 => "error in options",
        3 => "pppd is not setuid-root and the invoking user is not root",
        4 => "the kernel does not support PPP",
        5 => "terminated by a signal",
        6 => "the serial port could not be locked",
        7 => "the serial port could not be opened",
        8 => "the connect script failed",
        9 => "the pty command could not be run",
        10 => "PPP negotiation failed",
        11 => "the peer failed to authenticate itself",
        12 => "the link was idle and was terminated",
        13 => "the connect time limit was reached",
        14 => "callback negotiated",
        15 => "the peer is not responding to echo requests",
        16 => "the link was terminated by the modem hanging up",
        17 => "PPP negotiation failed because serial loopback was detected",
        18 => "the init script failed",
        19 => "we failed to authenticate ourselves to the peer",
        _ => "unknown exit status",
    }
}

/// util-linux `setpriv`, which l2tpd starts pppd through to give it a
/// parent-death signal (`setpriv --pdeathsig TERM -- pppd ...`, prctl
/// `PR_SET_PDEATHSIG`), so that no pppd outlives l2tpd, however l2tpd ends
/// (`kill -9` included): pppd then terminates its link, removes its interface
/// and route and runs its ip-down scripts. Looked up once; `None` (with a
/// warning logged once) when no `setpriv` is installed, in which case the
/// next start's reconciliation (see `daemon::state`) stops orphaned pppds.
const SETPRIV_PATHS: [&str; 2] = ["/usr/bin/setpriv", "/bin/setpriv"];

/// The `setpriv` binary, if installed (see [`SETPRIV_PATHS`]).
fn setpriv() -> Option<&'static Path> {
    static SETPRIV: std::sync::OnceLock<Option<&'static Path>> = std::sync::OnceLock::new();
    *SETPRIV.get_or_init(|| {
        let found = SETPRIV_PATHS.iter().map(Path::new).find(|p| p.exists());
        if found.is_none() {
            tracing::warn!(
                "setpriv (util-linux) not found: pppd gets no parent-death signal and \
                 would outlive l2tpd if l2tpd were killed (the next start stops it)"
            );
        }
        found
    })
}

/// Start pppd on `fd` (the connected PPPoL2TP socket; ownership passes to the
/// child). Returns the pid. Output lines are logged; the interface name and the
/// exit are sent on `events`.
///
/// pppd is started through `setpriv --pdeathsig TERM` (see [`setpriv`]): the
/// signal is sent when the thread that started it ends, which is the
/// data-plane worker's (see `daemon::worker`), so only when l2tpd ends.
/// `setpriv` execs pppd in place: the pid, stdout and stderr are pppd's.
///
/// pppd inherits the socket at its own descriptor number (close-on-exec is
/// cleared on it, and the parent closes its copy right after): with no code
/// to run between fork and exec, the standard library starts pppd with
/// `posix_spawn` (a vfork) instead of copying the daemon's page tables with
/// fork, which keeps the protocol loop from stalling when many calls start
/// at once. Spawns happen on the data-plane worker only, one at a time, so
/// no other child can inherit the socket.
pub(crate) fn spawn(
    launch: &PppLaunch,
    fd: OwnedFd,
    events: mpsc::UnboundedSender<PppEvent>,
) -> anyhow::Result<u32> {
    let key = (launch.tunnel_id, launch.session_id);
    let args = launch.args(fd.as_raw_fd());
    tracing::debug!(
        tunnel_id = key.0,
        session_id = key.1,
        "exec {} {}",
        launch.pppd.display(),
        loggable_args(&args)
    );
    if !Path::new(&launch.pppd).exists() {
        anyhow::bail!("pppd not found at {}", launch.pppd.display());
    }
    let mut cmd = match setpriv() {
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "TERM", "--"]).arg(&launch.pppd);
            c
        }
        None => Command::new(&launch.pppd),
    };
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .context("clearing close-on-exec on the PPPoL2TP socket")?;
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", launch.pppd.display()))?;
    // Close the parent's copy of the PPPoL2TP socket now: pppd holds the session.
    drop(fd);
    let pid = child.id().unwrap_or(0);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_lines(out, key, events.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_lines(err, key, events.clone()));
    }
    tokio::spawn(async move {
        let status = child.wait().await;
        let (code, signal) = match status {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                (s.code(), s.signal())
            }
            Err(e) => {
                tracing::warn!(
                    tunnel_id = key.0,
                    session_id = key.1,
                    "waiting for pppd: {e}"
                );
                (None, None)
            }
        };
        let _ = events.send(PppEvent::Exited {
            key,
            pid,
            code,
            signal,
        });
    });
    Ok(pid)
}

async fn forward_lines<R: tokio::io::AsyncRead + Unpin>(
    r: R,
    key: SessionKey,
    events: mpsc::UnboundedSender<PppEvent>,
) {
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "l2tpd::pppd", tunnel_id = key.0, session_id = key.1, "pppd: {line}");
        if let Some(ifname) = line.strip_prefix("Using interface ") {
            let _ = events.send(PppEvent::Interface {
                key,
                ifname: ifname.trim().to_string(),
            });
        }
    }
}

/// Ask pppd to terminate the link and exit (SIGTERM, pppd(8) "SIGNALS").
pub(crate) fn terminate(pid: u32) {
    if pid == 0 {
        return;
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lns_args_carry_plugin_mode_and_ids() {
        let l = PppLaunch {
            pppd: "/usr/sbin/pppd".into(),
            tunnel_id: 7,
            session_id: 9,
            lns_mode: true,
            options: vec!["mtu".into(), "1400".into()],
            ipparam: "lac1".into(),
            event_plugin: true,
        };
        let a = l.args(3);
        assert_eq!(&a[..4], ["plugin", "pppol2tp.so", "pppol2tp", "3"]);
        let pos = |s: &str| a.iter().position(|x| x == s).unwrap();
        assert_eq!(a[pos("pppol2tp_tunnel_id") + 1], "7");
        assert_eq!(a[pos("pppol2tp_session_id") + 1], "9");
        assert!(a.contains(&"pppol2tp_lns_mode".to_string()));
        assert!(a.contains(&"nodetach".to_string()));
        let plugin = |name: &str| {
            a.windows(2)
                .position(|w| w[0] == "plugin" && w[1] == name)
                .unwrap()
        };
        assert!(
            plugin("pppol2tp.so") < plugin("openl2tp.so"),
            "openl2tp.so chains pppol2tp.so's hooks"
        );
        assert_eq!(&a[a.len() - 2..], ["mtu", "1400"]);
    }

    #[test]
    fn a_radius_lns_profile_gives_pppd_its_plugins_after_pppol2tp() {
        let dir = std::env::temp_dir().join(format!("l2tpd-radius-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("radiusclient.conf");
        std::fs::write(&conf, "authserver 127.0.0.1:1812\n").unwrap();
        let text = format!(
            "[ppp_profile.default]\nlocal_ipaddr = \"198.51.100.1\"\nauth_peer = true\n\
             auth_pap = false\nauth_mschapv1 = false\nauth_mschapv2 = false\n\
             auth_eap = false\nradius = true\nradius_config_file = \"{}\"\n\
             radius_avpairs = [\"NAS-Identifier=lns1\"]\nradattr = true\n",
            conf.display()
        );
        let c = l2tp_config::Config::from_str(&text, std::path::Path::new("/etc/l2tpd/t.toml"));
        std::fs::remove_dir_all(&dir).unwrap();
        let ppp = c.unwrap().ppp_profile("default").unwrap();
        let l = PppLaunch {
            pppd: "/usr/sbin/pppd".into(),
            tunnel_id: 7,
            session_id: 9,
            lns_mode: true,
            options: ppp.pppd_args(true, None),
            ipparam: "lac1".into(),
            event_plugin: false,
        };
        assert_eq!(
            l.args(3).join(" "),
            format!(
                "plugin pppol2tp.so pppol2tp 3 pppol2tp_lns_mode \
                 pppol2tp_tunnel_id 7 pppol2tp_session_id 9 nodetach ipparam lac1 \
                 mtu 1500 mru 1500 198.51.100.1: auth require-chap \
                 refuse-pap refuse-mschap refuse-mschap-v2 refuse-eap \
                 plugin radius.so radius-config-file {} avpair NAS-Identifier=lns1 \
                 plugin radattr.so",
                conf.display()
            )
        );
    }

    #[test]
    fn the_password_is_redacted_in_the_logged_command_line() {
        let args: Vec<String> = ["user", "me", "password", "hunter2", "mtu", "1400"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(loggable_args(&args), "user me password <redacted> mtu 1400");
    }

    #[test]
    fn lac_args_have_no_lns_mode() {
        let l = PppLaunch {
            pppd: "/x".into(),
            tunnel_id: 1,
            session_id: 2,
            lns_mode: false,
            options: vec![],
            ipparam: "t".into(),
            event_plugin: false,
        };
        assert!(!l.args(3).contains(&"pppol2tp_lns_mode".to_string()));
        assert!(!l.args(3).contains(&"openl2tp.so".to_string()));
    }

    #[test]
    fn exit_codes_have_text() {
        assert_eq!(exit_text(10), "PPP negotiation failed");
        assert_eq!(exit_text(5), "terminated by a signal");
        assert_eq!(exit_text(99), "unknown exit status");
    }
}
