//! The man page l2tpd(8): `doc/l2tpd.8.md` documents every option and command
//! the binary accepts, and `doc/l2tpd.8` (generated from it with
//! `pandoc -s -t man doc/l2tpd.8.md -o doc/l2tpd.8`) is current.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const REGENERATE: &str = "regenerate it: pandoc -s -t man doc/l2tpd.8.md -o doc/l2tpd.8";

fn doc_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../doc")
        .join(name)
}

fn doc(name: &str) -> String {
    let path = doc_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the section headed `# heading` (up to the next `# `).
fn section<'a>(page: &'a str, heading: &str) -> &'a str {
    let start = page
        .find(&format!("\n# {heading}\n"))
        .unwrap_or_else(|| panic!("no `# {heading}` heading in doc/l2tpd.8.md"));
    let rest = &page[start + heading.len() + 4..];
    let end = rest.find("\n# ").unwrap_or(rest.len());
    &rest[..end]
}

/// `l2tpd --help`: (long options, commands), without `help`.
fn cli_surface() -> (BTreeSet<String>, BTreeSet<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_l2tpd"))
        .arg("--help")
        .output()
        .expect("running l2tpd --help");
    assert!(out.status.success(), "l2tpd --help: {:?}", out.status);
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    let mut options = BTreeSet::new();
    let mut commands = BTreeSet::new();
    let mut in_commands = false;
    for line in help.lines() {
        if !line.starts_with(' ') {
            in_commands = line.starts_with("Commands:");
            continue;
        }
        let word = line.split_whitespace().next().unwrap_or("");
        if in_commands {
            if !word.is_empty() && word != "help" {
                commands.insert(word.to_string());
            }
            continue;
        }
        for w in line.split_whitespace().take(3) {
            if let Some(long) = w.trim_end_matches(',').strip_prefix("--") {
                options.insert(long.to_string());
            }
        }
    }
    assert!(options.contains("config"), "no --config in: {help}");
    (options, commands)
}

#[test]
fn the_man_page_documents_every_option_and_command() {
    let page = doc("l2tpd.8.md");
    let (options, commands) = cli_surface();
    let opts = section(&page, "OPTIONS");
    let cmds = section(&page, "COMMANDS");
    let mut missing = Vec::new();
    for o in &options {
        // Escaped so that pandoc keeps two hyphens rather than an en dash.
        if !opts.contains(&format!("**\\-\\-{o}**")) {
            missing.push(format!("option --{o} (OPTIONS: **\\-\\-{o}**)"));
        }
    }
    for c in &commands {
        if !cmds.contains(&format!("\n**{c}**\n")) {
            missing.push(format!("command {c} (COMMANDS: **{c}**)"));
        }
    }
    assert!(
        missing.is_empty(),
        "doc/l2tpd.8.md does not document: {}",
        missing.join(", ")
    );
    // A hyphen pair outside code would become an en dash in the page.
    let mut fenced = false;
    for (n, line) in page.lines().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced || n == 0 || line == "---" {
            continue;
        }
        let outside_code: String = line.split('`').step_by(2).collect();
        assert!(
            !outside_code.contains("**--") && !outside_code.contains(" --"),
            "doc/l2tpd.8.md:{}: write `\\-\\-` for `--` outside code: {line}",
            n + 1
        );
    }
}

/// The words of `text`: runs of ASCII letters, digits and `_`.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// The roff page's text without its comments, escapes and font changes.
fn roff_text(roff: &str) -> String {
    let body: Vec<&str> = roff.lines().filter(|l| !l.starts_with(".\\\"")).collect();
    let mut s = body.join("\n");
    for (from, to) in [("\\f[", "\u{1}["), ("\\-", "-"), ("\\ ", " "), ("\\&", "")] {
        s = s.replace(from, to);
    }
    // Drop font changes (\f[B], \f[CR], ...) and named characters (\[aq]).
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let drop = c == '\u{1}' || (c == '\\' && chars.peek() == Some(&'['));
        if drop {
            if c == '\\' {
                chars.next();
            }
            for d in chars.by_ref() {
                if d == ']' {
                    break;
                }
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_roff_man_page_is_generated_from_the_current_markdown() {
    let md = doc("l2tpd.8.md");
    let roff = doc("l2tpd.8");
    // The markdown's words (past the metadata block) appear in the roff page
    // in the same order: an edit of the markdown without regenerating fails.
    let body = md
        .split("\n---\n")
        .nth(1)
        .expect("doc/l2tpd.8.md starts with a --- metadata block");
    let rtext = roff_text(&roff);
    let rwords = words(&rtext);
    let mut at = 0;
    for (i, w) in words(body).iter().enumerate() {
        match rwords[at..].iter().position(|r| r == w) {
            Some(p) => at += p + 1,
            None => panic!(
                "doc/l2tpd.8 is stale ({REGENERATE}): word {i} of the markdown, {w:?}, \
                 is not found in order (context: {:?})",
                words(body)[i.saturating_sub(5)..(i + 5).min(words(body).len())].join(" ")
            ),
        }
    }
    // And where pandoc is installed, the very output: same version, same page.
    let version_line = roff.lines().next().unwrap_or("");
    let Some(ours) = version_line.strip_prefix(".\\\" Automatically generated by Pandoc ") else {
        panic!("doc/l2tpd.8 was not generated by pandoc ({REGENERATE})");
    };
    let installed = Command::new("pandoc").arg("--version").output();
    let Ok(installed) = installed else {
        eprintln!("pandoc not installed: the page's text was compared word by word only");
        return;
    };
    let installed = String::from_utf8_lossy(&installed.stdout);
    let installed = installed
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("pandoc "))
        .unwrap_or("")
        .trim();
    if installed != ours.trim() {
        eprintln!(
            "pandoc {installed} is installed, doc/l2tpd.8 was made by {ours}: \
             compared word by word only"
        );
        return;
    }
    let out = Command::new("pandoc")
        .args(["-s", "-t", "man"])
        .arg(doc_path("l2tpd.8.md"))
        .output()
        .expect("running pandoc");
    assert!(out.status.success(), "pandoc failed: {:?}", out.status);
    assert!(
        String::from_utf8_lossy(&out.stdout) == roff,
        "doc/l2tpd.8 differs from what pandoc makes of doc/l2tpd.8.md ({REGENERATE})"
    );
}
