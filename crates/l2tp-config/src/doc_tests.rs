//! The man page `doc/l2tpd.toml.5.md` documents exactly the keys the schema
//! accepts, table by table, so it cannot silently go stale.

use std::collections::BTreeSet;
use std::path::Path;

use crate::params::{PeerSettings, PppSettings, SessionSettings, SystemSettings, TunnelSettings};
use crate::parse::{SessionOwn, TunnelOwn, struct_fields};

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../doc")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `## [TABLE]` sections of the man page and the keys each must
/// document.
fn tables() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut session: Vec<&str> = struct_fields::<SessionOwn>().to_vec();
    session.push("ppp");
    vec![
        ("[system]", SystemSettings::KEYS.to_vec()),
        ("[tunnel_profile.NAME]", TunnelSettings::KEYS.to_vec()),
        ("[session_profile.NAME]", SessionSettings::KEYS.to_vec()),
        ("[ppp_profile.NAME]", PppSettings::KEYS.to_vec()),
        ("[peer_profile.NAME]", PeerSettings::KEYS.to_vec()),
        ("[tunnel.NAME]", struct_fields::<TunnelOwn>().to_vec()),
        ("[tunnel.NAME.session.NAME]", session),
    ]
}

/// The text of the section headed `heading` (up to the next heading of
/// level 1 or 2).
fn section<'a>(page: &'a str, heading: &str) -> &'a str {
    let start = page
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no `{heading}` heading in the man page"));
    let rest = &page[start + heading.len() + 2..];
    let end = rest
        .match_indices('\n')
        .map(|(i, _)| i)
        .find(|&i| rest[i + 1..].starts_with("# ") || rest[i + 1..].starts_with("## "))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The keys a section documents: the first code span of each
/// definition-list term (a line followed by a `:   ` definition line).
fn documented(section: &str) -> BTreeSet<&str> {
    let lines: Vec<&str> = section.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[1].starts_with(":   "))
        .filter_map(|w| w[0].strip_prefix('`'))
        .filter_map(|l| l.split('`').next())
        .collect()
}

#[test]
fn the_man_page_documents_every_key_of_every_table_and_no_other() {
    let page = doc("l2tpd.toml.5.md");
    let mut problems = Vec::new();
    for (table, keys) in tables() {
        let text = section(&page, &format!("## {table}"));
        let keys: BTreeSet<&str> = keys.into_iter().collect();
        let doc = documented(text);
        for k in keys.difference(&doc) {
            problems.push(format!("{table}: `{k}` is not documented"));
        }
        for k in doc.difference(&keys) {
            problems.push(format!("{table}: `{k}` is documented but not a key"));
        }
    }
    // The secrets file's keys.
    let secrets = section(&page, "# SECRETS");
    for k in ["secret", "user_password", "secrets_file"] {
        if !secrets.contains(&format!("`{k}`")) {
            problems.push(format!("SECRETS does not mention `{k}`"));
        }
    }
    // The files.
    let files = section(&page, "# FILES");
    for dir in crate::load::SEARCH_DIRS {
        for f in [crate::load::MAIN_FILE_NAME, crate::load::DROPIN_DIR_NAME] {
            if !files.contains(&format!("{dir}/{f}")) {
                problems.push(format!("FILES does not mention {dir}/{f}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_roff_man_page_mentions_every_key() {
    let roff = doc("l2tpd.toml.5");
    let mut missing = Vec::new();
    for (table, keys) in tables() {
        for k in keys {
            // pandoc escapes `_` in neither form; the key is in \f[C]...\f[R].
            if !roff.contains(&format!("{k}\\f[R]")) {
                missing.push(format!("{table} {k}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "doc/l2tpd.toml.5 is stale (regenerate it: pandoc -s -t man \
         doc/l2tpd.toml.5.md -o doc/l2tpd.toml.5); missing: {}",
        missing.join(", ")
    );
}
