//! The secrets file (`[system] secrets_file`): tunnel secrets and PPP
//! passwords kept apart from the configuration, in a file only its owner
//! may access.
//!
//! ```toml
//! [tunnel_profile.corp]
//! secret = "…"
//! [tunnel.lac1]
//! secret = "…"
//! [ppp_profile.isp]
//! user_password = "…"
//! [tunnel.lac1.session.s1.ppp]
//! user_password = "…"
//! ```
//!
//! Only those keys, in tables the configuration defines, are accepted. The
//! file is walked by hand rather than deserialized with serde, so that no
//! message quotes a value from it (toml's own syntax messages say what was
//! expected, not what was found; `tests/secrets.rs` checks that).

use std::collections::BTreeMap;
use std::fs;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, ErrorKind, LineIndex, Origin, key_path};
use crate::load::io_error;
use crate::params::{PppSettings, TunnelSettings};
use crate::parse::{Located, RawDoc, RawSession, RawTunnel, SessionTable, suggest};
use crate::values::Secret;

/// Permission bits a secrets file must not have (group and others).
pub(crate) const FORBIDDEN_MODE: u32 = 0o077;

/// The tables the secrets file may hold, for messages.
const SHAPE: &str = "[tunnel_profile.NAME] secret, [tunnel.NAME] secret, \
                     [ppp_profile.NAME] user_password, [tunnel.T.session.S.ppp] user_password";

/// Reads the secrets file: its text, and errors when it cannot be read,
/// when group or others may access it, or when it is owned by anyone but
/// root or the daemon's effective user (so that nobody else could have put
/// secrets of their choosing there). The file is opened once and its
/// checks made on the open file (fstat), not on the path. The text is
/// returned even when a check fails, so its own errors are reported too
/// (the configuration is refused anyway).
pub(crate) fn read(path: &Path, set_at: Option<&Origin>) -> (Option<String>, Vec<ConfigError>) {
    read_as(path, set_at, nix::unistd::geteuid().as_raw())
}

/// [`read`], the daemon's effective uid being `euid`.
fn read_as(path: &Path, set_at: Option<&Origin>, euid: u32) -> (Option<String>, Vec<ConfigError>) {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let mut errors = Vec::new();
    let by = set_at
        .map(|o| {
            format!(
                " (system.secrets_file, set at {}:{})",
                o.file.display(),
                o.pos.line
            )
        })
        .unwrap_or_default();
    let cannot_read =
        |e: std::io::Error| io_error(path, format!("cannot read the secrets file{by}: {e}"));
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return (None, vec![cannot_read(e)]),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return (None, vec![cannot_read(e)]),
    };
    if !meta.is_file() {
        errors.push(io_error(
            path,
            format!("the secrets file{by} is not a regular file"),
        ));
        return (None, errors);
    }
    let permissions = |message: String| ConfigError {
        file: path.to_path_buf(),
        position: None,
        key: None,
        kind: ErrorKind::Permissions,
        message,
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & FORBIDDEN_MODE != 0 {
        errors.push(permissions(format!(
            "the secrets file has mode {mode:04o}: group and others must have no access \
             (chmod 600 {})",
            path.display()
        )));
    }
    let owner = meta.uid();
    if owner != 0 && owner != euid {
        let who = if euid == 0 {
            "root".to_owned()
        } else {
            format!("root or uid {euid} (l2tpd's user)")
        };
        errors.push(permissions(format!(
            "the secrets file is owned by uid {owner}: it must be owned by {who} \
             (chown {} {})",
            if euid == 0 {
                "root".to_owned()
            } else {
                euid.to_string()
            },
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    if let Err(e) = file.read_to_end(&mut bytes) {
        errors.push(cannot_read(e));
        return (None, errors);
    }
    match String::from_utf8(bytes) {
        Ok(text) => (Some(text), errors),
        Err(_) => {
            errors.push(io_error(path, "the secrets file is not UTF-8 text".into()));
            (None, errors)
        }
    }
}

/// Parses secrets-file text into a [`RawDoc`] that sets only `secret` and
/// `user_password` keys.
pub(crate) fn parse(text: &str, file: Arc<Path>) -> (RawDoc, Vec<ConfigError>) {
    let mut p = SecretsParser {
        file,
        lines: LineIndex::new(text),
        errors: Vec::new(),
    };
    let mut doc = RawDoc::default();
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // toml's messages say what was expected, never quote the text
        // (tests/secrets.rs checks this for the usual mistakes).
        for e in syntax {
            p.error(
                e.span().as_ref(),
                None,
                ErrorKind::Syntax,
                e.message().trim().to_owned(),
            );
        }
        return (doc, p.errors);
    }
    for (key, value) in root.into_inner() {
        let name = key.get_ref().to_string();
        let kspan = key.span();
        match name.as_str() {
            "tunnel_profile" => {
                for (n, hspan, t) in p.named(&[&name], &kspan, value) {
                    let path = vec![name.clone(), n.clone()];
                    let loc = p.tunnel_secret(path, hspan, t, &[]);
                    doc.tunnel_profiles.insert(n, loc);
                }
            }
            "ppp_profile" => {
                for (n, hspan, t) in p.named(&[&name], &kspan, value) {
                    let loc = p.ppp_secret(vec![name.clone(), n.clone()], hspan, t);
                    doc.ppp_profiles.insert(n, loc);
                }
            }
            "tunnel" => {
                for (n, hspan, t) in p.named(&[&name], &kspan, value) {
                    let tunnel = p.tunnel(vec![name.clone(), n.clone()], hspan, t);
                    doc.tunnels.insert(n, tunnel);
                }
            }
            _ => p.error(
                Some(&kspan),
                Some(key_path(&[&name])),
                ErrorKind::UnknownKey,
                format!("not allowed in the secrets file, which holds only {SHAPE}"),
            ),
        }
    }
    (doc, p.errors)
}

struct SecretsParser<'t> {
    file: Arc<Path>,
    lines: LineIndex<'t>,
    errors: Vec<ConfigError>,
}

type Named<'t> = (String, Range<usize>, DeTable<'t>);

/// Sub-tables of a table, by key: the key's span and the value.
type Subs<'t> = BTreeMap<String, (Range<usize>, Spanned<DeValue<'t>>)>;

impl<'t> SecretsParser<'t> {
    fn origin(&self, span: &Range<usize>) -> Origin {
        Origin {
            file: self.file.clone(),
            pos: self.lines.position(span.start),
        }
    }

    fn error(
        &mut self,
        span: Option<&Range<usize>>,
        key: Option<String>,
        kind: ErrorKind,
        message: String,
    ) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            position: span.map(|s| self.lines.position(s.start)),
            key,
            kind,
            message,
        });
    }

    /// `value` as a table, else an error at `kspan`.
    fn table(
        &mut self,
        path: &[&str],
        kspan: &Range<usize>,
        value: Spanned<DeValue<'t>>,
    ) -> Option<DeTable<'t>> {
        match value.into_inner() {
            DeValue::Table(t) => Some(t),
            other => {
                self.error(
                    Some(kspan),
                    Some(key_path(path)),
                    ErrorKind::InvalidValue,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// The `NAME` tables below `[path]`, with the span of each name.
    fn named(
        &mut self,
        path: &[&str],
        kspan: &Range<usize>,
        value: Spanned<DeValue<'t>>,
    ) -> Vec<Named<'t>> {
        let Some(table) = self.table(path, kspan, value) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in table {
            let name = k.get_ref().to_string();
            let mut sub: Vec<&str> = path.to_vec();
            sub.push(&name);
            if let Some(t) = self.table(&sub, &k.span(), v) {
                out.push((name, k.span(), t));
            }
        }
        out
    }

    /// Reads the one allowed key `allowed` of a table (others are errors,
    /// except the sub-tables in `nested`, returned as they are).
    fn secret_in(
        &mut self,
        path: &[String],
        table: DeTable<'t>,
        allowed: &str,
        nested: &[&str],
    ) -> (Option<(Secret, Origin)>, bool, Subs<'t>) {
        let mut found = None;
        let mut failed = false;
        let mut subs = BTreeMap::new();
        for (k, v) in table {
            let name = k.get_ref().to_string();
            let mut kp = path.to_vec();
            kp.push(name.clone());
            if name == allowed {
                match v.get_ref() {
                    DeValue::String(s) => {
                        found = Some((Secret::new(s.to_string()), self.origin(&k.span())));
                    }
                    _ => {
                        failed = true;
                        self.error(
                            Some(&v.span()),
                            Some(key_path(&kp)),
                            ErrorKind::InvalidValue,
                            "a secret must be a quoted string".into(),
                        );
                    }
                }
            } else if nested.contains(&name.as_str()) {
                subs.insert(name, (k.span(), v));
            } else {
                let mut known = vec![allowed];
                known.extend(nested);
                let hint = suggest(&name, known.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                let what = if nested.is_empty() {
                    format!("`{allowed}`")
                } else {
                    format!("`{allowed}` and [{}]", nested.join("], ["))
                };
                self.error(
                    Some(&k.span()),
                    Some(key_path(&kp)),
                    ErrorKind::UnknownKey,
                    format!(
                        "not allowed in the secrets file{hint}: only {what} may appear here; \
                         other settings belong in the configuration"
                    ),
                );
            }
        }
        (found, failed, subs)
    }

    fn located<S: Default>(
        &self,
        path: Vec<String>,
        hspan: Range<usize>,
        key: &str,
        found: Option<(Secret, Origin)>,
        failed: bool,
        set: impl FnOnce(&mut S, Secret),
    ) -> Located<S> {
        let mut loc = Located::<S>::empty(path);
        loc.header = Some(self.origin(&hspan));
        if let Some((secret, origin)) = found {
            set(&mut loc.settings, secret);
            loc.origins.insert(key.to_owned(), origin);
        }
        if failed {
            loc.failed.insert(key.to_owned());
        }
        loc
    }

    fn tunnel_secret(
        &mut self,
        path: Vec<String>,
        hspan: Range<usize>,
        table: DeTable<'t>,
        nested: &[&str],
    ) -> Located<TunnelSettings> {
        let (found, failed, _) = self.secret_in(&path, table, "secret", nested);
        self.located(
            path,
            hspan,
            "secret",
            found,
            failed,
            |s: &mut TunnelSettings, v| s.secret = Some(v),
        )
    }

    fn ppp_secret(
        &mut self,
        path: Vec<String>,
        hspan: Range<usize>,
        table: DeTable<'t>,
    ) -> Located<PppSettings> {
        let (found, failed, _) = self.secret_in(&path, table, "user_password", &[]);
        self.located(
            path,
            hspan,
            "user_password",
            found,
            failed,
            |s: &mut PppSettings, v| s.user_password = Some(v),
        )
    }

    fn tunnel(&mut self, path: Vec<String>, hspan: Range<usize>, table: DeTable<'t>) -> RawTunnel {
        let (found, failed, mut subs) = self.secret_in(&path, table, "secret", &["session"]);
        let params = self.located(
            path.clone(),
            hspan.clone(),
            "secret",
            found,
            failed,
            |s: &mut TunnelSettings, v| s.secret = Some(v),
        );
        let mut sessions = BTreeMap::new();
        if let Some((kspan, value)) = subs.remove("session") {
            let mut sp: Vec<&str> = path.iter().map(String::as_str).collect();
            sp.push("session");
            for (n, sspan, t) in self.named(&sp, &kspan, value) {
                let mut spath = path.clone();
                spath.push("session".into());
                spath.push(n.clone());
                let mut ssubs = self.session_subs(&spath, t);
                let mut ppp_path = spath.clone();
                ppp_path.push("ppp".into());
                let mut ppp = Located::empty(ppp_path.clone());
                if let Some((pspan, pvalue)) = ssubs.remove("ppp") {
                    let pp: Vec<&str> = ppp_path.iter().map(String::as_str).collect();
                    if let Some(pt) = self.table(&pp, &pspan, pvalue) {
                        ppp = self.ppp_secret(ppp_path, pspan, pt);
                    }
                }
                let mut own = Located::empty(spath.clone());
                own.header = Some(self.origin(&sspan));
                sessions.insert(
                    n,
                    SessionTable::Set(Box::new(RawSession {
                        own,
                        params: Located::empty(spath),
                        ppp,
                    })),
                );
            }
        }
        let mut own = Located::empty(path);
        own.header = Some(self.origin(&hspan));
        RawTunnel {
            own,
            params,
            sessions,
        }
    }

    /// A session table: only its `ppp` sub-table is allowed.
    fn session_subs(&mut self, path: &[String], table: DeTable<'t>) -> Subs<'t> {
        let mut subs = BTreeMap::new();
        for (k, v) in table {
            let name = k.get_ref().to_string();
            if name == "ppp" {
                subs.insert(name, (k.span(), v));
            } else {
                let mut kp = path.to_vec();
                kp.push(name);
                self.error(
                    Some(&k.span()),
                    Some(key_path(&kp)),
                    ErrorKind::UnknownKey,
                    "not allowed in the secrets file: only [ppp] with `user_password` may \
                     appear in a session table; other settings belong in the configuration"
                        .into(),
                );
            }
        }
        subs
    }
}

/// Merges the secrets into `doc`, reporting (and dropping) secrets for
/// tables the configuration does not define.
pub(crate) fn merge_into(doc: &mut RawDoc, secrets: RawDoc, errors: &mut Vec<ConfigError>) {
    fn unknown<S>(errors: &mut Vec<ConfigError>, loc: &Located<S>, candidates: Vec<&str>) {
        let last = loc.path.last().map(String::as_str).unwrap_or_default();
        let hint = suggest(last, candidates)
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        let origin = loc.header.clone();
        errors.push(ConfigError {
            file: origin
                .as_ref()
                .map(|o| o.file.to_path_buf())
                .unwrap_or_default(),
            position: origin.map(|o| o.pos),
            key: Some(loc.name()),
            kind: ErrorKind::UnknownProfile,
            message: format!(
                "a secret for [{}], which the configuration does not define{hint}",
                loc.name()
            ),
        });
    }

    let mut keep = RawDoc::default();
    for (name, loc) in secrets.tunnel_profiles {
        if doc.tunnel_profiles.contains_key(&name) {
            keep.tunnel_profiles.insert(name, loc);
        } else {
            unknown(
                errors,
                &loc,
                doc.tunnel_profiles.keys().map(String::as_str).collect(),
            );
        }
    }
    for (name, loc) in secrets.ppp_profiles {
        if doc.ppp_profiles.contains_key(&name) {
            keep.ppp_profiles.insert(name, loc);
        } else {
            unknown(
                errors,
                &loc,
                doc.ppp_profiles.keys().map(String::as_str).collect(),
            );
        }
    }
    for (name, mut tunnel) in secrets.tunnels {
        let Some(existing) = doc.tunnels.get(&name) else {
            unknown(
                errors,
                &tunnel.own,
                doc.tunnels.keys().map(String::as_str).collect(),
            );
            continue;
        };
        let sessions = std::mem::take(&mut tunnel.sessions);
        for (sname, session) in sessions {
            if existing.sessions.contains_key(&sname) {
                tunnel.sessions.insert(sname, session);
            } else {
                unknown(
                    errors,
                    &session.raw(&tunnel.own.path, &sname).own,
                    existing.sessions.keys().map(String::as_str).collect(),
                );
            }
        }
        keep.tunnels.insert(name, tunnel);
    }
    doc.merge(keep);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, mode: u32) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("l2tp-secrets-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("secrets.toml");
        fs::write(&p, "[tunnel.t]\nsecret = \"s\"\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn a_file_of_our_own_with_mode_0600_is_read() {
        let p = file("own", 0o600);
        let me = nix::unistd::geteuid().as_raw();
        let (text, errors) = read_as(&p, None, me);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(text.unwrap().contains("secret"));
    }

    #[test]
    fn a_file_owned_by_another_user_is_refused_naming_file_and_owner() {
        let p = file("other", 0o600);
        let me = nix::unistd::geteuid().as_raw();
        // As root, give the file away; otherwise pretend to be someone else.
        let (owner, euid) = if me == 0 {
            std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
            (65534, 0)
        } else {
            (me, me + 1)
        };
        let (_, errors) = read_as(&p, None, euid);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let e = &errors[0];
        assert_eq!(e.file, p);
        assert_eq!(e.kind, ErrorKind::Permissions);
        assert!(
            e.message.contains(&format!("owned by uid {owner}")),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_file_others_may_read_is_refused_naming_its_mode() {
        let p = file("mode", 0o644);
        let me = nix::unistd::geteuid().as_raw();
        let (_, errors) = read_as(&p, None, me);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].message.contains("mode 0644"),
            "{}",
            errors[0].message
        );
    }
}
