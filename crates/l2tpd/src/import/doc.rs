//! The l2tpd configuration an import builds: ordered tables of keys and
//! comments, rendered as TOML text (so that comments can sit beside the keys
//! they explain, which a `toml::Table` cannot carry).

/// A TOML value as l2tpd's configuration uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum V {
    /// A string, rendered as a TOML basic string with escapes.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// An array of values.
    Arr(Vec<Self>),
}

impl V {
    /// A string value.
    pub(crate) fn s(s: impl Into<String>) -> Self {
        Self::Str(s.into())
    }

    fn render(&self, out: &mut String) {
        match self {
            Self::Str(s) => quote(s, out),
            Self::Int(i) => out.push_str(&i.to_string()),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.render(out);
                }
                out.push(']');
            }
        }
    }
}

/// A TOML basic string: `"` and `\` escaped, control characters as `\uXXXX`.
fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A key of a dotted table name: bare when it may be, else quoted.
fn key(s: &str, out: &mut String) {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        out.push_str(s);
    } else {
        quote(s, out);
    }
}

#[derive(Debug, Clone)]
enum Item {
    Kv(String, V),
    Comment(String),
}

/// One table, `[a.b.c]`, its keys and comments in the order they were added.
#[derive(Debug, Clone)]
struct Table {
    path: Vec<String>,
    items: Vec<Item>,
}

/// An l2tpd configuration under construction.
#[derive(Debug, Default, Clone)]
pub(crate) struct Doc {
    /// Comment lines at the top of the file (without the `# `).
    pub header: Vec<String>,
    tables: Vec<Table>,
}

impl Doc {
    fn table(&mut self, path: &[&str]) -> &mut Table {
        let i = match self
            .tables
            .iter()
            .position(|t| t.path.iter().map(String::as_str).eq(path.iter().copied()))
        {
            Some(i) => i,
            None => {
                self.tables.push(Table {
                    path: path.iter().map(|s| (*s).to_owned()).collect(),
                    items: Vec::new(),
                });
                self.tables.len() - 1
            }
        };
        &mut self.tables[i]
    }

    /// Creates the table `path` (dotted name parts) if it does not exist yet.
    pub(crate) fn ensure(&mut self, path: &[&str]) {
        self.table(path);
    }

    /// True when the table `path` exists.
    pub(crate) fn has_table(&self, path: &[&str]) -> bool {
        self.tables
            .iter()
            .any(|t| t.path.iter().map(String::as_str).eq(path.iter().copied()))
    }

    /// Sets `key` in table `path`, replacing an earlier value (a later
    /// source line wins, as in the source daemons).
    pub(crate) fn set(&mut self, path: &[&str], k: &str, v: V) {
        let t = self.table(path);
        for it in &mut t.items {
            if let Item::Kv(name, old) = it {
                if name == k {
                    *old = v;
                    return;
                }
            }
        }
        t.items.push(Item::Kv(k.to_owned(), v));
    }

    /// The value of `key` in table `path`, if set.
    pub(crate) fn get(&self, path: &[&str], k: &str) -> Option<&V> {
        let t = self
            .tables
            .iter()
            .find(|t| t.path.iter().map(String::as_str).eq(path.iter().copied()))?;
        t.items.iter().find_map(|it| match it {
            Item::Kv(name, v) if name == k => Some(v),
            _ => None,
        })
    }

    /// Appends words to the `pppd_options` array of table `path`.
    pub(crate) fn push_pppd(&mut self, path: &[&str], words: &[&str]) {
        let mut arr = match self.get(path, "pppd_options") {
            Some(V::Arr(a)) => a.clone(),
            _ => Vec::new(),
        };
        arr.extend(words.iter().map(|w| V::s(*w)));
        self.set(path, "pppd_options", V::Arr(arr));
    }

    /// Adds a comment line (without `# `) to table `path`.
    pub(crate) fn comment(&mut self, path: &[&str], text: &str) {
        self.table(path).items.push(Item::Comment(text.to_owned()));
    }

    /// The TOML text: header comments, then each table in creation order,
    /// its comments and keys in the order they were added.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for h in &self.header {
            out.push_str("# ");
            out.push_str(&super::clean(h));
            out.push('\n');
        }
        for t in &self.tables {
            out.push_str("\n[");
            for (i, p) in t.path.iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                key(p, &mut out);
            }
            out.push_str("]\n");
            for it in &t.items {
                match it {
                    Item::Comment(c) => {
                        out.push_str("# ");
                        out.push_str(&super::clean(c));
                        out.push('\n');
                    }
                    Item::Kv(k, v) => {
                        key(k, &mut out);
                        out.push_str(" = ");
                        v.render(&mut out);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_valid_toml_with_quoted_names_and_escapes() {
        let mut d = Doc::default();
        d.header.push("from x".into());
        d.set(&["tunnel", "site a"], "peer_addr", V::s("192.0.2.1"));
        d.comment(&["tunnel", "site a"], "note\nwith newline");
        d.set(
            &["ppp_profile", "default"],
            "local_name",
            V::s("a\"b\\c\u{1}"),
        );
        d.push_pppd(&["ppp_profile", "default"], &["noccp"]);
        d.push_pppd(&["ppp_profile", "default"], &["connect-delay", "5000"]);
        d.set(&["tunnel", "site a"], "peer_addr", V::s("192.0.2.2"));
        let text = d.render();
        let parsed: toml::Table = toml::from_str(&text).expect(&text);
        assert_eq!(
            parsed["tunnel"]["site a"]["peer_addr"].as_str(),
            Some("192.0.2.2")
        );
        assert_eq!(
            parsed["ppp_profile"]["default"]["local_name"].as_str(),
            Some("a\"b\\c\u{1}")
        );
        assert_eq!(
            parsed["ppp_profile"]["default"]["pppd_options"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert!(text.contains("# note\\u{a}with newline\n"), "{text}");
    }
}
