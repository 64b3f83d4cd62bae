//! Runtime configuration changes made through the API, layered over the
//! configuration files exactly like one more drop-in, so that profiles,
//! tunnels and sessions created at run time inherit the way the files do.
//!
//! The texts of the files are kept from the last (re)load, so that a runtime
//! change never picks up file edits that were not reloaded. Profiles that
//! come from the files and are deleted at run time are cut out of those
//! texts; everything else is a TOML document merged last.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use l2tp_api::ApiError;
use l2tp_config::{Config, ConfigErrors, ConfigPaths};
use serde_json::Value;

/// The source name runtime changes appear under in configuration errors.
pub(crate) const OVERLAY_SOURCE: &str = "<api>";

/// Why the configuration could not be (re)loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The files, or the files with the runtime changes, are invalid.
    Config(ConfigErrors),
    /// A file could not be read again after it was validated.
    Read(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "{e}"),
            Self::Read(e) => f.write_str(e),
        }
    }
}

impl LoadError {
    /// Every problem, one line each.
    pub(crate) fn lines(&self) -> Vec<String> {
        match self {
            Self::Config(e) => e.iter().map(|e| e.to_string()).collect(),
            Self::Read(e) => vec![e.clone()],
        }
    }
}

/// The configuration files as last loaded, plus the runtime changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overlay {
    /// Path and text of each file of the running configuration, in merge order.
    files: Vec<(PathBuf, String)>,
    /// Every `[table.name]` the files define, e.g. `("ppp_profile", "lns")`:
    /// from the (re)load's own parse ([`Config::defined_tables`]), so that
    /// listing many profiles does not parse the files once per profile.
    file_tables: BTreeSet<(String, String)>,
    /// Runtime changes: a document in the configuration schema.
    doc: toml::Table,
    /// Profiles defined in the files and deleted at run time: (table, name),
    /// e.g. `("ppp_profile", "lns")`.
    deleted: BTreeSet<(String, String)>,
}

/// The table name of a profile kind (`tunnel` → `tunnel_profile`).
pub(crate) fn profile_table(kind: &str) -> Result<&'static str, ApiError> {
    match kind {
        "tunnel" => Ok("tunnel_profile"),
        "session" => Ok("session_profile"),
        "ppp" => Ok("ppp_profile"),
        "peer" => Ok("peer_profile"),
        _ => Err(ApiError::invalid(
            "kind",
            format!("unknown profile kind `{kind}`: tunnel, session, ppp or peer"),
        )),
    }
}

/// A JSON value as a TOML value; `path` names it in errors.
pub(crate) fn json_to_toml(v: &Value, path: &str) -> Result<toml::Value, ApiError> {
    Ok(match v {
        Value::Null => {
            return Err(ApiError::invalid(
                path,
                "null is not a value (leave the key out instead)",
            ));
        }
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(_)) if n.is_u64() => {
                return Err(ApiError::invalid(path, "number too large"));
            }
            (None, Some(f)) => toml::Value::Float(f),
            (None, None) => return Err(ApiError::invalid(path, "not a number")),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| json_to_toml(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => toml::Value::Table(json_object_to_toml(o, path)?),
    })
}

/// A JSON object as a TOML table; `path` names it in errors.
pub(crate) fn json_object_to_toml(
    o: &serde_json::Map<String, Value>,
    path: &str,
) -> Result<toml::Table, ApiError> {
    let mut t = toml::Table::new();
    for (k, v) in o {
        t.insert(k.clone(), json_to_toml(v, &format!("{path}.{k}"))?);
    }
    Ok(t)
}

/// A TOML value as JSON.
pub(crate) fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

fn read_files(config: &Config) -> Result<Vec<(PathBuf, String)>, LoadError> {
    config
        .sources()
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .map(|t| (p.clone(), t))
                .map_err(|e| LoadError::Read(format!("{}: cannot read: {e}", p.display())))
        })
        .collect()
}

impl Overlay {
    /// The overlay of a configuration just loaded from its files (no runtime changes yet).
    pub(crate) fn new(config: &Config) -> Result<Self, LoadError> {
        let files = read_files(config)?;
        Ok(Self {
            file_tables: config.defined_tables().clone(),
            files,
            ..Self::default()
        })
    }

    /// True when runtime changes are layered over the files.
    pub(crate) fn has_changes(&self) -> bool {
        !self.doc.is_empty() || !self.deleted.is_empty()
    }

    /// Load the files again (SIGHUP, `SystemReload`) and lay the runtime
    /// changes over them. On success the new file texts are kept.
    pub(crate) fn reload(&mut self, paths: &ConfigPaths) -> Result<Config, LoadError> {
        let base = Config::load(paths).map_err(LoadError::Config)?;
        let files = read_files(&base)?;
        if !self.has_changes() {
            self.file_tables = base.defined_tables().clone();
            self.files = files;
            return Ok(base);
        }
        let mut next = self.clone();
        next.file_tables = base.defined_tables().clone();
        next.files = files;
        // Profiles deleted at run time that the files no longer define are forgotten.
        let deleted: BTreeSet<(String, String)> = next
            .deleted
            .iter()
            .filter(|(t, n)| next.files_define(t, n))
            .cloned()
            .collect();
        next.deleted = deleted;
        let config = next.build()?;
        *self = next;
        Ok(config)
    }

    /// The configuration: the files (minus deleted profiles) with the runtime document merged last.
    pub(crate) fn build(&self) -> Result<Config, LoadError> {
        let mut texts: Vec<(PathBuf, String)> = Vec::with_capacity(self.files.len() + 1);
        for (path, text) in &self.files {
            let doomed: Vec<&(String, String)> = self
                .deleted
                .iter()
                .filter(|(t, n)| table_defines(text, t, n))
                .collect();
            if doomed.is_empty() {
                texts.push((path.clone(), text.clone()));
                continue;
            }
            let mut doc: toml::Table = text.parse().map_err(|e| {
                LoadError::Read(format!("{}: cannot parse again: {e}", path.display()))
            })?;
            for (t, n) in doomed {
                if let Some(toml::Value::Table(kind)) = doc.get_mut(t) {
                    kind.remove(n);
                }
            }
            texts.push((path.clone(), doc.to_string()));
        }
        texts.push((PathBuf::from(OVERLAY_SOURCE), self.doc.to_string()));
        Config::from_sources(texts.iter().map(|(p, t)| (p.as_path(), t.as_str())))
            .map_err(LoadError::Config)
    }

    /// Whether one of the files defines `[table.name]`.
    pub(crate) fn files_define(&self, table: &str, name: &str) -> bool {
        self.file_tables
            .contains(&(table.to_owned(), name.to_owned()))
    }

    /// The names of the `[table.NAME]` tables the files (less the profiles
    /// deleted at run time) and the runtime changes define, sorted. Built
    /// from what was found at the last (re)load: no file is parsed.
    pub(crate) fn names(&self, table: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .file_tables
            .iter()
            .filter(|(t, n)| t == table && !self.is_deleted(t, n))
            .map(|(_, n)| n.clone())
            .collect();
        if let Some(toml::Value::Table(t)) = self.doc.get(table) {
            out.extend(t.keys().cloned());
        }
        out
    }

    /// Whether the runtime document defines `[table.name]`.
    pub(crate) fn defines(&self, table: &str, name: &str) -> bool {
        matches!(self.doc.get(table), Some(toml::Value::Table(t)) if t.contains_key(name))
    }

    /// Whether a file-defined `[table.name]` was deleted at run time.
    pub(crate) fn is_deleted(&self, table: &str, name: &str) -> bool {
        self.deleted.contains(&(table.to_owned(), name.to_owned()))
    }

    /// The runtime table at `path` (`["tunnel_profile", "x"]`, `["system"]`),
    /// created empty (with its parents) if absent.
    pub(crate) fn table_mut(&mut self, path: &[&str]) -> &mut toml::Table {
        let mut t = &mut self.doc;
        for seg in path {
            let v = t
                .entry(*seg)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !v.is_table() {
                *v = toml::Value::Table(toml::Table::new());
            }
            t = match v {
                toml::Value::Table(inner) => inner,
                _ => unreachable!("just made a table"),
            };
        }
        t
    }

    /// The runtime table at `path`, if there is one.
    pub(crate) fn table(&self, path: &[&str]) -> Option<&toml::Table> {
        let mut t = &self.doc;
        for seg in path {
            match t.get(*seg) {
                Some(toml::Value::Table(inner)) => t = inner,
                _ => return None,
            }
        }
        Some(t)
    }

    /// Remove the runtime `[table.name]`; true if it was there.
    pub(crate) fn remove(&mut self, table: &str, name: &str) -> bool {
        let removed = match self.doc.get_mut(table) {
            Some(toml::Value::Table(t)) => t.remove(name).is_some(),
            _ => false,
        };
        if matches!(self.doc.get(table), Some(toml::Value::Table(t)) if t.is_empty()) {
            self.doc.remove(table);
        }
        removed
    }

    /// Delete a profile: drop its runtime table and, if the files define it, cut it out of them.
    pub(crate) fn delete_profile(&mut self, table: &str, name: &str) {
        self.remove(table, name);
        if self.files_define(table, name) {
            self.deleted.insert((table.to_owned(), name.to_owned()));
        }
    }

    /// Remove the runtime session table `[tunnel.T.session.S]`.
    pub(crate) fn remove_session(&mut self, tunnel: &str, session: &str) {
        let Some(toml::Value::Table(tunnels)) = self.doc.get_mut("tunnel") else {
            return;
        };
        let Some(toml::Value::Table(t)) = tunnels.get_mut(tunnel) else {
            return;
        };
        if let Some(toml::Value::Table(s)) = t.get_mut("session") {
            s.remove(session);
            if s.is_empty() {
                t.remove("session");
            }
        }
        if t.is_empty() {
            tunnels.remove(tunnel);
        }
        if tunnels.is_empty() {
            self.doc.remove("tunnel");
        }
    }
}

/// Whether `text` defines `[table.name]`; a text that does not parse defines none.
fn table_defines(text: &str, table: &str, name: &str) -> bool {
    // Cheap test first: most files never mention the profile.
    if !text.contains(name) {
        return false;
    }
    match text.parse::<toml::Table>() {
        Ok(doc) => matches!(doc.get(table), Some(toml::Value::Table(t)) if t.contains_key(name)),
        Err(_) => false,
    }
}

/// A configuration error of a runtime change as an API error: a single
/// problem with one of the keys of `[prefix]` (a dotted table path) becomes
/// `InvalidParameter` naming `param_prefix.KEY`; anything else is
/// `ConfigInvalid` with every problem.
pub(crate) fn api_error(e: &LoadError, prefix: &str, param_prefix: &str) -> ApiError {
    if let LoadError::Config(errs) = e
        && errs.len() == 1
        && let Some(err) = errs.iter().next()
        && err.file == Path::new(OVERLAY_SOURCE)
        && let Some(key) = &err.key
    {
        let rest = key
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('.'))
            .map(|r| format!("{param_prefix}.{r}"));
        let parameter = match rest {
            Some(r) => r,
            None if key == prefix => param_prefix.to_owned(),
            None => key.clone(),
        };
        return ApiError::invalid(parameter, err.message.clone());
    }
    ApiError::ConfigInvalid {
        errors: e.lines(),
        description: "the change would make the configuration invalid".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> ConfigPaths {
        let f = dir.join("l2tpd.toml");
        std::fs::write(&f, text).unwrap();
        ConfigPaths::explicit(f)
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("l2tpd-overlay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn runtime_profile_inherits_from_the_file_default() {
        let d = tempdir("inherit");
        let paths = write(
            &d,
            "[tunnel_profile.default]\nhello_timeout = \"30s\"\nmax_retries = 7\n",
        );
        let base = Config::load(&paths).unwrap();
        let mut o = Overlay::new(&base).unwrap();
        o.table_mut(&["tunnel_profile", "fast"])
            .insert("max_retries".into(), toml::Value::Integer(3));
        let c = o.build().unwrap();
        let p = c.tunnel_profile("fast").unwrap();
        assert_eq!(p.max_retries, 3);
        assert_eq!(p.hello_timeout, std::time::Duration::from_secs(30));
        // The file is not read again: a change on disk shows only after reload.
        std::fs::write(
            d.join("l2tpd.toml"),
            "[tunnel_profile.default]\nmax_retries = 9\n",
        )
        .unwrap();
        assert_eq!(
            o.build()
                .unwrap()
                .tunnel_profile("fast")
                .unwrap()
                .hello_timeout
                .as_secs(),
            30
        );
        let c = o.reload(&paths).unwrap();
        let p = c.tunnel_profile("fast").unwrap();
        assert_eq!((p.max_retries, p.hello_timeout.as_secs()), (3, 60));
    }

    #[test]
    fn deleting_a_file_profile_cuts_it_out_and_reports_references() {
        let d = tempdir("delete");
        let paths = write(
            &d,
            "[ppp_profile.lns]\nmtu = 1400\n[ppp_profile.unused]\nmru = 1400\n\
             [peer_profile.p]\npeer_addr = \"192.0.2.0/24\"\nppp_profile_name = \"lns\"\n",
        );
        let base = Config::load(&paths).unwrap();
        let mut o = Overlay::new(&base).unwrap();
        o.delete_profile("ppp_profile", "unused");
        let c = o.build().unwrap();
        assert!(c.ppp_profile("unused").is_none());
        assert!(c.ppp_profile("lns").is_some());
        o.delete_profile("ppp_profile", "lns");
        let e = o.build().unwrap_err();
        assert!(e.to_string().contains("lns"), "{e}");
    }

    #[test]
    fn a_bad_runtime_value_names_its_key() {
        let d = tempdir("bad");
        let paths = write(&d, "");
        let base = Config::load(&paths).unwrap();
        let mut o = Overlay::new(&base).unwrap();
        o.table_mut(&["tunnel_profile", "x"])
            .insert("hello_timeout".into(), toml::Value::String("soon".into()));
        let e = o.build().unwrap_err();
        match api_error(&e, "tunnel_profile.x", "settings") {
            ApiError::InvalidParameter { parameter, .. } => {
                assert_eq!(parameter, "settings.hello_timeout")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_and_toml_convert_both_ways() {
        let v = serde_json::json!({"a": 1, "b": "2s", "c": [true, false], "d": {"e": 1.5}});
        let t = json_to_toml(&v, "settings").unwrap();
        assert_eq!(toml_to_json(&t), v);
        assert!(json_to_toml(&serde_json::json!({"a": null}), "settings").is_err());
    }
}
