//! `l2tpd import FORMAT FILE`: turns an xl2tpd, kl2tpd (go-l2tp) or OpenL2TP
//! configuration into an equivalent `l2tpd.toml`, printed on stdout.
//!
//! Every source setting either becomes l2tpd keys, or a TOML comment saying
//! it has no equivalent. Settings whose loss or translation would change
//! what the daemon does (a refused IPsec SAref, xl2tpd's redial, a peer
//! deny list...) are also *findings that change behaviour*: they are listed
//! on stderr and the command exits with status 2 (the output is still
//! printed). A source that cannot be read or parsed exits with status 1 and
//! prints nothing. See `doc/migration.md` for the mapping of every setting.

mod doc;
mod kl2tpd;
mod openl2tp;
mod pppopts;
mod xl2tpd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(crate) use doc::{Doc, V};

/// The source formats `l2tpd import` reads.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Format {
    /// xl2tpd.conf(5) (INI-like: `[global]`, `[lns NAME]`, `[lac NAME]`), with
    /// the pppd options files its `pppoptfile` keys name.
    Xl2tpd {
        /// The xl2tpd configuration file, e.g. /etc/xl2tpd/xl2tpd.conf.
        file: PathBuf,
        /// xl2tpd's tunnel secrets (l2tp-secrets(5): `OUR-NAME PEER-NAME
        /// SECRET` lines, `*` matching any name), e.g. /etc/xl2tpd/l2tp-secrets.
        #[arg(long)]
        secrets: Option<PathBuf>,
    },
    /// kl2tpd.toml(5) of go-l2tp (`[tunnel.NAME]`, `[tunnel.NAME.session.NAME]`).
    Kl2tpd {
        /// The kl2tpd configuration file, e.g. /etc/kl2tpd/kl2tpd.toml.
        file: PathBuf,
    },
    /// openl2tpd.conf(5): OpenL2TP's `l2tpconfig` commands, one per line.
    Openl2tpd {
        /// The OpenL2TP configuration file, e.g. /etc/openl2tpd.conf.
        file: PathBuf,
    },
}

/// One source setting that did not carry over as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// `FILE:LINE` of the setting in the source (line numbers from 1).
    pub at: String,
    /// What happened to it, one line of text (already escaped for a terminal).
    pub text: String,
    /// True when l2tpd will behave differently from the source daemon.
    pub changes_behaviour: bool,
}

/// The result of one conversion: the l2tpd configuration and the findings
/// (each is also a comment in the configuration).
#[derive(Debug, Default)]
pub(crate) struct Import {
    /// The l2tpd configuration being built.
    pub doc: Doc,
    /// Settings without an exact equivalent, in source order.
    pub findings: Vec<Finding>,
}

impl Import {
    /// A new, empty conversion whose output starts with `header` comments.
    pub(crate) fn new(header: &[String]) -> Self {
        let mut doc = Doc::default();
        for h in header {
            doc.header.push(h.clone());
        }
        Self {
            doc,
            findings: Vec::new(),
        }
    }

    /// Records a setting with no (exact) equivalent: a comment in `table`
    /// (`&[]`: at the top of the file) and a finding. `changes_behaviour`
    /// makes the command exit non-zero.
    pub(crate) fn note(&mut self, table: &[&str], at: &str, text: String, changes_behaviour: bool) {
        let text = clean(&text);
        let comment = if changes_behaviour {
            format!("{text} [BEHAVIOUR CHANGES]")
        } else {
            text.clone()
        };
        if table.is_empty() {
            self.doc.header.push(comment);
        } else {
            self.doc.comment(table, &comment);
        }
        self.findings.push(Finding {
            at: clean(at),
            text,
            changes_behaviour,
        });
    }

    /// The findings that change behaviour.
    pub(crate) fn behaviour_changes(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.changes_behaviour)
    }
}

/// A source file that cannot be converted: it names the file and line.
#[derive(Debug)]
pub(crate) struct ImportError(pub String);

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Replaces control characters (and other non-printing characters) by
/// `\u{..}` escapes so that text from a source file is safe in a TOML
/// comment, a log line or on a terminal.
pub(crate) fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || c == '\u{7f}' || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads a source file: at most 16 MiB of UTF-8 text (a configuration file
/// is far smaller; the bound keeps a wrong path such as a device bounded).
pub(crate) fn read_source(path: &Path) -> Result<String, ImportError> {
    use std::io::Read;
    const MAX: u64 = 16 << 20;
    let f = std::fs::File::open(path).map_err(|e| {
        ImportError(format!(
            "{}: cannot open: {e}",
            clean(&path.display().to_string())
        ))
    })?;
    let mut buf = Vec::new();
    f.take(MAX + 1).read_to_end(&mut buf).map_err(|e| {
        ImportError(format!(
            "{}: cannot read: {e}",
            clean(&path.display().to_string())
        ))
    })?;
    if buf.len() as u64 > MAX {
        return Err(ImportError(format!(
            "{}: larger than 16 MiB, not a configuration file",
            clean(&path.display().to_string())
        )));
    }
    String::from_utf8(buf).map_err(|e| {
        ImportError(format!(
            "{}: not UTF-8 text (byte {})",
            clean(&path.display().to_string()),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Converts a source configuration. Errors name the file and line.
pub(crate) fn convert(format: &Format) -> Result<Import, ImportError> {
    match format {
        Format::Xl2tpd { file, secrets } => {
            let text = read_source(file)?;
            let secrets = match secrets {
                Some(p) => Some((p.clone(), read_source(p)?)),
                None => None,
            };
            xl2tpd::convert(
                file,
                &text,
                secrets.as_ref().map(|(p, t)| (p.as_path(), t.as_str())),
            )
        }
        Format::Kl2tpd { file } => kl2tpd::convert(file, &read_source(file)?),
        Format::Openl2tpd { file } => openl2tp::convert(file, &read_source(file)?),
    }
}

/// `l2tpd import ...`: the configuration on stdout; on stderr a summary of
/// the settings that change behaviour. Exit status 0, 2 when something
/// changes behaviour, 1 when the source cannot be converted.
pub(crate) fn run(format: &Format) -> ExitCode {
    let imp = match convert(format) {
        Ok(i) => i,
        Err(e) => {
            // Parts of the message come from the source file: escaped.
            eprintln!("l2tpd import: {}", clean(&e.0));
            return ExitCode::FAILURE;
        }
    };
    print!("{}", imp.doc.render());
    let changes: Vec<&Finding> = imp.behaviour_changes().collect();
    let others = imp.findings.len() - changes.len();
    if others > 0 {
        eprintln!(
            "l2tpd import: {others} setting(s) without an exact equivalent that do not change behaviour: see the comments in the output"
        );
    }
    if changes.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "l2tpd import: {} setting(s) would change behaviour; review them before use:",
        changes.len()
    );
    for f in changes {
        eprintln!("  {}: {}", f.at, f.text);
    }
    ExitCode::from(2)
}

/// Inclusive IPv4 range `a.b.c.d-e.f.g.h` (spaces around `-` allowed) or a
/// single address, as host-order `u32` bounds; `None` when not addresses
/// (xl2tpd also allows host names there).
pub(crate) fn parse_v4_range(s: &str) -> Option<(u32, u32)> {
    let s = s.trim();
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s, s),
    };
    let a: std::net::Ipv4Addr = a.parse().ok()?;
    let b: std::net::Ipv4Addr = b.parse().ok()?;
    let (a, b) = (u32::from(a), u32::from(b));
    (a <= b).then_some((a, b))
}

/// The fewest prefixes (address, prefix length) that cover exactly the
/// inclusive range `start..=end` (at most 62 for any IPv4 range).
pub(crate) fn range_to_prefixes(start: u32, end: u32) -> Vec<(u32, u8)> {
    let mut out = Vec::new();
    let mut cur = u64::from(start);
    let end = u64::from(end);
    while cur <= end {
        // Largest block aligned at cur that fits.
        let mut size: u64 = if cur == 0 {
            1 << 32
        } else {
            cur & cur.wrapping_neg()
        };
        while cur + size - 1 > end {
            size >>= 1;
        }
        out.push((cur as u32, (32 - size.trailing_zeros()) as u8));
        cur += size;
    }
    out
}

/// A set of IPv4 addresses as sorted, disjoint, inclusive ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct V4Set(pub Vec<(u32, u32)>);

impl V4Set {
    /// Adds `a..=b`.
    pub(crate) fn add(&mut self, a: u32, b: u32) {
        self.remove(a, b);
        self.0.push((a, b));
        self.0.sort_unstable();
        // Merge adjacent ranges.
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.0.len());
        for &(s, e) in &self.0 {
            match merged.last_mut() {
                Some(last) if u64::from(last.1) + 1 >= u64::from(s) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.0 = merged;
    }

    /// Removes `a..=b`.
    pub(crate) fn remove(&mut self, a: u32, b: u32) {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        for &(s, e) in &self.0 {
            if e < a || s > b {
                out.push((s, e));
                continue;
            }
            if s < a {
                out.push((s, a - 1));
            }
            if e > b {
                out.push((b + 1, e));
            }
        }
        self.0 = out;
    }

    /// The largest range (the first of equal ones).
    pub(crate) fn largest(&self) -> Option<(u32, u32)> {
        let mut best: Option<(u32, u32)> = None;
        for &(s, e) in &self.0 {
            if best.is_none_or(|(bs, be)| e - s > be - bs) {
                best = Some((s, e));
            }
        }
        best
    }
}

/// `a.b.c.d-e.f.g.h` (or `a.b.c.d` when one address), l2tpd's pool syntax.
pub(crate) fn fmt_range((a, b): (u32, u32)) -> String {
    let (a, b) = (std::net::Ipv4Addr::from(a), std::net::Ipv4Addr::from(b));
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

/// A yes/no value as xl2tpd and OpenL2TP spell it (`yes|no|true|false|on|off|1|0`,
/// any case).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// True when `s` is a valid l2tpd `host_name`: 1 to 255 octets of printable
/// ASCII without spaces.
pub(crate) fn valid_host_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_become_the_fewest_exact_prefixes() {
        let a = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
        assert_eq!(
            range_to_prefixes(a("192.0.2.0"), a("192.0.2.255")),
            vec![(a("192.0.2.0"), 24)]
        );
        assert_eq!(
            range_to_prefixes(a("192.0.2.4"), a("192.0.2.8")),
            vec![(a("192.0.2.4"), 30), (a("192.0.2.8"), 32)]
        );
        assert_eq!(range_to_prefixes(0, u32::MAX), vec![(0, 0)]);
        assert_eq!(range_to_prefixes(u32::MAX, u32::MAX), vec![(u32::MAX, 32)]);
        // The worst case stays bounded.
        assert_eq!(range_to_prefixes(1, u32::MAX - 1).len(), 62);
    }

    #[test]
    fn v4_set_adds_removes_and_merges() {
        let mut s = V4Set::default();
        s.add(10, 20);
        s.remove(13, 15);
        assert_eq!(s.0, vec![(10, 12), (16, 20)]);
        s.add(14, 14);
        assert_eq!(s.0, vec![(10, 12), (14, 14), (16, 20)]);
        s.add(13, 15);
        assert_eq!(s.0, vec![(10, 20)]);
        assert_eq!(s.largest(), Some((10, 20)));
    }

    #[test]
    fn ranges_parse_with_spaces_and_reject_names() {
        assert_eq!(parse_v4_range("0.0.0.1 - 0.0.0.9"), Some((1, 9)));
        assert_eq!(parse_v4_range("0.0.0.5"), Some((5, 5)));
        assert_eq!(parse_v4_range("lac1-lac2"), None);
        assert_eq!(parse_v4_range("0.0.0.9-0.0.0.1"), None);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\u{a}");
    }
}
