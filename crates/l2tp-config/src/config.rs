//! The validated configuration and profile inheritance.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::error::{ConfigError, ConfigErrors, ErrorKind, Origin, Position};
use crate::load::{ConfigPaths, SourceFile};
use crate::params::{
    PeerParams, PppParams, PppSettings, Problem, SessionParams, SessionSettings, SettingsTable,
    SystemConfig, TunnelParams, TunnelSettings,
};
use crate::parse::{Located, Parser, RawDoc, RawTunnel, SessionTable, suggest};
use crate::secrets;
use crate::values::SessionType;

/// Name of the built-in profile of each kind.
pub const DEFAULT_PROFILE: &str = "default";

/// A peer profile (`[peer_profile.NAME]`) after inheriting from the
/// `default` peer profile.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerProfile {
    /// The profile's name (`default` for the built-in one).
    pub name: String,
    /// Its parameters.
    pub params: PeerParams,
}

/// How [`Config::match_peer`] chose a peer profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// The peer's Host Name AVP equals the profile's `host_name`.
    HostName,
    /// The peer's address is inside the profile's `peer_addr` prefix of this
    /// length (the longest such prefix won).
    Address {
        /// Prefix length in bits.
        prefix_len: u8,
    },
    /// Nothing matched: the `default` peer profile.
    Default,
}

/// The result of [`Config::match_peer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerMatch<'a> {
    /// The matching peer profile.
    pub profile: &'a PeerProfile,
    /// Why it matched.
    pub matched_by: MatchedBy,
}

impl PeerMatch<'_> {
    /// We may act as LAC towards this peer (its `lac_lns` is `lac` or
    /// `lac_lns`; OpenL2TP `we_can_be_lac`).
    pub fn we_can_be_lac(&self) -> bool {
        self.profile.params.lac_lns.can_be_lac()
    }

    /// We may act as LNS towards this peer (its `lac_lns` is `lns` or
    /// `lac_lns`; OpenL2TP `we_can_be_lns`).
    pub fn we_can_be_lns(&self) -> bool {
        self.profile.params.lac_lns.can_be_lns()
    }
}

/// A session the daemon places once its tunnel is up
/// (`[tunnel.T.session.NAME]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSession {
    /// The session's name (table name).
    pub name: String,
    /// What kind of call to place (default `lac_incoming`).
    pub session_type: SessionType,
    /// Effective session parameters, shared with the tunnel's other
    /// sessions whose parameters are equal (a tunnel of 65,535 alike
    /// sessions holds one copy).
    pub params: Arc<SessionParams>,
    /// Effective PPP parameters, shared likewise.
    pub ppp: Arc<PppParams>,
    /// The session profile the table names (`session_profile_name`), if any.
    pub session_profile: Option<String>,
}

/// A tunnel we set up ourselves (`[tunnel.NAME]`), with everything resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalTunnel {
    /// The tunnel's name (table name).
    pub name: String,
    /// Peer address and UDP port (`peer_addr`, `peer_udp_port`).
    pub peer: SocketAddr,
    /// Local address to use (`our_addr`); `None`: `system.listen_addr`.
    pub local: Option<IpAddr>,
    /// Re-establish the tunnel when it goes down.
    pub persist: bool,
    /// The tunnel profile the `[tunnel.NAME]` table names (`tunnel_profile_name`), if any.
    pub tunnel_profile: Option<String>,
    /// Name of the peer profile in force (named by `peer_profile_name`,
    /// else matched by `peer_addr`, else `default`).
    pub peer_profile: String,
    /// Effective tunnel parameters.
    pub params: TunnelParams,
    /// The sessions to place, sorted by name.
    pub sessions: Vec<LocalSession>,
    /// Session parameters for sessions the peer sets up in this tunnel
    /// (shared with other tunnels whose are equal).
    pub session_defaults: Arc<SessionParams>,
    /// PPP parameters for sessions the peer sets up in this tunnel (shared likewise).
    pub ppp_defaults: Arc<PppParams>,
}

/// A validated configuration with profiles resolved.
///
/// Inheritance (OpenL2TP's model; a value set at a higher level wins, keys
/// no level sets take the built-in default):
/// - tunnel: the `[tunnel.NAME]` keys → its `tunnel_profile_name` profile →
///   its peer profile's tunnel profile → `[tunnel_profile.default]`;
/// - session: the session table's keys → the session profile it names
///   (else the one the tunnel names) → the peer profile's session profile →
///   `[session_profile.default]`;
/// - PPP: the session's `[…ppp]` table → the PPP profile the session table
///   names → the one its session profile(s) name → the one the tunnel (or
///   its tunnel profiles) names → the peer profile's →
///   `[ppp_profile.default]`.
///
/// Naming `default` explicitly is the same as naming nothing: the default
/// profile is always the last level.
///
/// Equality (`==`) compares the effective configuration: `[system]`, the
/// local tunnels and sessions, the peer profiles, what incoming tunnels of
/// each peer profile resolve to, and every profile resolved on its own;
/// where it was read from (files, lines) does not count.
#[derive(Debug, Clone)]
pub struct Config {
    /// Global settings.
    pub system: SystemConfig,
    tunnels: Vec<LocalTunnel>,
    peers: Vec<PeerProfile>,
    doc: RawDoc,
    sources: Vec<PathBuf>,
    secrets_file: Option<PathBuf>,
    warnings: Vec<ConfigError>,
    defined_tables: BTreeSet<(String, String)>,
}

/// What differs between a running configuration and a new one
/// ([`Config::changes`]), for a reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChanges {
    /// `[system]` keys whose effective value differs, in schema order.
    pub system_keys: Vec<&'static str>,
    /// Local tunnels only the new configuration has.
    pub tunnels_added: BTreeSet<String>,
    /// Local tunnels only the old configuration has.
    pub tunnels_removed: BTreeSet<String>,
    /// Local tunnels in both whose [`LocalTunnel`] differs (any resolved
    /// parameter, secret, peer, session list or session parameter).
    pub tunnels_changed: BTreeSet<String>,
    /// The peer profiles, or what incoming tunnels of one of them resolve
    /// to ([`Config::resolve_incoming`]), differ.
    pub incoming_changed: bool,
}

impl ConfigChanges {
    /// True when nothing the daemon acts on differs.
    pub fn is_empty(&self) -> bool {
        self.system_keys.is_empty()
            && self.tunnels_added.is_empty()
            && self.tunnels_removed.is_empty()
            && self.tunnels_changed.is_empty()
            && !self.incoming_changed
    }
}

/// Parameters of tunnels set up by peers, per peer profile.
type Incoming = Vec<(String, TunnelParams, SessionParams, PppParams)>;

impl Config {
    /// Reads and validates one configuration file, without drop-ins; its
    /// `system.secrets_file`, if set, is read too (see [`Config::load`]).
    pub fn from_file(path: &Path) -> Result<Self, ConfigErrors> {
        Self::load(&ConfigPaths::single(path))
    }

    /// Finds, reads, merges and validates the configuration files `paths`
    /// describes (main file, then drop-ins in lexical order of their names;
    /// see [`ConfigPaths`] for the search, masking and precedence rules),
    /// then the secrets file `system.secrets_file` names, if any.
    ///
    /// The secrets file (relative paths are relative to the directory of
    /// the file that sets `secrets_file`) may only set `secret` in
    /// `[tunnel_profile.NAME]` and `[tunnel.NAME]` tables and
    /// `user_password` in `[ppp_profile.NAME]` and
    /// `[tunnel.T.session.S.ppp]` tables the configuration defines; its
    /// values replace those of the configuration files. It is refused (an
    /// [`ErrorKind::Permissions`] error naming the file and its mode) when
    /// group or others have any access to it (`mode & 0o077 != 0`).
    ///
    /// A secret written in a configuration file that group or others may
    /// read is accepted, with a warning ([`Config::warnings`]).
    ///
    /// Every error of every file is reported at once, each naming its file
    /// (and line and key where there is one). Call again to reload: nothing
    /// is cached.
    pub fn load(paths: &ConfigPaths) -> Result<Self, ConfigErrors> {
        let found = paths.discover();
        assemble(found.files, found.errors, true)
    }

    /// Parses and validates configuration text; `origin` is the file name
    /// used in error messages. Reads nothing from disk: a
    /// `system.secrets_file` is not read (use [`Config::load`]).
    pub fn from_str(text: &str, origin: &Path) -> Result<Self, ConfigErrors> {
        Self::from_sources([(origin, text)])
    }

    /// Parses several files and merges them in order, later keys replacing
    /// earlier ones table by table (drop-in semantics), then validates the
    /// result. Every error of every file is reported. Reads nothing from
    /// disk: a `system.secrets_file` is not read (use [`Config::load`]).
    pub fn from_sources<'a, I>(sources: I) -> Result<Self, ConfigErrors>
    where
        I: IntoIterator<Item = (&'a Path, &'a str)>,
    {
        let files = sources
            .into_iter()
            .map(|(path, text)| SourceFile {
                path: path.to_path_buf(),
                text: text.to_owned(),
                mode: None,
            })
            .collect();
        assemble(files, Vec::new(), false)
    }

    /// The files this configuration was read from, in merge order: the
    /// main file, the drop-ins, and last the secrets file if one was read.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// The secrets file that was read (also the last of
    /// [`Config::sources`]), if any.
    pub fn secrets_file(&self) -> Option<&Path> {
        self.secrets_file.as_deref()
    }

    /// Every `[KIND.NAME]` table the configuration files define, as
    /// `(KIND, NAME)` (KIND one of `tunnel_profile`, `session_profile`,
    /// `ppp_profile`, `peer_profile`, `tunnel`), over all files: a built-in
    /// `default` profile only when a file defines it. Found while parsing,
    /// so that nothing parses the files again to list them.
    pub fn defined_tables(&self) -> &BTreeSet<(String, String)> {
        &self.defined_tables
    }

    /// Problems that do not stop the configuration from being used (so far:
    /// secrets written in configuration files that group or others may
    /// read, kind [`ErrorKind::Permissions`]). The daemon should log them.
    /// They never contain a secret.
    pub fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    /// The tunnels to set up, sorted by name.
    pub fn local_tunnels(&self) -> &[LocalTunnel] {
        &self.tunnels
    }

    /// The names of the tunnels to set up.
    pub fn local_tunnel_names(&self) -> BTreeSet<String> {
        self.tunnels.iter().map(|t| t.name.clone()).collect()
    }

    /// One configured tunnel by name, O(log n) (the tunnels are sorted by name).
    pub fn local_tunnel(&self, name: &str) -> Option<&LocalTunnel> {
        self.tunnels
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.tunnels[i])
    }

    /// What changes from `self` (the running configuration) to `new`: the
    /// `[system]` keys that differ, local tunnels added, removed or changed,
    /// and whether incoming tunnels would resolve differently.
    pub fn changes(&self, new: &Self) -> ConfigChanges {
        let old_names = self.local_tunnel_names();
        let new_names = new.local_tunnel_names();
        ConfigChanges {
            system_keys: self.system.changed_keys(&new.system),
            tunnels_added: new_names.difference(&old_names).cloned().collect(),
            tunnels_removed: old_names.difference(&new_names).cloned().collect(),
            tunnels_changed: old_names
                .intersection(&new_names)
                .filter(|n| self.local_tunnel(n) != new.local_tunnel(n))
                .cloned()
                .collect(),
            incoming_changed: self.peers != new.peers || self.incoming() != new.incoming(),
        }
    }

    /// All peer profiles (including `default`), sorted by name.
    pub fn peer_profiles(&self) -> &[PeerProfile] {
        &self.peers
    }

    /// The local address configured for tunnel `name` (`our_addr`); `None`
    /// when unset (use `system.listen_addr`) or when there is no such tunnel.
    pub fn tunnel_local_addr(&self, name: &str) -> Option<IpAddr> {
        self.local_tunnel(name).and_then(|t| t.local)
    }

    /// A peer profile by name.
    pub fn peer_profile(&self, name: &str) -> Option<&PeerProfile> {
        self.peers.iter().find(|p| p.name == name)
    }

    /// A tunnel profile resolved on its own (over `default`).
    pub fn tunnel_profile(&self, name: &str) -> Option<TunnelParams> {
        let p = self.doc.tunnel_profiles.get(name)?;
        Some(resolve(&chain(&self.doc.tunnel_profiles, Some(p), &[])))
    }

    /// A session profile resolved on its own (over `default`).
    pub fn session_profile(&self, name: &str) -> Option<SessionParams> {
        let p = self.doc.session_profiles.get(name)?;
        Some(resolve(&chain(&self.doc.session_profiles, Some(p), &[])))
    }

    /// A PPP profile resolved on its own (over `default`).
    pub fn ppp_profile(&self, name: &str) -> Option<PppParams> {
        let p = self.doc.ppp_profiles.get(name)?;
        Some(resolve(&chain(&self.doc.ppp_profiles, Some(p), &[])))
    }

    /// The peer profile for an incoming tunnel from `addr` whose SCCRQ
    /// carried `host_name` (the Host Name AVP's bytes).
    ///
    /// Order: a profile whose `host_name` equals the AVP (ASCII
    /// case-insensitive; if the profile also has `peer_addr`, the address
    /// must be inside it too); else the profile without `host_name` whose
    /// `peer_addr` prefix contains `addr`, longest prefix first; else
    /// `default`. IPv4-mapped IPv6 addresses match IPv4 prefixes.
    pub fn match_peer(&self, addr: IpAddr, host_name: Option<&[u8]>) -> PeerMatch<'_> {
        match_peer_in(&self.peers, addr, host_name)
    }

    /// Effective parameters for an incoming tunnel with the matched peer:
    /// the tunnel's (the peer profile's tunnel profile over `default`), and
    /// the session and PPP parameters of sessions the peer sets up in it
    /// (the chains described on [`Config`], without session tables).
    pub fn resolve_incoming(&self, m: &PeerMatch<'_>) -> (TunnelParams, SessionParams, PppParams) {
        let t = TunnelScope::new(&self.doc, None, None, &m.profile.params);
        let s = t.session(None, None, None);
        (t.params, s.session, s.ppp)
    }

    /// What incoming tunnels of each peer profile resolve to.
    fn incoming(&self) -> Incoming {
        self.peers
            .iter()
            .map(|p| {
                let (t, s, ppp) = self.resolve_incoming(&PeerMatch {
                    profile: p,
                    matched_by: MatchedBy::Default,
                });
                (p.name.clone(), t, s, ppp)
            })
            .collect()
    }

    /// The `[tunnel.NAME]`, `[tunnel.NAME.session.NAME]` and
    /// `[tunnel.NAME.session.NAME.ppp]` tables of the effective
    /// configuration, appended to `out` one tunnel or session at a time.
    fn tunnel_tables(&self, out: &mut String) {
        // `{tunnel: {name: {session: {sname: table}}}}` for one table: the
        // serialiser writes only the innermost header(s).
        fn nest(path: &[&str], leaf: toml::Table) -> toml::Table {
            path.iter().rev().fold(leaf, |inner, key| {
                let mut t = toml::Table::new();
                t.insert((*key).to_owned(), toml::Value::Table(inner));
                t
            })
        }
        for t in &self.tunnels {
            let raw = self.doc.tunnels.get(&t.name);
            let mut tt = table_of(&t.params.to_settings());
            tt.insert("peer_addr".into(), t.peer.ip().to_string().into());
            if let Some(l) = t.local {
                tt.insert("our_addr".into(), l.to_string().into());
            }
            tt.insert("persist".into(), t.persist.into());
            if let Some(n) = raw.and_then(|r| r.own.settings.tunnel_profile_name.clone()) {
                tt.insert("tunnel_profile_name".into(), n.into());
            }
            tt.insert("peer_profile_name".into(), t.peer_profile.clone().into());
            out.push('\n');
            out.push_str(&toml::to_string(&nest(&["tunnel", &t.name], tt)).unwrap_or_default());
            for s in &t.sessions {
                let mut st = table_of(&s.params.to_settings());
                st.insert("session_type".into(), to_value(&s.session_type));
                if let Some(n) = s.session_profile.clone() {
                    st.insert("session_profile_name".into(), n.into());
                }
                st.insert("ppp".into(), to_value(&s.ppp.to_settings()));
                let path = ["tunnel", t.name.as_str(), "session", s.name.as_str()];
                out.push('\n');
                out.push_str(&toml::to_string(&nest(&path, st)).unwrap_or_default());
            }
        }
    }

    /// The effective configuration as TOML, for `l2tpd check`.
    ///
    /// - A header comment lists the files read, in merge order.
    /// - `[system]` and each `[KIND.default]` profile list every key with
    ///   its effective value (so every built-in default is visible).
    /// - Other tunnel, session and PPP profiles list the keys set for them
    ///   over all files (merged). They are not printed resolved over
    ///   `default`: inheritance goes key by key through a chain of profiles
    ///   (see [`Config`]), and a profile filled in from `default` would hide
    ///   the profiles below it in the chain.
    /// - Peer profiles are printed resolved (over `[peer_profile.default]`).
    /// - Every `[tunnel.NAME]` and `[tunnel.T.session.S]` (with its `ppp`
    ///   table) lists every resolved value, plus the profile names that
    ///   place it in its chains.
    /// - A commented block per peer profile shows the fully resolved
    ///   tunnel, session and PPP parameters of the tunnels that peers
    ///   matching it set up (left out when
    ///   `system.deny_remote_tunnel_creates` is true).
    ///
    /// Secrets appear as `<redacted>`. The text parses back
    /// ([`Config::from_str`]) into a configuration equal to this one,
    /// except that the secrets are the string `<redacted>`.
    pub fn to_toml_effective(&self) -> String {
        let mut root = toml::Table::new();
        root.insert("system".into(), to_value(&self.system.to_settings()));

        fn profiles<S: Serialize + SettingsTable>(
            map: &BTreeMap<String, Located<S>>,
            resolved_default: toml::Value,
        ) -> toml::Value {
            let mut t = toml::Table::new();
            for (name, l) in map {
                let v = if name == DEFAULT_PROFILE {
                    resolved_default.clone()
                } else {
                    to_value(&l.settings)
                };
                t.insert(name.clone(), v);
            }
            toml::Value::Table(t)
        }
        let default_of = |v: Option<toml::Table>| toml::Value::Table(v.unwrap_or_default());
        root.insert(
            "tunnel_profile".into(),
            profiles(
                &self.doc.tunnel_profiles,
                default_of(
                    self.tunnel_profile(DEFAULT_PROFILE)
                        .map(|p| table_of(&p.to_settings())),
                ),
            ),
        );
        root.insert(
            "session_profile".into(),
            profiles(
                &self.doc.session_profiles,
                default_of(
                    self.session_profile(DEFAULT_PROFILE)
                        .map(|p| table_of(&p.to_settings())),
                ),
            ),
        );
        root.insert(
            "ppp_profile".into(),
            profiles(
                &self.doc.ppp_profiles,
                default_of(
                    self.ppp_profile(DEFAULT_PROFILE)
                        .map(|p| table_of(&p.to_settings())),
                ),
            ),
        );
        let mut peers = toml::Table::new();
        for p in &self.peers {
            peers.insert(p.name.clone(), to_value(&p.params.to_settings()));
        }
        root.insert("peer_profile".into(), toml::Value::Table(peers));

        // Tunnels and their sessions are written one table at a time
        // (`tunnel_tables`): the toml serialiser is quadratic in the size of
        // one nested document (65,535 sessions took minutes).
        let mut out = String::from(
            "# l2tpd effective configuration: drop-ins merged, defaults and inheritance\n\
             # applied, secrets redacted.\n",
        );
        if self.sources.is_empty() {
            out.push_str("# Read from: nothing.\n");
        } else {
            out.push_str("# Read from, in merge order:\n");
            for s in &self.sources {
                let what = if Some(s) == self.secrets_file.as_ref() {
                    " (secrets)"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "#   {}{what}\n",
                    comment_safe(&s.display().to_string())
                ));
            }
        }
        out.push_str(
            "# [system] and the default profiles list every key. Other tunnel, session\n\
             # and PPP profiles list the keys set for them: they are layered key by key\n\
             # over the profiles below them. Tunnels and sessions list resolved values.\n",
        );
        // One section at a time, to keep the file's natural order.
        for kind in [
            "system",
            "tunnel_profile",
            "session_profile",
            "ppp_profile",
            "peer_profile",
        ] {
            if let Some(v) = root.remove(kind) {
                let mut one = toml::Table::new();
                one.insert(kind.into(), v);
                out.push('\n');
                out.push_str(&toml::to_string(&one).unwrap_or_default());
            }
        }
        self.tunnel_tables(&mut out);

        // What tunnels set up by peers resolve to, for reading only.
        if self.system.deny_remote_tunnel_creates {
            out.push_str(
                "\n# system.deny_remote_tunnel_creates = true: peers cannot set up tunnels.\n",
            );
            return out;
        }
        for (name, t, s, ppp) in self.incoming() {
            out.push_str(&format!(
                "\n# Tunnels set up by peers matching peer_profile.{} resolve to:\n",
                crate::error::quote_key(&name)
            ));
            for (part, v) in [
                ("tunnel", to_value(&t.to_settings())),
                ("session", to_value(&s.to_settings())),
                ("ppp", to_value(&ppp.to_settings())),
            ] {
                let mut inner = toml::Table::new();
                inner.insert(part.into(), v);
                let mut peer = toml::Table::new();
                peer.insert(name.clone(), toml::Value::Table(inner));
                let mut one = toml::Table::new();
                one.insert("incoming".into(), toml::Value::Table(peer));
                if part != "tunnel" {
                    out.push_str("#\n");
                }
                for line in toml::to_string(&one).unwrap_or_default().lines() {
                    if line.is_empty() {
                        out.push_str("#\n");
                    } else {
                        out.push_str(&format!("# {line}\n"));
                    }
                }
            }
        }
        out
    }
}

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        fn profiles<S: SettingsTable>(
            map: &BTreeMap<String, Located<S>>,
        ) -> Vec<(&String, S::Params)>
        where
            S::Params: PartialEq,
        {
            map.iter()
                .map(|(n, l)| (n, resolve(&chain(map, Some(l), &[]))))
                .collect()
        }
        self.system == other.system
            && self.tunnels == other.tunnels
            && self.peers == other.peers
            && self.incoming() == other.incoming()
            && profiles(&self.doc.tunnel_profiles) == profiles(&other.doc.tunnel_profiles)
            && profiles(&self.doc.session_profiles) == profiles(&other.doc.session_profiles)
            && profiles(&self.doc.ppp_profiles) == profiles(&other.doc.ppp_profiles)
    }
}

/// A file name made safe for a one-line comment.
fn comment_safe(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Warnings for secrets written in a file whose mode lets group or others
/// read it.
fn exposed_secrets(doc: &RawDoc, file: &Path, mode: u32) -> Vec<ConfigError> {
    fn check<S>(out: &mut Vec<(Origin, String)>, l: &Located<S>, key: &str) {
        if let Some(o) = l.origins.get(key) {
            out.push((o.clone(), l.key(key)));
        }
    }
    let mut found = Vec::new();
    for l in doc.tunnel_profiles.values() {
        check(&mut found, l, "secret");
    }
    for l in doc.ppp_profiles.values() {
        check(&mut found, l, "user_password");
    }
    for t in doc.tunnels.values() {
        check(&mut found, &t.params, "secret");
        for s in t.sessions.values() {
            if let SessionTable::Set(s) = s {
                check(&mut found, &s.ppp, "user_password");
            }
        }
    }
    found
        .into_iter()
        .map(|(o, key)| ConfigError {
            file: file.to_path_buf(),
            position: Some(o.pos),
            key: Some(key),
            kind: ErrorKind::Permissions,
            message: format!(
                "secret in a file group or others may read (mode {mode:04o}); move it to the \
                 secrets file (system.secrets_file) or chmod 600 this file"
            ),
        })
        .collect()
}

/// Parses, merges (then reads the secrets file when `disk`) and validates.
fn assemble(
    files: Vec<SourceFile>,
    mut errors: Vec<ConfigError>,
    disk: bool,
) -> Result<Config, ConfigErrors> {
    let mut doc = RawDoc::default();
    let mut warnings = Vec::new();
    let mut paths = Vec::new();
    let mut defined_tables = BTreeSet::new();
    for f in &files {
        let (d, errs) = Parser::new(&f.text, Arc::from(f.path.as_path())).parse();
        d.named_tables_into(&mut defined_tables);
        if let Some(mode) = f.mode.filter(|m| m & 0o044 != 0) {
            warnings.extend(exposed_secrets(&d, &f.path, mode));
        }
        doc.merge(d);
        errors.extend(errs);
        paths.push(f.path.clone());
    }
    doc.ensure_defaults();

    let mut secrets_file = None;
    let set = doc.system.settings.secrets_file.clone();
    let usable = set.as_ref().is_some_and(|p| {
        !p.as_os_str().is_empty() && !p.as_os_str().as_encoded_bytes().contains(&0)
    });
    if let (true, true, Some(p)) = (disk, usable, set) {
        let origin = doc.system.origins.get("secrets_file").cloned();
        let path = match origin.as_ref().and_then(|o| o.file.parent()) {
            Some(dir) if p.is_relative() => dir.join(&p),
            _ => p,
        };
        let (text, errs) = secrets::read(&path, origin.as_ref());
        errors.extend(errs);
        if let Some(text) = text {
            let (s, errs) = secrets::parse(&text, Arc::from(path.as_path()));
            errors.extend(errs);
            secrets::merge_into(&mut doc, s, &mut errors);
        }
        doc.system.settings.secrets_file = Some(path.clone());
        paths.push(path.clone());
        secrets_file = Some(path);
    }

    let primary = paths
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("<config>"));
    let mut check = Checker {
        primary,
        errors,
        used: HashSet::new(),
        inconsistent: BTreeMap::new(),
    };
    let mut config = check.build(doc, paths);
    config.defined_tables = defined_tables;
    if check.errors.is_empty() {
        config.secrets_file = secrets_file;
        config.warnings = ConfigErrors::new(warnings).errors;
        Ok(config)
    } else {
        Err(ConfigErrors::new(check.errors))
    }
}

fn to_value<T: Serialize>(v: &T) -> toml::Value {
    toml::Value::try_from(v).unwrap_or_else(|_| toml::Value::Table(toml::Table::new()))
}

fn table_of<T: Serialize>(v: &T) -> toml::Table {
    match to_value(v) {
        toml::Value::Table(t) => t,
        _ => toml::Table::new(),
    }
}

/// Layers for one kind, highest first: `top`, then the named profiles that
/// exist (skipping repeats and `default`), then `default` last.
fn chain<'a, S>(
    map: &'a BTreeMap<String, Located<S>>,
    top: Option<&'a Located<S>>,
    names: &[Option<&str>],
) -> Vec<&'a Located<S>> {
    let mut layers: Vec<&Located<S>> = Vec::new();
    let default = map.get(DEFAULT_PROFILE);
    let mut push = |l: &'a Located<S>| {
        if default.is_some_and(|d| std::ptr::eq(d, l)) {
            return;
        }
        if !layers.iter().any(|x| std::ptr::eq(*x, l)) {
            layers.push(l);
        }
    };
    if let Some(t) = top {
        push(t);
    }
    for n in names.iter().flatten() {
        if let Some(l) = map.get(*n) {
            push(l);
        }
    }
    layers.extend(default);
    layers
}

fn resolve<S: SettingsTable>(layers: &[&Located<S>]) -> S::Params {
    let mut p = S::Params::default();
    for l in layers.iter().rev() {
        l.settings.apply(&mut p);
    }
    p
}

fn tunnel_chain<'a>(
    doc: &'a RawDoc,
    own: Option<&'a Located<TunnelSettings>>,
    profile: Option<&str>,
    peer: &PeerParams,
) -> Vec<&'a Located<TunnelSettings>> {
    chain(
        &doc.tunnel_profiles,
        own,
        &[profile, Some(peer.tunnel_profile_name.as_str())],
    )
}

fn session_chain<'a>(
    doc: &'a RawDoc,
    own: Option<&'a Located<SessionSettings>>,
    profile: Option<&str>,
    tunnel: &TunnelParams,
    peer: &PeerParams,
) -> Vec<&'a Located<SessionSettings>> {
    let named = profile.or(tunnel.session_profile_name.as_deref());
    chain(
        &doc.session_profiles,
        own,
        &[named, Some(peer.session_profile_name.as_str())],
    )
}

/// PPP levels: `own` (the session's `[…ppp]` table), then one level per
/// session layer that names a PPP profile (the session table first, then
/// its session profiles), then per tunnel layer, then the peer profile's.
fn ppp_chain<'a>(
    doc: &'a RawDoc,
    own: Option<&'a Located<PppSettings>>,
    session_layers: &[&'a Located<SessionSettings>],
    tunnel_layers: &[&'a Located<TunnelSettings>],
    peer: &'a PeerParams,
) -> Vec<&'a Located<PppSettings>> {
    let mut names: Vec<Option<&str>> = session_layers
        .iter()
        .map(|l| l.settings.ppp_profile_name.as_deref())
        .collect();
    names.extend(
        tunnel_layers
            .iter()
            .map(|l| l.settings.ppp_profile_name.as_deref()),
    );
    names.push(Some(peer.ppp_profile_name.as_str()));
    chain(&doc.ppp_profiles, own, &names)
}

/// A tunnel's resolved parameters with the layers they came from: what
/// resolving its sessions needs.
struct TunnelScope<'a> {
    doc: &'a RawDoc,
    peer: &'a PeerParams,
    layers: Vec<&'a Located<TunnelSettings>>,
    params: TunnelParams,
}

/// A session's resolved parameters with the layers they came from.
struct SessionScope<'a> {
    session_layers: Vec<&'a Located<SessionSettings>>,
    session: SessionParams,
    ppp_layers: Vec<&'a Located<PppSettings>>,
    ppp: PppParams,
}

impl<'a> TunnelScope<'a> {
    /// Resolves a tunnel from its own table (if any), the tunnel profile it
    /// names and its peer profile.
    fn new(
        doc: &'a RawDoc,
        own: Option<&'a Located<TunnelSettings>>,
        profile: Option<&str>,
        peer: &'a PeerParams,
    ) -> Self {
        let layers = tunnel_chain(doc, own, profile, peer);
        let params = resolve(&layers);
        TunnelScope {
            doc,
            peer,
            layers,
            params,
        }
    }

    /// Resolves a session in this tunnel: `own`/`ppp_own` are the session's
    /// tables, `profile` the session profile it names (all `None` for
    /// sessions the peer sets up).
    fn session(
        &self,
        own: Option<&'a Located<SessionSettings>>,
        ppp_own: Option<&'a Located<PppSettings>>,
        profile: Option<&str>,
    ) -> SessionScope<'a> {
        let session_layers = session_chain(self.doc, own, profile, &self.params, self.peer);
        let session = resolve(&session_layers);
        let ppp_layers = ppp_chain(self.doc, ppp_own, &session_layers, &self.layers, self.peer);
        let ppp = resolve(&ppp_layers);
        SessionScope {
            session_layers,
            session,
            ppp_layers,
            ppp,
        }
    }
}

fn match_peer_in<'a>(
    peers: &'a [PeerProfile],
    addr: IpAddr,
    host_name: Option<&[u8]>,
) -> PeerMatch<'a> {
    let addr = addr.to_canonical();
    let candidates = || peers.iter().filter(|p| p.name != DEFAULT_PROFILE);
    if let Some(h) = host_name {
        let by_name = candidates().find(|p| {
            p.params
                .host_name
                .as_ref()
                .is_some_and(|n| n.as_bytes().eq_ignore_ascii_case(h))
                && p.params.peer_addr.is_none_or(|pre| pre.contains(addr))
        });
        if let Some(profile) = by_name {
            return PeerMatch {
                profile,
                matched_by: MatchedBy::HostName,
            };
        }
    }
    let by_addr = candidates()
        .filter(|p| p.params.host_name.is_none())
        .filter_map(|p| {
            p.params
                .peer_addr
                .filter(|pre| pre.contains(addr))
                .map(|pre| (pre.len(), p))
        })
        .max_by_key(|(len, _)| *len);
    if let Some((prefix_len, profile)) = by_addr {
        return PeerMatch {
            profile,
            matched_by: MatchedBy::Address { prefix_len },
        };
    }
    let profile = peers
        .iter()
        .find(|p| p.name == DEFAULT_PROFILE)
        .expect("the default peer profile always exists");
    PeerMatch {
        profile,
        matched_by: MatchedBy::Default,
    }
}

/// Validation after parsing: references, constraints on resolved values,
/// and the resolved tunnels.
struct Checker {
    primary: PathBuf,
    errors: Vec<ConfigError>,
    /// Addresses of the tables that took part in a checked resolution.
    used: HashSet<usize>,
    /// Inconsistencies found so far: place, key and message → the users
    /// (tunnels, peer profiles) they affect.
    inconsistent: BTreeMap<InconsistencyAt, BTreeSet<String>>,
}

/// Where an inconsistency is reported: file and position, key, message.
type InconsistencyAt = (Option<(PathBuf, Position)>, String, String);

impl Checker {
    fn push(&mut self, origin: Option<&Origin>, key: String, kind: ErrorKind, message: String) {
        self.errors.push(ConfigError {
            file: origin.map_or_else(|| self.primary.clone(), |o| o.file.to_path_buf()),
            position: origin.map(|o| o.pos),
            key: Some(key),
            kind,
            message,
        });
    }

    /// Reports `problems` of parameters resolved from `layers`, each at the
    /// highest layer that set one of its keys.
    fn check_unused<S: SettingsTable>(
        &mut self,
        map: &BTreeMap<String, Located<S>>,
        problems: fn(&S::Params) -> Vec<Problem>,
    ) {
        for l in map.values() {
            if !self.used.contains(&(std::ptr::from_ref(l) as usize)) {
                let layers = chain(map, Some(l), &[]);
                let p = resolve(&layers);
                self.report(&layers, problems(&p), None);
            }
        }
    }

    /// Reports `problems` of parameters resolved from `layers` (highest
    /// first), each at the highest layer that set one of its keys. `user`
    /// names what the resolution was for (`tunnel.t`); it is mentioned when
    /// the blamed key is not in the user's own table, so an error in a shared
    /// profile says which users it breaks.
    fn report<S>(&mut self, layers: &[&Located<S>], problems: Vec<Problem>, user: Option<&str>) {
        self.used
            .extend(layers.iter().map(|l| std::ptr::from_ref(*l) as usize));
        'problem: for pr in problems {
            if layers
                .iter()
                .any(|l| pr.keys.iter().any(|k| l.failed.contains(*k)))
            {
                continue;
            }
            let mut blamed = None;
            'find: for (i, l) in layers.iter().enumerate() {
                for k in pr.keys {
                    if let Some(o) = l.origins.get(*k) {
                        blamed = Some((i, Some(o.clone()), l.key(k)));
                        break 'find;
                    }
                }
            }
            let (index, origin, key) = match blamed {
                Some(b) => b,
                None => match layers.iter().position(|l| l.header.is_some()) {
                    Some(i) => (i, layers[i].header.clone(), layers[i].key(pr.keys[0])),
                    None => {
                        self.push(
                            None,
                            pr.keys[0].to_owned(),
                            ErrorKind::Inconsistent,
                            pr.message,
                        );
                        continue 'problem;
                    }
                },
            };
            let own_table = index == 0 && user.is_some_and(|u| layers[0].name() == u);
            let users = self
                .inconsistent
                .entry((
                    origin.map(|o| (o.file.to_path_buf(), o.pos)),
                    key,
                    pr.message,
                ))
                .or_default();
            if let Some(u) = user.filter(|_| !own_table) {
                users.insert(u.to_owned());
            }
        }
    }

    /// Turns the collected inconsistencies into errors, one per place and
    /// message, listing the users each breaks.
    fn flush_inconsistent(&mut self) {
        for ((at, key, message), users) in std::mem::take(&mut self.inconsistent) {
            let message = if users.is_empty() {
                message
            } else {
                let total = users.len();
                let mut shown: Vec<String> = users.into_iter().take(3).collect();
                if total > shown.len() {
                    shown.push(format!("{} more", total - shown.len()));
                }
                format!("{message} (in effect for {})", shown.join(", "))
            };
            self.errors.push(ConfigError {
                file: at
                    .as_ref()
                    .map_or_else(|| self.primary.clone(), |(f, _)| f.clone()),
                position: at.map(|(_, p)| p),
                key: Some(key),
                kind: ErrorKind::Inconsistent,
                message,
            });
        }
    }

    /// Checks that `name` (the value of `key` in `loc`) is a defined profile.
    fn check_ref<S, T>(
        &mut self,
        loc: &Located<S>,
        key: &str,
        name: Option<&str>,
        map: &BTreeMap<String, Located<T>>,
        kind: &str,
    ) {
        let Some(name) = name else { return };
        if map.contains_key(name) || loc.failed.contains(key) {
            return;
        }
        let hint = suggest(name, map.keys().map(String::as_str))
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        let origin = loc.origins.get(key).or(loc.header.as_ref()).cloned();
        self.push(
            origin.as_ref(),
            loc.key(key),
            ErrorKind::UnknownProfile,
            format!("no [{kind}.{name}] is defined{hint}"),
        );
    }

    fn check_references(&mut self, doc: &RawDoc) {
        for l in doc.tunnel_profiles.values() {
            self.check_tunnel_settings_refs(doc, l);
        }
        for l in doc.session_profiles.values() {
            let name = l.settings.ppp_profile_name.as_deref();
            self.check_ref(
                l,
                "ppp_profile_name",
                name,
                &doc.ppp_profiles,
                "ppp_profile",
            );
        }
        for l in doc.peer_profiles.values() {
            let s = &l.settings;
            self.check_ref(
                l,
                "tunnel_profile_name",
                s.tunnel_profile_name.as_deref(),
                &doc.tunnel_profiles,
                "tunnel_profile",
            );
            self.check_ref(
                l,
                "session_profile_name",
                s.session_profile_name.as_deref(),
                &doc.session_profiles,
                "session_profile",
            );
            self.check_ref(
                l,
                "ppp_profile_name",
                s.ppp_profile_name.as_deref(),
                &doc.ppp_profiles,
                "ppp_profile",
            );
        }
        for t in doc.tunnels.values() {
            let own = &t.own;
            self.check_ref(
                own,
                "tunnel_profile_name",
                own.settings.tunnel_profile_name.as_deref(),
                &doc.tunnel_profiles,
                "tunnel_profile",
            );
            self.check_ref(
                own,
                "peer_profile_name",
                own.settings.peer_profile_name.as_deref(),
                &doc.peer_profiles,
                "peer_profile",
            );
            self.check_tunnel_settings_refs(doc, &t.params);
            for s in t.sessions.values() {
                // An empty table names no profile.
                let SessionTable::Set(s) = s else {
                    continue;
                };
                let n = s.own.settings.session_profile_name.as_deref();
                self.check_ref(
                    &s.own,
                    "session_profile_name",
                    n,
                    &doc.session_profiles,
                    "session_profile",
                );
                let n = s.params.settings.ppp_profile_name.as_deref();
                self.check_ref(
                    &s.params,
                    "ppp_profile_name",
                    n,
                    &doc.ppp_profiles,
                    "ppp_profile",
                );
            }
        }
    }

    fn check_tunnel_settings_refs(&mut self, doc: &RawDoc, l: &Located<TunnelSettings>) {
        let s = &l.settings;
        self.check_ref(
            l,
            "session_profile_name",
            s.session_profile_name.as_deref(),
            &doc.session_profiles,
            "session_profile",
        );
        self.check_ref(
            l,
            "ppp_profile_name",
            s.ppp_profile_name.as_deref(),
            &doc.ppp_profiles,
            "ppp_profile",
        );
    }

    /// Resolves and checks the peer profiles.
    fn peer_profiles(&mut self, doc: &RawDoc) -> Vec<PeerProfile> {
        let default = &doc.peer_profiles[DEFAULT_PROFILE];
        let mut inherited = default.settings.clone();
        inherited.peer_addr = None;
        inherited.host_name = None;
        for key in ["peer_addr", "host_name"] {
            if let Some(o) = default.origins.get(key) {
                self.push(
                    Some(&o.clone()),
                    default.key(key),
                    ErrorKind::Inconsistent,
                    format!(
                        "the default peer profile matches every peer; {key} cannot be set on it"
                    ),
                );
            }
        }
        let mut peers = Vec::new();
        for (name, l) in &doc.peer_profiles {
            let mut params = PeerParams::default();
            inherited.apply_to(&mut params);
            if name != DEFAULT_PROFILE {
                l.settings.apply_to(&mut params);
            }
            self.report(
                &[l],
                with_host_name(params.problems(), &params.host_name),
                None,
            );
            peers.push(PeerProfile {
                name: name.clone(),
                params,
            });
        }
        // Uniqueness of what incoming tunnels are matched by.
        let mut host_names: BTreeMap<String, &str> = BTreeMap::new();
        let mut prefixes: BTreeMap<String, &str> = BTreeMap::new();
        for p in peers.iter().filter(|p| p.name != DEFAULT_PROFILE) {
            let l = &doc.peer_profiles[&p.name];
            if let Some(h) = &p.params.host_name {
                if let Some(other) = host_names.insert(h.to_ascii_lowercase(), &p.name) {
                    let o = l.origins.get("host_name").cloned();
                    self.push(
                        o.as_ref(),
                        l.key("host_name"),
                        ErrorKind::Duplicate,
                        format!("peer profile {other} already matches host_name {h:?}"),
                    );
                }
            } else if let Some(pre) = p.params.peer_addr {
                if let Some(other) = prefixes.insert(pre.to_string(), &p.name) {
                    let o = l.origins.get("peer_addr").cloned();
                    self.push(
                        o.as_ref(),
                        l.key("peer_addr"),
                        ErrorKind::Duplicate,
                        format!("peer profile {other} already matches peer_addr {pre}"),
                    );
                }
            }
        }
        peers
    }

    fn build(&mut self, doc: RawDoc, sources: Vec<PathBuf>) -> Config {
        let system: SystemConfig = resolve(&[&doc.system]);
        self.report(&[&doc.system], system.problems(), None);

        self.check_references(&doc);
        let peers = self.peer_profiles(&doc);

        // What incoming tunnels from each peer get (not checked when peers
        // may not set up tunnels at all).
        if !system.deny_remote_tunnel_creates {
            for p in &peers {
                let user = format!(
                    "incoming tunnels of peer_profile.{}",
                    crate::error::quote_key(&p.name)
                );
                self.check_tunnel(&doc, None, None, &p.params, &user);
            }
        }

        let mut tunnels: Vec<LocalTunnel> = Vec::new();
        for (name, t) in &doc.tunnels {
            if let Some(mut lt) = self.local_tunnel(&doc, &system, &peers, name, t) {
                // Share the previous tunnel's call defaults when they are equal.
                if let Some(prev) = tunnels.last() {
                    if prev.session_defaults == lt.session_defaults {
                        lt.session_defaults = prev.session_defaults.clone();
                    }
                    if prev.ppp_defaults == lt.ppp_defaults {
                        lt.ppp_defaults = prev.ppp_defaults.clone();
                    }
                }
                tunnels.push(lt);
            }
        }
        // Profiles no tunnel or peer uses, on their own over default. (A
        // used profile is checked only as used: a shared profile may rely on
        // its users for, say, the secret its auth_mode needs.)
        self.check_unused(&doc.tunnel_profiles, |p: &TunnelParams| {
            with_host_name(p.problems(), &p.host_name)
        });
        self.check_unused(&doc.session_profiles, SessionParams::problems);
        self.check_unused(&doc.ppp_profiles, PppParams::problems);

        if system.max_tunnels != 0 && tunnels.len() > system.max_tunnels as usize {
            let o = doc.system.origins.get("max_tunnels").cloned();
            self.push(
                o.as_ref(),
                doc.system.key("max_tunnels"),
                ErrorKind::Inconsistent,
                format!(
                    "{} tunnels are configured but max_tunnels is {}",
                    tunnels.len(),
                    system.max_tunnels
                ),
            );
        }
        self.flush_inconsistent();
        // The session tables as written are resolved into `tunnels` now;
        // nothing reads them again (a tunnel of 65,535 calls kept them all).
        let mut doc = doc;
        for t in doc.tunnels.values_mut() {
            t.sessions = BTreeMap::new();
        }

        Config {
            system,
            tunnels,
            peers,
            doc,
            sources,
            secrets_file: None,
            warnings: Vec::new(),
            defined_tables: BTreeSet::new(),
        }
    }

    /// Resolves and checks a tunnel and the sessions the peer may set up
    /// in it; `user` names the tunnel in messages.
    fn check_tunnel<'a>(
        &mut self,
        doc: &'a RawDoc,
        own: Option<&'a Located<TunnelSettings>>,
        profile: Option<&str>,
        peer: &'a PeerParams,
        user: &str,
    ) -> (TunnelScope<'a>, SessionScope<'a>) {
        let t = TunnelScope::new(doc, own, profile, peer);
        let problems = with_host_name(t.params.problems(), &t.params.host_name);
        self.report(&t.layers, problems, Some(user));
        let s = t.session(None, None, None);
        self.check_session(&s, user);
        (t, s)
    }

    fn check_session(&mut self, s: &SessionScope<'_>, user: &str) {
        self.report(&s.session_layers, s.session.problems(), Some(user));
        self.report(&s.ppp_layers, s.ppp.problems(), Some(user));
    }

    fn local_tunnel(
        &mut self,
        doc: &RawDoc,
        system: &SystemConfig,
        peers: &[PeerProfile],
        name: &str,
        t: &RawTunnel,
    ) -> Option<LocalTunnel> {
        let own = &t.own.settings;
        let peer_addr = own.peer_addr.map(|a| a.to_canonical());
        let our_addr = own.our_addr.map(|a| a.to_canonical());
        let peer_profile = match own.peer_profile_name.as_deref() {
            Some(n) => peers.iter().find(|p| p.name == n),
            None => None,
        }
        .unwrap_or_else(|| {
            let addr = peer_addr.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            match_peer_in(peers, addr, None).profile
        });

        let tunnel_user = t.params.name();
        let (scope, incoming) = self.check_tunnel(
            doc,
            Some(&t.params),
            own.tunnel_profile_name.as_deref(),
            &peer_profile.params,
            &tunnel_user,
        );

        let mut sessions: Vec<LocalSession> = Vec::with_capacity(t.sessions.len());
        // What an empty session table of this tunnel resolves to, once one
        // did without a problem: every other empty one resolves the same.
        let mut empty: Option<(Arc<SessionParams>, Arc<PppParams>)> = None;
        for (sname, s) in &t.sessions {
            if let (SessionTable::Empty(_), Some((params, ppp))) = (s, &empty) {
                sessions.push(LocalSession {
                    name: sname.clone(),
                    session_type: SessionType::default(),
                    params: params.clone(),
                    ppp: ppp.clone(),
                    session_profile: None,
                });
                continue;
            }
            let raw = s.raw(&t.own.path, sname);
            let session_profile = raw.own.settings.session_profile_name.clone();
            let session = scope.session(
                Some(&raw.params),
                Some(&raw.ppp),
                session_profile.as_deref(),
            );
            let clean = session.session.problems().is_empty() && session.ppp.problems().is_empty();
            self.check_session(&session, &raw.params.name());
            // Share the previous session's parameters when they are equal.
            let params = match sessions.last() {
                Some(prev) if *prev.params == session.session => prev.params.clone(),
                _ => Arc::new(session.session),
            };
            let ppp = match sessions.last() {
                Some(prev) if *prev.ppp == session.ppp => prev.ppp.clone(),
                _ => Arc::new(session.ppp),
            };
            if clean && matches!(s, SessionTable::Empty(_)) {
                empty = Some((params.clone(), ppp.clone()));
            }
            sessions.push(LocalSession {
                name: sname.clone(),
                session_type: raw.own.settings.session_type.unwrap_or_default(),
                params,
                ppp,
                session_profile,
            });
        }
        let params = scope.params;
        if params.max_sessions != 0 && sessions.len() > params.max_sessions as usize {
            self.report(
                &scope.layers,
                vec![Problem {
                    keys: &["max_sessions"],
                    message: format!(
                        "{} sessions are configured but max_sessions is {}",
                        sessions.len(),
                        params.max_sessions
                    ),
                }],
                Some(&tunnel_user),
            );
        }

        // Addresses.
        let loc = &t.own;
        let origin = |k: &str| loc.origins.get(k).cloned();
        let Some(peer_ip) = peer_addr else {
            if !loc.failed.contains("peer_addr") {
                let o = loc.header.clone();
                self.push(
                    o.as_ref(),
                    loc.key("peer_addr"),
                    ErrorKind::MissingKey,
                    "missing required key `peer_addr` (the address of the LNS to connect to)"
                        .into(),
                );
            }
            return None;
        };
        if peer_ip.is_unspecified()
            || peer_ip.is_multicast()
            || peer_ip == IpAddr::V4(std::net::Ipv4Addr::BROADCAST)
        {
            self.push(
                origin("peer_addr").as_ref(),
                loc.key("peer_addr"),
                ErrorKind::InvalidValue,
                format!("{peer_ip} is not a unicast peer address"),
            );
        }
        match our_addr {
            Some(ours) if ours.is_ipv4() != peer_ip.is_ipv4() => {
                self.push(
                    origin("our_addr").as_ref(),
                    loc.key("our_addr"),
                    ErrorKind::Inconsistent,
                    format!(
                        "our_addr {ours} and peer_addr {peer_ip} are of different address families"
                    ),
                );
            }
            Some(_) => {}
            None => {
                let listen = system.listen_addr.to_canonical();
                let dual_stack = listen == IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
                if !dual_stack && listen.is_ipv4() != peer_ip.is_ipv4() {
                    self.push(
                        origin("peer_addr").as_ref(),
                        loc.key("peer_addr"),
                        ErrorKind::Inconsistent,
                        format!(
                            "peer_addr {peer_ip} cannot be reached from system.listen_addr {listen} \
                             (different address family); set our_addr, or listen_addr = \"::\""
                        ),
                    );
                }
            }
        }

        Some(LocalTunnel {
            name: name.to_owned(),
            peer: SocketAddr::new(peer_ip, params.peer_udp_port),
            local: our_addr,
            persist: own.persist.unwrap_or(false),
            tunnel_profile: own.tunnel_profile_name.clone(),
            peer_profile: peer_profile.name.clone(),
            params,
            sessions,
            session_defaults: Arc::new(incoming.session),
            ppp_defaults: Arc::new(incoming.ppp),
        })
    }
}

/// `problems` plus what is wrong with `host_name`
/// ([`crate::values::validate_host_name`]), if anything; the empty case is
/// already among `problems`.
fn with_host_name(mut problems: Vec<Problem>, host_name: &Option<String>) -> Vec<Problem> {
    if let Some(h) = host_name.as_deref().filter(|h| !h.is_empty())
        && let Err(message) = crate::values::validate_host_name(h)
    {
        problems.push(Problem {
            keys: &["host_name"],
            message,
        });
    }
    problems
}
