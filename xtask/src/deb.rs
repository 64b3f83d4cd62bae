//! `cargo xtask deb [--profile release|dev] [--no-build] [--no-lintian]`:
//! the Debian package `l2tpd`, made by cargo-deb from the
//! `[package.metadata.deb]` table of `crates/l2tpd/Cargo.toml`, then checked
//! with lintian (which must report no error).
//!
//! Steps: build `l2tpd` and `l2tpctl` with the profile; generate what the
//! binaries know and cargo-deb cannot (the l2tpctl(1) man page and the bash,
//! zsh and fish completions, from `l2tpctl man` and `l2tpctl completions`)
//! into `packaging/generated/` (ignored by git; the path the metadata
//! names); `cargo deb -p l2tpd --no-build --profile P` into
//! `<target>/debian/<profile>/`; `lintian` on the result.
//!
//! cargo-deb is installed with `cargo install --locked` at the version this
//! module was written against ([`CARGO_DEB_VERSION`]) when `cargo deb` is
//! missing or another version; dpkg-dev (dpkg-shlibdeps, for the `$auto`
//! dependencies) and lintian with apt-get when missing.
//!
//! The `dev` profile (the debug binaries that `cargo xtask integration`
//! builds anyway) is what the VM scenario installs: a release build would add
//! minutes to every test run. cargo-deb warns that it does not support `dev`
//! and packages it all the same (stripped, like a release build).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::prereq::{Apt, missing_debs};
use crate::util;

/// The cargo-deb release this packaging is written and tested against.
pub(crate) const CARGO_DEB_VERSION: &str = "3.8.0";

/// Debian packages `deb` needs on the host, with why.
const DEB_PACKAGES: &[(&str, &str)] = &[
    (
        "dpkg-dev",
        "dpkg-shlibdeps: the shared-library dependencies of the binaries",
    ),
    ("lintian", "checks the package against Debian policy"),
];

/// The binaries the package holds.
const BINARIES: [&str; 2] = ["l2tpd", "l2tpctl"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Profile {
    /// Optimised binaries (target/release): the package to install.
    Release,
    /// The debug binaries (target/debug), quick to get: for the VM test.
    Dev,
}

impl Profile {
    /// The name cargo knows the profile by.
    fn cargo_name(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Dev => "dev",
        }
    }

    /// The directory of `target/` cargo builds the profile into.
    fn dir_name(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Dev => "debug",
        }
    }
}

#[derive(clap::Args)]
/// Build the Debian package (cargo-deb) and check it with lintian.
pub(crate) struct Args {
    /// Build profile of the packaged binaries.
    #[arg(long, value_enum, default_value = "release")]
    pub profile: Profile,
    /// Package the binaries already built; do not run `cargo build`.
    #[arg(long)]
    pub no_build: bool,
    /// Do not run lintian on the package.
    #[arg(long)]
    pub no_lintian: bool,
}

pub(crate) fn run(args: Args) -> Result<std::process::ExitCode> {
    let deb = build_package(args.profile, !args.no_build, !args.no_lintian)?;
    println!("{}", deb.display());
    Ok(std::process::ExitCode::SUCCESS)
}

/// Build the package (and lint it when `lint`); returns the `.deb`'s path.
/// Errors: a tool cannot be installed, a build step fails, or lintian
/// reports an error (its report is printed).
pub(crate) fn build_package(profile: Profile, build: bool, lint: bool) -> Result<PathBuf> {
    let mut apt = Apt::default();
    ensure_tools(&mut apt, lint)?;
    if build {
        util::banner(&format!(
            "building l2tpd and l2tpctl ({})",
            profile.cargo_name()
        ));
        let mut cmd = util::cargo();
        cmd.args(["build", "--profile", profile.cargo_name()]);
        for b in BINARIES {
            cmd.args(["-p", b]);
        }
        util::run(&mut cmd)?;
    }
    let bin_dir = util::target_dir().join(profile.dir_name());
    for b in BINARIES {
        let p = bin_dir.join(b);
        if !p.is_file() {
            bail!(
                "{} does not exist: build it first (cargo build --profile {} -p {b})",
                p.display(),
                profile.cargo_name()
            );
        }
    }
    generate_assets(&bin_dir.join("l2tpctl"), &assets_dir())?;

    util::banner("cargo deb");
    let out_dir = util::target_dir().join("debian").join(profile.dir_name());
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut cmd = util::cargo();
    cmd.args(["deb", "-p", "l2tpd", "--no-build", "--profile"])
        .arg(profile.cargo_name())
        .arg("--output")
        .arg(&out_dir);
    eprintln!("$ {}", util::display(&cmd));
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run cargo deb")?;
    if !out.status.success() {
        bail!("cargo deb failed ({})", out.status);
    }
    let deb = deb_path(&String::from_utf8_lossy(&out.stdout)).with_context(|| {
        format!(
            "cargo deb printed no .deb path: {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    eprintln!("package: {}", deb.display());
    if lint {
        lintian(&deb)?;
    }
    Ok(deb)
}

/// Where the generated assets go: the path `crates/l2tpd/Cargo.toml` names.
fn assets_dir() -> PathBuf {
    util::project_root().join("packaging").join("generated")
}

/// The l2tpctl(1) man page and its shell completions, from `l2tpctl` itself.
fn generate_assets(l2tpctl: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let outputs: [(&[&str], &str); 4] = [
        (&["man"], "l2tpctl.1"),
        (&["completions", "bash"], "l2tpctl.bash"),
        (&["completions", "zsh"], "_l2tpctl"),
        (&["completions", "fish"], "l2tpctl.fish"),
    ];
    for (args, file) in outputs {
        let out = Command::new(l2tpctl)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {}", l2tpctl.display()))?;
        if !out.status.success() || out.stdout.is_empty() {
            bail!(
                "`l2tpctl {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let path = dir.join(file);
        fs::write(&path, &out.stdout)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The package path cargo-deb prints on stdout: its last line ending `.deb`.
fn deb_path(stdout: &str) -> Option<PathBuf> {
    stdout
        .lines()
        .map(str::trim)
        .rfind(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
}

/// `lintian` on `deb`: its report printed; an error unless it found no error.
fn lintian(deb: &Path) -> Result<()> {
    util::banner("lintian");
    let mut cmd = Command::new("lintian");
    // --fail-on error: warnings are reported, not fatal.
    cmd.args(["--fail-on", "error"]).arg(deb);
    let status = util::status(&mut cmd)?;
    if !status.success() {
        bail!("lintian reports errors in {} ({status})", deb.display());
    }
    Ok(())
}

/// cargo-deb at [`CARGO_DEB_VERSION`], and the Debian packages.
fn ensure_tools(apt: &mut Apt, lint: bool) -> Result<()> {
    let wanted: Vec<&str> = DEB_PACKAGES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| lint || *p != "lintian")
        .collect();
    let missing = missing_debs(&wanted)?;
    if !missing.is_empty() {
        util::banner("installing missing Debian packages");
        for (pkg, why) in DEB_PACKAGES.iter().filter(|(p, _)| missing.contains(p)) {
            eprintln!("    {pkg:16} {why}");
        }
        apt.install(&missing)?;
    }
    let version = util::probe(util::cargo().args(["deb", "--version"]));
    if version.as_deref().and_then(cargo_deb_version) != Some(CARGO_DEB_VERSION) {
        util::banner(&format!("installing cargo-deb {CARGO_DEB_VERSION}"));
        util::run(util::cargo().args([
            "install",
            "cargo-deb",
            "--locked",
            "--version",
            &format!("={CARGO_DEB_VERSION}"),
        ]))
        .context("cargo install cargo-deb failed (crates.io must be reachable)")?;
    }
    Ok(())
}

/// The version in `cargo deb --version`'s output (`cargo-deb 3.8.0` or a bare
/// `3.8.0`).
fn cargo_deb_version(output: &str) -> Option<&str> {
    output.split_whitespace().find(|w| {
        w.split('.').count() == 3 && w.split('.').all(|n| n.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deb_path_is_the_last_deb_line() {
        let out = "warning: x\n/w/target/debian/release/l2tpd_0.1.0-1_amd64.deb\n";
        assert_eq!(
            deb_path(out),
            Some(PathBuf::from(
                "/w/target/debian/release/l2tpd_0.1.0-1_amd64.deb"
            ))
        );
        assert_eq!(deb_path("no package here\n"), None);
    }

    #[test]
    fn cargo_deb_versions_are_read() {
        assert_eq!(cargo_deb_version("cargo-deb 3.8.0\n"), Some("3.8.0"));
        assert_eq!(cargo_deb_version("3.8.0"), Some("3.8.0"));
        assert_eq!(cargo_deb_version("cargo-deb v3.x"), None);
    }

    /// Every asset the metadata names exists in the tree, or is one that
    /// `generate_assets` writes, or a binary cargo builds.
    #[test]
    fn the_package_metadata_names_existing_or_generated_files() {
        let crate_dir = util::project_root().join("crates").join("l2tpd");
        let manifest = fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
        let generated = ["l2tpctl.1", "l2tpctl.bash", "_l2tpctl", "l2tpctl.fish"];
        let mut sources = Vec::new();
        for line in manifest.lines() {
            let l = line.trim();
            if let Some(rest) = l.strip_prefix("[\"")
                && let Some(src) = rest.split('"').next()
            {
                sources.push(src.to_string());
            }
        }
        assert!(sources.len() >= 10, "assets not found: {sources:?}");
        for src in &sources {
            if let Some(bin) = src.strip_prefix("target/release/") {
                assert!(BINARIES.contains(&bin), "{src}");
            } else if let Some(g) = src.strip_prefix("../../packaging/generated/") {
                assert!(generated.contains(&g), "{src} is not generated");
            } else {
                assert!(crate_dir.join(src).is_file(), "{src} does not exist");
            }
        }
        for f in [
            "../../systemd/l2tpd.service",
            "../../packaging/debian/changelog",
        ] {
            assert!(crate_dir.join(f).is_file(), "{f}");
        }
    }
}
