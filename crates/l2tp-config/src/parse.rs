//! From TOML text to a [`RawDoc`]: every table of the file deserialized into
//! its all-optional settings struct, with the file position of every key.
//!
//! Deserialization goes table by table, and a key whose value is rejected is
//! reported and dropped before the table is tried again, so one pass
//! reports every bad key, not only the first. Several files (drop-ins)
//! merge key by key with [`RawDoc::merge`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::{ConfigError, ErrorKind, LineIndex, Origin, key_path};
use crate::params::{
    PeerSettings, PppSettings, SessionSettings, SettingsTable, SystemSettings, TunnelSettings,
};
use crate::values::SessionType;

/// One table of the configuration as written, with where each key was.
#[derive(Debug, Clone)]
pub(crate) struct Located<S> {
    /// Path segments of the table (`["tunnel", "lac1"]`).
    pub path: Vec<String>,
    /// Where the table's header (or name) is; `None` for built-in tables.
    pub header: Option<Origin>,
    pub settings: S,
    /// Where each key that was set is.
    pub origins: BTreeMap<String, Origin>,
    /// Keys whose value was rejected (already reported; later checks on
    /// them are skipped to avoid follow-on errors).
    pub failed: BTreeSet<String>,
}

impl<S: Default> Located<S> {
    pub(crate) fn empty(path: Vec<String>) -> Self {
        Self {
            path,
            header: None,
            settings: S::default(),
            origins: BTreeMap::new(),
            failed: BTreeSet::new(),
        }
    }
}

impl<S> Located<S> {
    /// Dotted path of `key` in this table.
    pub(crate) fn key(&self, key: &str) -> String {
        let mut segs = self.path.clone();
        segs.push(key.to_owned());
        key_path(&segs)
    }

    /// Dotted path of this table.
    pub(crate) fn name(&self) -> String {
        key_path(&self.path)
    }
}

impl<S: SettingsTable> Located<S> {
    /// Merges a later definition of the same table: its keys win.
    pub(crate) fn merge(&mut self, later: Self) {
        self.settings.overlay_from(&later.settings);
        self.origins.extend(later.origins);
        self.failed.extend(later.failed);
        if self.header.is_none() {
            self.header = later.header;
        }
    }
}

/// The keys of a `[tunnel.NAME]` table that are not tunnel-profile
/// parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TunnelOwn {
    pub peer_addr: Option<IpAddr>,
    pub our_addr: Option<IpAddr>,
    pub tunnel_profile_name: Option<String>,
    pub peer_profile_name: Option<String>,
    pub persist: Option<bool>,
}

impl SettingsTable for TunnelOwn {
    type Params = ();
    fn apply(&self, _: &mut ()) {}
    fn overlay_from(&mut self, h: &Self) {
        if h.peer_addr.is_some() {
            self.peer_addr = h.peer_addr;
        }
        if h.our_addr.is_some() {
            self.our_addr = h.our_addr;
        }
        if h.tunnel_profile_name.is_some() {
            self.tunnel_profile_name.clone_from(&h.tunnel_profile_name);
        }
        if h.peer_profile_name.is_some() {
            self.peer_profile_name.clone_from(&h.peer_profile_name);
        }
        if h.persist.is_some() {
            self.persist = h.persist;
        }
    }
}

/// The keys of a `[tunnel.T.session.NAME]` table that are not
/// session-profile parameters (besides the `ppp` sub-table).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionOwn {
    pub session_type: Option<SessionType>,
    pub session_profile_name: Option<String>,
}

impl SettingsTable for SessionOwn {
    type Params = ();
    fn apply(&self, _: &mut ()) {}
    fn overlay_from(&mut self, h: &Self) {
        if h.session_type.is_some() {
            self.session_type = h.session_type;
        }
        if h.session_profile_name.is_some() {
            self.session_profile_name
                .clone_from(&h.session_profile_name);
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RawSession {
    pub own: Located<SessionOwn>,
    pub params: Located<SessionSettings>,
    pub ppp: Located<PppSettings>,
}

impl RawSession {
    fn merge(&mut self, later: Self) {
        self.own.merge(later.own);
        self.params.merge(later.params);
        self.ppp.merge(later.ppp);
    }
}

/// A `[tunnel.T.session.NAME]` table as written. Most set nothing (a call
/// with every parameter inherited) and a tunnel may have 65,535 of them, so
/// an empty one keeps only where its header is: its [`RawSession`] is
/// built when it is needed ([`SessionTable::raw`]).
#[derive(Debug, Clone)]
pub(crate) enum SessionTable {
    /// No key and no `ppp` table: where the header is.
    Empty(Option<Origin>),
    /// A table that sets something.
    Set(Box<RawSession>),
}

impl SessionTable {
    /// The table as a [`RawSession`]; `tunnel_path` is its tunnel's path
    /// (`["tunnel", "T"]`) and `name` its own, for an empty table's paths.
    pub(crate) fn raw(&self, tunnel_path: &[String], name: &str) -> Cow<'_, RawSession> {
        match self {
            Self::Set(s) => Cow::Borrowed(s),
            Self::Empty(header) => {
                let mut path = tunnel_path.to_vec();
                path.push("session".into());
                path.push(name.to_owned());
                let mut ppp_path = path.clone();
                ppp_path.push("ppp".into());
                let mut own = Located::empty(path.clone());
                own.header.clone_from(header);
                let mut params = Located::empty(path);
                params.header.clone_from(header);
                Cow::Owned(RawSession {
                    own,
                    params,
                    ppp: Located::empty(ppp_path),
                })
            }
        }
    }

    /// Merges a later definition of the same table (as [`RawSession`]'s
    /// merge: its keys win, the first header stays).
    fn merge(&mut self, later: Self) {
        match (&mut *self, later) {
            (Self::Empty(h), Self::Empty(l)) => {
                if h.is_none() {
                    *h = l;
                }
            }
            (Self::Empty(h), Self::Set(mut l)) => {
                if h.is_some() {
                    l.own.header.clone_from(h);
                    l.params.header = h.take();
                }
                *self = Self::Set(l);
            }
            (Self::Set(s), Self::Empty(l)) => {
                if s.own.header.is_none() {
                    s.own.header.clone_from(&l);
                }
                if s.params.header.is_none() {
                    s.params.header = l;
                }
            }
            (Self::Set(s), Self::Set(l)) => s.merge(*l),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RawTunnel {
    pub own: Located<TunnelOwn>,
    pub params: Located<TunnelSettings>,
    pub sessions: BTreeMap<String, SessionTable>,
}

impl RawTunnel {
    fn merge(&mut self, later: Self) {
        self.own.merge(later.own);
        self.params.merge(later.params);
        merge_map(&mut self.sessions, later.sessions, SessionTable::merge);
    }
}

/// A whole configuration as written (one file, or several merged).
#[derive(Debug, Clone)]
pub(crate) struct RawDoc {
    pub system: Located<SystemSettings>,
    pub tunnel_profiles: BTreeMap<String, Located<TunnelSettings>>,
    pub session_profiles: BTreeMap<String, Located<SessionSettings>>,
    pub ppp_profiles: BTreeMap<String, Located<PppSettings>>,
    pub peer_profiles: BTreeMap<String, Located<PeerSettings>>,
    pub tunnels: BTreeMap<String, RawTunnel>,
}

impl Default for RawDoc {
    fn default() -> Self {
        Self {
            system: Located::empty(vec!["system".into()]),
            tunnel_profiles: BTreeMap::new(),
            session_profiles: BTreeMap::new(),
            ppp_profiles: BTreeMap::new(),
            peer_profiles: BTreeMap::new(),
            tunnels: BTreeMap::new(),
        }
    }
}

fn merge_map<V>(into: &mut BTreeMap<String, V>, from: BTreeMap<String, V>, merge: fn(&mut V, V)) {
    for (k, v) in from {
        match into.get_mut(&k) {
            Some(existing) => merge(existing, v),
            None => {
                into.insert(k, v);
            }
        }
    }
}

impl RawDoc {
    /// Adds the `(KIND, NAME)` of every named table of this document to `out`.
    pub(crate) fn named_tables_into(&self, out: &mut BTreeSet<(String, String)>) {
        fn add<V>(out: &mut BTreeSet<(String, String)>, kind: &str, map: &BTreeMap<String, V>) {
            out.extend(map.keys().map(|n| (kind.to_owned(), n.clone())));
        }
        add(out, "tunnel_profile", &self.tunnel_profiles);
        add(out, "session_profile", &self.session_profiles);
        add(out, "ppp_profile", &self.ppp_profiles);
        add(out, "peer_profile", &self.peer_profiles);
        add(out, "tunnel", &self.tunnels);
    }

    /// Merges a later file into this one: tables merge, keys in `later`
    /// replace ours (drop-in semantics).
    pub(crate) fn merge(&mut self, later: Self) {
        self.system.merge(later.system);
        merge_map(
            &mut self.tunnel_profiles,
            later.tunnel_profiles,
            Located::merge,
        );
        merge_map(
            &mut self.session_profiles,
            later.session_profiles,
            Located::merge,
        );
        merge_map(&mut self.ppp_profiles, later.ppp_profiles, Located::merge);
        merge_map(&mut self.peer_profiles, later.peer_profiles, Located::merge);
        merge_map(&mut self.tunnels, later.tunnels, RawTunnel::merge);
    }

    /// Makes sure the built-in `default` profile of each kind is present.
    pub(crate) fn ensure_defaults(&mut self) {
        fn ensure<S: Default>(map: &mut BTreeMap<String, Located<S>>, kind: &str) {
            map.entry("default".to_owned())
                .or_insert_with(|| Located::empty(vec![kind.to_owned(), "default".to_owned()]));
        }
        ensure(&mut self.tunnel_profiles, "tunnel_profile");
        ensure(&mut self.session_profiles, "session_profile");
        ensure(&mut self.ppp_profiles, "ppp_profile");
        ensure(&mut self.peer_profiles, "peer_profile");
    }
}

/// The field names a `#[derive(Deserialize)]` struct accepts, read from the
/// derive's own `deserialize_struct` call so the list cannot drift.
pub(crate) fn struct_fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("probe"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probe"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// Levenshtein distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `word`, if close enough to be a likely typo.
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn did_you_mean(s: Option<&str>) -> String {
    s.map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// Makes serde's wording of integer ranges readable.
fn clean_message(msg: &str) -> String {
    let mut m = msg.trim().to_owned();
    for (from, to) in [
        ("expected u8", "expected an integer in 0..=255"),
        ("expected u16", "expected an integer in 0..=65535"),
        ("expected u32", "expected an integer in 0..=4294967295"),
        ("expected u64", "expected a non-negative integer"),
        ("expected a boolean", "expected true or false"),
    ] {
        if m.ends_with(from) {
            m.truncate(m.len() - from.len());
            m.push_str(to);
        }
    }
    m
}

/// The dotted path of the key a toml "duplicate key" error points at
/// (`span` covers the repeated key): the key with the dotted keys before it
/// on its line, under the table header in force there (or the header
/// itself, when the repeated key is part of a `[table]` line). `None` when
/// the span is not inside `text`.
fn duplicate_key_path(text: &str, span: &Range<usize>) -> Option<String> {
    let end = span.end.min(text.len());
    let start = span.start.min(end);
    text.get(start..end)?;
    let line_start = text.get(..start)?.rfind('\n').map_or(0, |i| i + 1);
    let on_line = text.get(line_start..end)?.trim_start();
    let segments = |s: &str| -> Vec<String> {
        s.split('.')
            .map(|p| p.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
            .filter(|p| !p.is_empty())
            .collect()
    };
    let mut path = Vec::new();
    if let Some(header) = on_line.strip_prefix('[') {
        // A table defined twice: the header up to the repeated key.
        path.extend(segments(header.trim_start_matches('[')));
    } else {
        // A key under the nearest table header above it.
        let before = text.get(..line_start)?;
        if let Some(h) = before
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
        {
            let inner = h.trim_start_matches('[');
            let inner = inner.split(']').next().unwrap_or_default();
            path.extend(segments(inner));
        }
        let key_part = on_line.split('=').next().unwrap_or_default();
        path.extend(segments(key_part));
    }
    (!path.is_empty()).then(|| key_path(&path))
}

const TOP_LEVEL: &[&str] = &[
    "system",
    "tunnel_profile",
    "session_profile",
    "ppp_profile",
    "peer_profile",
    "tunnel",
];

type Table<'t> = DeTable<'t>;

/// Parses one file.
pub(crate) struct Parser<'t> {
    file: Arc<Path>,
    lines: LineIndex<'t>,
    text: &'t str,
    pub errors: Vec<ConfigError>,
}

impl<'t> Parser<'t> {
    pub(crate) fn new(text: &'t str, file: Arc<Path>) -> Self {
        Parser {
            file,
            lines: LineIndex::new(text),
            text,
            errors: Vec::new(),
        }
    }

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

    /// Parses the whole document.
    pub(crate) fn parse(mut self) -> (RawDoc, Vec<ConfigError>) {
        let mut doc = RawDoc::default();
        let (root, syntax) = DeTable::parse_recoverable(self.text);
        if !syntax.is_empty() {
            for e in syntax {
                let span = e.span();
                let mut message = clean_message(e.message());
                // toml says "duplicate key" and only points at it: name it
                // (with its table) so that the error can be acted on.
                let key = if message == "duplicate key" {
                    let key = span.as_ref().and_then(|r| duplicate_key_path(self.text, r));
                    if let Some(k) = &key {
                        message = format!("duplicate key `{k}`: defined more than once");
                    }
                    key
                } else {
                    None
                };
                let kind = if key.is_some() {
                    ErrorKind::Duplicate
                } else {
                    ErrorKind::Syntax
                };
                self.error(span.as_ref(), key, kind, message);
            }
            return (doc, self.errors);
        }
        for (key, value) in root.into_inner() {
            let name = key.get_ref().to_string();
            match name.as_str() {
                "system" => {
                    let path = vec![name.clone()];
                    if let Some((table, span)) = self.expect_table(&path, value) {
                        doc.system = self.located(path, &key, table, span);
                    }
                }
                "tunnel_profile" => {
                    for (n, k, t, s) in self.named_tables(&[name.as_str()], value) {
                        let loc = self.located(vec![name.clone(), n.clone()], &k, t, s);
                        doc.tunnel_profiles.insert(n, loc);
                    }
                }
                "session_profile" => {
                    for (n, k, t, s) in self.named_tables(&[name.as_str()], value) {
                        let loc = self.located(vec![name.clone(), n.clone()], &k, t, s);
                        doc.session_profiles.insert(n, loc);
                    }
                }
                "ppp_profile" => {
                    for (n, k, t, s) in self.named_tables(&[name.as_str()], value) {
                        let loc = self.located(vec![name.clone(), n.clone()], &k, t, s);
                        doc.ppp_profiles.insert(n, loc);
                    }
                }
                "peer_profile" => {
                    for (n, k, t, s) in self.named_tables(&[name.as_str()], value) {
                        let loc = self.located(vec![name.clone(), n.clone()], &k, t, s);
                        doc.peer_profiles.insert(n, loc);
                    }
                }
                "tunnel" => {
                    for (n, k, t, s) in self.named_tables(&[name.as_str()], value) {
                        let tunnel = self.tunnel(vec![name.clone(), n.clone()], &k, t, s);
                        doc.tunnels.insert(n, tunnel);
                    }
                }
                _ => {
                    let hint = did_you_mean(suggest(&name, TOP_LEVEL.iter().copied()));
                    self.error(
                        Some(&key.span()),
                        Some(key_path(&[&name])),
                        ErrorKind::UnknownKey,
                        format!("unknown table{hint}; known: {}", TOP_LEVEL.join(", ")),
                    );
                }
            }
        }
        (doc, self.errors)
    }

    fn expect_table(
        &mut self,
        path: &[String],
        value: Spanned<DeValue<'t>>,
    ) -> Option<(Table<'t>, Range<usize>)> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(t) => Some((t, span)),
            other => {
                self.error(
                    Some(&span),
                    Some(key_path(path)),
                    ErrorKind::InvalidValue,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// The `NAME` tables below a `[kind]` table (`[tunnel_profile.NAME]`).
    fn named_tables(
        &mut self,
        path: &[&str],
        value: Spanned<DeValue<'t>>,
    ) -> Vec<(
        String,
        Spanned<toml::de::DeString<'t>>,
        Table<'t>,
        Range<usize>,
    )> {
        let owned: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        let Some((table, _)) = self.expect_table(&owned, value) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, value) in table {
            let name = key.get_ref().to_string();
            let mut sub = owned.clone();
            sub.push(name.clone());
            if name.is_empty() {
                self.error(
                    Some(&key.span()),
                    Some(key_path(&sub)),
                    ErrorKind::InvalidValue,
                    "a name must not be empty".into(),
                );
                continue;
            }
            let span = value.span();
            match value.into_inner() {
                DeValue::Table(t) => out.push((name, key, t, span)),
                other => self.error(
                    Some(&key.span()),
                    Some(key_path(&sub)),
                    ErrorKind::InvalidValue,
                    format!(
                        "expected a table [{}.NAME], found {}",
                        key_path(&owned),
                        other.type_str()
                    ),
                ),
            }
        }
        out
    }

    /// Deserializes `table` into `S`, reporting unknown keys and every
    /// rejected value (each bad key is dropped and the table retried).
    fn located<S: SettingsTable>(
        &mut self,
        path: Vec<String>,
        name_key: &Spanned<toml::de::DeString<'t>>,
        table: Table<'t>,
        span: Range<usize>,
    ) -> Located<S> {
        self.located_with(path, Some(name_key.span()), table, span, &[])
    }

    fn located_with<S: SettingsTable>(
        &mut self,
        path: Vec<String>,
        header: Option<Range<usize>>,
        mut table: Table<'t>,
        span: Range<usize>,
        extra_known: &[&str],
    ) -> Located<S> {
        let mut loc = Located::<S>::empty(path);
        loc.header = header.as_ref().map(|h| self.origin(h));
        let fields = struct_fields::<S>();

        let unknown: Vec<(String, Range<usize>)> = table
            .keys()
            .filter(|k| !fields.contains(&k.get_ref().as_ref()))
            .map(|k| (k.get_ref().to_string(), k.span()))
            .collect();
        for (k, kspan) in &unknown {
            let hint = did_you_mean(suggest(k, fields.iter().chain(extra_known).copied()));
            self.error(
                Some(kspan),
                Some(loc.key(k)),
                ErrorKind::UnknownKey,
                format!("unknown key{hint}"),
            );
        }
        table = table
            .into_iter()
            .filter(|(k, _)| fields.contains(&k.get_ref().as_ref()))
            .collect();
        for k in table.keys() {
            loc.origins
                .insert(k.get_ref().to_string(), self.origin(&k.span()));
        }

        loop {
            let value = Spanned::new(span.clone(), DeValue::Table(table.clone()));
            match S::deserialize(ValueDeserializer::from(value)) {
                Ok(s) => {
                    loc.settings = s;
                    return loc;
                }
                Err(e) => {
                    let espan = e.span();
                    let hit = espan.as_ref().and_then(|es| {
                        table
                            .iter()
                            .find(|(k, v)| {
                                let (ks, vs) = (k.span(), v.span());
                                ks.contains(&es.start)
                                    || vs.contains(&es.start)
                                    || ks.start == es.start
                            })
                            .map(|(k, _)| k.get_ref().to_string())
                    });
                    let mut msg = clean_message(e.message());
                    if msg.ends_with("address syntax") {
                        // std's address errors do not repeat the value.
                        if let Some(src) = espan.as_ref().and_then(|r| self.text.get(r.clone())) {
                            msg = format!("{msg}: {src}");
                        }
                    }
                    match hit {
                        Some(k) => {
                            self.error(
                                espan.as_ref(),
                                Some(loc.key(&k)),
                                ErrorKind::InvalidValue,
                                msg,
                            );
                            table = table
                                .into_iter()
                                .filter(|(key, _)| key.get_ref().as_ref() != k)
                                .collect();
                            loc.failed.insert(k);
                        }
                        None => {
                            let at = espan.or(header);
                            self.error(at.as_ref(), Some(loc.name()), ErrorKind::InvalidValue, msg);
                            return loc;
                        }
                    }
                }
            }
        }
    }

    /// A `[tunnel.NAME]` table: its own keys, its tunnel-profile keys and
    /// its `session` tables.
    fn tunnel(
        &mut self,
        path: Vec<String>,
        name_key: &Spanned<toml::de::DeString<'t>>,
        table: Table<'t>,
        span: Range<usize>,
    ) -> RawTunnel {
        let own_fields = struct_fields::<TunnelOwn>();
        let mut own = Table::new();
        let mut params = Table::new();
        let mut sessions = BTreeMap::new();
        for (k, v) in table {
            let entry = (k, v);
            let name = entry.0.get_ref().to_string();
            if name == "session" {
                let mut sp: Vec<&str> = path.iter().map(String::as_str).collect();
                sp.push("session");
                for (n, sk, t, s) in self.named_tables(&sp, entry.1) {
                    let mut spath = path.clone();
                    spath.push("session".into());
                    spath.push(n.clone());
                    let session = self.session(spath, &sk, t, s);
                    sessions.insert(n, session);
                }
            } else if own_fields.contains(&name.as_str()) {
                own.insert(entry.0, entry.1);
            } else {
                params.insert(entry.0, entry.1);
            }
        }
        let header = Some(name_key.span());
        let mut extra: Vec<&str> = own_fields.to_vec();
        extra.push("session");
        let params = self.located_with::<TunnelSettings>(
            path.clone(),
            header.clone(),
            params,
            span.clone(),
            &extra,
        );
        let own = self.located_with::<TunnelOwn>(path, header, own, span, &[]);
        RawTunnel {
            own,
            params,
            sessions,
        }
    }

    /// A `[tunnel.T.session.NAME]` table with its optional `ppp` sub-table.
    fn session(
        &mut self,
        path: Vec<String>,
        name_key: &Spanned<toml::de::DeString<'t>>,
        table: Table<'t>,
        span: Range<usize>,
    ) -> SessionTable {
        if table.is_empty() {
            return SessionTable::Empty(Some(self.origin(&name_key.span())));
        }
        let own_fields = struct_fields::<SessionOwn>();
        let ppp_fields = struct_fields::<PppSettings>();
        let mut own = Table::new();
        let mut params = Table::new();
        let mut ppp_path = path.clone();
        ppp_path.push("ppp".into());
        let mut ppp = Located::empty(ppp_path.clone());
        for (k, v) in table {
            let name = k.get_ref().to_string();
            if name == "ppp" {
                let kspan = k.span();
                if let Some((t, s)) = self.expect_table(&ppp_path, v) {
                    ppp = self.located_with(ppp_path.clone(), Some(kspan), t, s, &[]);
                }
            } else if own_fields.contains(&name.as_str()) {
                own.insert(k, v);
            } else if ppp_fields.contains(&name.as_str())
                && !struct_fields::<SessionSettings>().contains(&name.as_str())
            {
                let mut kp = path.clone();
                kp.push(name.clone());
                self.error(
                    Some(&k.span()),
                    Some(key_path(&kp)),
                    ErrorKind::UnknownKey,
                    format!(
                        "unknown key; `{name}` is a PPP parameter: put it under [{}]",
                        key_path(&ppp_path)
                    ),
                );
            } else {
                params.insert(k, v);
            }
        }
        let header = Some(name_key.span());
        let mut extra: Vec<&str> = own_fields.to_vec();
        extra.push("ppp");
        let params = self.located_with::<SessionSettings>(
            path.clone(),
            header.clone(),
            params,
            span.clone(),
            &extra,
        );
        let own = self.located_with::<SessionOwn>(path, header, own, span, &[]);
        SessionTable::Set(Box::new(RawSession { own, params, ppp }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_introspected() {
        let f = struct_fields::<TunnelOwn>();
        assert_eq!(
            f,
            &[
                "peer_addr",
                "our_addr",
                "tunnel_profile_name",
                "peer_profile_name",
                "persist"
            ]
        );
        assert!(struct_fields::<TunnelSettings>().contains(&"hello_timeout"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("hello_timout", ["hello_timeout", "mtu"]),
            Some("hello_timeout")
        );
        assert_eq!(suggest("xyz", ["hello_timeout", "mtu"]), None);
    }
}
