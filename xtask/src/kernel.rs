//! The guest kernel: a stock Debian kernel package, unpacked (never
//! installed) into `target/vm/kernel/<package>/` and reused from there.
//!
//! The package is resolved through the `linux-image-amd64` metapackage at run
//! time, because a pinned version disappears from the archive sooner or later.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::prereq::Apt;
use crate::util::{self, probe, run};

const METAPACKAGE: &str = "linux-image-amd64";
/// Written after a complete unpack; a directory without it is discarded.
const COMPLETE_MARKER: &str = ".xtask-complete";

pub(crate) fn cache_root() -> PathBuf {
    util::target_dir().join("vm").join("kernel")
}

/// Return the path of a bootable `vmlinuz`, downloading and unpacking the
/// current Debian kernel package if it is not cached yet.
pub(crate) fn ensure(apt: &mut Apt) -> Result<PathBuf> {
    let root = cache_root();
    let package = match resolve_package(apt) {
        Ok(p) => p,
        Err(err) => {
            // Offline, or apt has no lists: any complete cached kernel will do.
            if let Some(dir) = newest_cached(&root) {
                eprintln!(
                    "xtask: warning: {err:#}; using the cached kernel in {}",
                    dir.display()
                );
                return vmlinuz_in(&dir);
            }
            return Err(err.context("no cached kernel under target/vm/kernel either"));
        }
    };
    let dir = root.join(&package);
    if dir.join(COMPLETE_MARKER).exists() {
        return vmlinuz_in(&dir);
    }
    util::banner(&format!(
        "fetching guest kernel {package} (unpacked into {})",
        dir.display()
    ));
    let download = root.join("download");
    fs::create_dir_all(&download)?;
    let deb = match find_deb(&download, &package)? {
        Some(deb) => deb,
        None => {
            run(Command::new("apt-get")
                .args(["-o", "APT::Sandbox::User=root", "download", &package])
                .current_dir(&download))
            .with_context(|| format!("apt-get download {package} failed"))?;
            find_deb(&download, &package)?
                .with_context(|| format!("apt-get download left no {package}_*.deb"))?
        }
    };
    let partial = root.join(format!("{package}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial))
        .with_context(|| format!("cannot unpack {}", deb.display()))?;
    fs::write(
        partial.join(COMPLETE_MARKER),
        format!("{}\n", deb.display()),
    )?;
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::rename(&partial, &dir)?;
    fs::remove_file(&deb)?;
    vmlinuz_in(&dir)
}

/// `apt-cache depends linux-image-amd64` → e.g. `linux-image-6.1.0-56-amd64`;
/// runs `apt-get update` once if apt does not know the metapackage yet.
fn resolve_package(apt: &mut Apt) -> Result<String> {
    let query = || {
        probe(Command::new("apt-cache").args(["depends", METAPACKAGE]))
            .and_then(|out| parse_depends(&out))
    };
    if let Some(p) = query() {
        return Ok(p);
    }
    apt.update_once()?;
    query()
        .with_context(|| format!("`apt-cache depends {METAPACKAGE}` names no linux-image package"))
}

/// The first `Depends: linux-image-…` line of `apt-cache depends` output.
fn parse_depends(out: &str) -> Option<String> {
    out.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("Depends:")?.trim();
        let name = rest.split_whitespace().next()?;
        (name.starts_with("linux-image-") && !name.starts_with('<')).then(|| name.to_string())
    })
}

fn find_deb(dir: &Path, package: &str) -> Result<Option<PathBuf>> {
    let prefix = format!("{package}_");
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

fn newest_cached(root: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(root).ok()?;
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(COMPLETE_MARKER).exists())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
}

fn vmlinuz_in(dir: &Path) -> Result<PathBuf> {
    let boot = dir.join("boot");
    let mut found: Vec<PathBuf> = fs::read_dir(&boot)
        .with_context(|| format!("{} has no boot/ directory", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some(v) => Ok(v),
        None => bail!("no vmlinuz-* in {}", boot.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_parsing() {
        let out = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n  Recommends: x\n";
        assert_eq!(
            parse_depends(out).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(
            parse_depends("linux-image-amd64\n  Depends: <linux-image>\n"),
            None
        );
        assert_eq!(parse_depends(""), None);
    }
}
