//! Host prerequisites for the VM: Debian packages and virtme-ng.
//!
//! Each is detected with a cheap check and installed only when missing; what
//! gets installed is printed. A prerequisite that cannot be had is an error
//! with the reason, never a silent skip.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::util::{self, probe, run};

/// Debian packages the VM harness needs on the host (the guest runs the
/// host's own binaries), with why.
const DEB_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "qemu-system-x86_64 runs the VM"),
    ("kmod", "modprobe in the guest"),
    (
        "udev",
        "the guest finds vng's virtio-serial ports (else no output, exit 255)",
    ),
    (
        "busybox-static",
        "vng builds an initramfs with it (the kernel's 9p is a module)",
    ),
    ("ppp", "pppd and pppol2tp.so"),
    ("xl2tpd", "the reference peer"),
    (
        "freeradius",
        "the RADIUS server of scenario 97 (pppd's radius.so on the LNS)",
    ),
    ("iproute2", "ip netns, ip l2tp"),
    ("iputils-ping", "ping across the tunnels"),
    ("tshark", "dumpcap and tshark for captures"),
    ("procps", "ps, pgrep"),
    ("psmisc", "killall, fuser, pstree for diagnostics"),
    (
        "man-db",
        "man -l renders the packaged man pages (95-deb-install)",
    ),
];

/// debconf answer so installing tshark never stops to ask.
const TSHARK_PRESEED: &str = "wireshark-common wireshark-common/install-setuid boolean false\n";

/// apt-get, with `apt-get update` run at most once per xtask invocation.
#[derive(Default)]
pub(crate) struct Apt {
    updated: bool,
}

impl Apt {
    pub(crate) fn update_once(&mut self) -> Result<()> {
        if !self.updated {
            require_root("apt-get update")?;
            run(Command::new("apt-get").arg("update"))
                .context("apt-get update failed; are the package registries reachable?")?;
            self.updated = true;
        }
        Ok(())
    }

    pub(crate) fn install(&mut self, packages: &[&str]) -> Result<()> {
        if packages.is_empty() {
            return Ok(());
        }
        require_root(&format!("apt-get install {}", packages.join(" ")))?;
        self.update_once()?;
        if packages
            .iter()
            .any(|p| *p == "tshark" || *p == "wireshark-common")
        {
            // tshark asks whether non-root users may capture; never block on it.
            preseed(TSHARK_PRESEED)?;
        }
        // --no-remove: never take packages away to make room (a host with
        // another QEMU's qemu-utils lost it that way); apt stops instead.
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-remove"])
            .args(packages))
        .with_context(|| {
            format!(
                "could not install {} (if apt-get wanted to remove packages to do it, \
                 resolve that conflict by hand, then run again)",
                packages.join(" ")
            )
        })
    }
}

fn preseed(selections: &str) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new("debconf-set-selections")
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot run debconf-set-selections")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(selections.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("debconf-set-selections failed ({status})");
    }
    Ok(())
}

fn require_root(what: &str) -> Result<()> {
    if !util::is_root() {
        bail!("`{what}` needs root; run cargo xtask as root or install it yourself");
    }
    Ok(())
}

/// Which of `packages` dpkg does not list as installed.
pub(crate) fn missing_debs<'a>(packages: &[&'a str]) -> Result<Vec<&'a str>> {
    if !util::have_program("dpkg-query") {
        bail!("dpkg-query not found: the VM harness needs a Debian-based host (apt, dpkg)");
    }
    // Exit status is 1 when some package is unknown; stdout still lists the rest.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package}\t${db:Status-Abbrev}\n"])
        .args(packages)
        .stderr(Stdio::null())
        .output()
        .context("cannot run dpkg-query")?;
    Ok(parse_missing(
        packages,
        &String::from_utf8_lossy(&out.stdout),
    ))
}

/// `dpkg-query -W -f '${Package}\t${db:Status-Abbrev}\n'` output: a package
/// is installed when its status starts with "ii".
fn parse_missing<'a>(packages: &[&'a str], dpkg_output: &str) -> Vec<&'a str> {
    let installed: Vec<&str> = dpkg_output
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, status)| status.starts_with("ii"))
        .map(|(name, _)| name.split(':').next().unwrap_or(name))
        .collect();
    packages
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect()
}

/// Tools found or installed for booting the VM.
pub(crate) struct Tools {
    pub vng: PathBuf,
}

/// Make sure every host prerequisite of the VM is present.
pub(crate) fn ensure(apt: &mut Apt) -> Result<Tools> {
    if std::env::consts::ARCH != "x86_64" {
        bail!(
            "the VM harness boots an amd64 Debian kernel; this host is {}",
            std::env::consts::ARCH
        );
    }
    let names: Vec<&str> = DEB_PACKAGES.iter().map(|(p, _)| *p).collect();
    let missing = missing_debs(&names)?;
    if !missing.is_empty() {
        util::banner("installing missing Debian packages");
        for (pkg, why) in DEB_PACKAGES.iter().filter(|(p, _)| missing.contains(p)) {
            eprintln!("    {pkg:16} {why}");
        }
        apt.install(&missing)?;
    }
    let vng = ensure_vng(apt)?;
    Ok(Tools { vng })
}

/// `vng` (virtme-ng, from PyPI): on `$PATH`, in python's scripts dir, or
/// installed with pip.
fn ensure_vng(apt: &mut Apt) -> Result<PathBuf> {
    if let Some(vng) = find_vng() {
        return Ok(vng);
    }
    util::banner("installing virtme-ng (provides vng) with pip");
    if probe(Command::new("python3").args(["-m", "pip", "--version"])).is_none() {
        eprintln!("    python3-pip      pip itself");
        apt.install(&["python3-pip"])?;
    }
    let pip = |extra: &[&str]| {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "pip", "install", "--root-user-action=ignore"]);
        cmd.args(extra).arg("virtme-ng");
        util::status(&mut cmd)
    };
    if !pip(&[])?.success() {
        // Debian's python refuses system-wide pip installs (PEP 668).
        eprintln!("xtask: retrying pip with --break-system-packages (PEP 668 host python)");
        if !pip(&["--break-system-packages"])?.success() {
            bail!("pip install virtme-ng failed; install it by hand (provides `vng`)");
        }
    }
    find_vng().context(
        "virtme-ng installed but `vng --version` does not run (not on PATH, \
         nor in python3's scripts directory)",
    )
}

fn find_vng() -> Option<PathBuf> {
    let works = |p: &PathBuf| probe(Command::new(p).arg("--version")).is_some();
    if let Some(p) = util::which("vng").filter(works) {
        return Some(p);
    }
    let scripts = probe(Command::new("python3").args([
        "-c",
        "import sysconfig; print(sysconfig.get_path('scripts'))",
    ]))?;
    let candidates = [
        PathBuf::from(scripts.trim()).join("vng"),
        PathBuf::from("/usr/local/bin/vng"),
    ];
    candidates.into_iter().find(works)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_parsing() {
        let out = "qemu-system-x86\tii \nkmod\trc \nppp:amd64\tii \nudev\tun \n";
        let wanted = ["qemu-system-x86", "kmod", "ppp", "udev", "xl2tpd"];
        assert_eq!(parse_missing(&wanted, out), vec!["kmod", "udev", "xl2tpd"]);
    }
}
