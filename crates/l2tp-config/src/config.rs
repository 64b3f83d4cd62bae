//! The validated configuration and profile inheritance.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::error::{ConfigError, ConfigErrors, ErrorKind, Origin, Position};
use crate::params::{
    PeerParams, PppParams, PppSettings, Problem, SessionParams, SessionSettings, SettingsTable,
    SystemConfig, TunnelParams, TunnelSettings,
};
use crate::parse::{Located, Parser, RawDoc, RawTunnel, suggest};
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
    /// Effective session parameters.
    pub params: SessionParams,
    /// Effective PPP parameters.
    pub ppp: PppParams,
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
    /// Name of the peer profile in force (named by `peer_profile_name`,
    /// else matched by `peer_addr`, else `default`).
    pub peer_profile: String,
    /// Effective tunnel parameters.
    pub params: TunnelParams,
    /// The sessions to place, sorted by name.
    pub sessions: Vec<LocalSession>,
    /// Session parameters for sessions the peer sets up in this tunnel.
    pub session_defaults: SessionParams,
    /// PPP parameters for sessions the peer sets up in this tunnel.
    pub ppp_defaults: PppParams,
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
#[derive(Debug, Clone)]
pub struct Config {
    /// Global settings.
    pub system: SystemConfig,
    tunnels: Vec<LocalTunnel>,
    peers: Vec<PeerProfile>,
    doc: RawDoc,
    sources: Vec<PathBuf>,
}

fn io_error(path: &Path, message: String) -> ConfigErrors {
    ConfigErrors::new(vec![ConfigError {
        file: path.to_path_buf(),
        position: None,
        key: None,
        kind: ErrorKind::Io,
        message,
    }])
}

impl Config {
    /// Reads and validates one configuration file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io_error(path, format!("cannot read: {e}")))?;
        Config::from_str(&text, path)
    }

    /// Parses and validates configuration text; `origin` is the file name
    /// used in error messages.
    pub fn from_str(text: &str, origin: &Path) -> Result<Config, ConfigErrors> {
        Config::from_sources([(origin, text)])
    }

    /// Parses several files and merges them in order, later keys replacing
    /// earlier ones table by table (drop-in semantics), then validates the
    /// result. Every error of every file is reported.
    pub fn from_sources<'a, I>(sources: I) -> Result<Config, ConfigErrors>
    where
        I: IntoIterator<Item = (&'a Path, &'a str)>,
    {
        let mut doc = RawDoc::default();
        let mut errors = Vec::new();
        let mut paths = Vec::new();
        for (path, text) in sources {
            let (d, errs) = Parser::new(text, Arc::from(path)).parse();
            doc.merge(d);
            errors.extend(errs);
            paths.push(path.to_path_buf());
        }
        doc.ensure_defaults();
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
        let config = check.build(doc, paths);
        if check.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors::new(check.errors))
        }
    }

    /// The files this configuration was read from, in merge order.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// The tunnels to set up, sorted by name.
    pub fn local_tunnels(&self) -> &[LocalTunnel] {
        &self.tunnels
    }

    /// One configured tunnel by name.
    pub fn local_tunnel(&self, name: &str) -> Option<&LocalTunnel> {
        self.tunnels.iter().find(|t| t.name == name)
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

    /// The effective configuration as TOML: defaults and inheritance
    /// applied, every profile shown resolved over `default`, every tunnel
    /// and session with its effective parameters; secrets appear as
    /// `<redacted>`. The output parses back into an equivalent
    /// configuration (with the secrets replaced).
    pub fn to_toml_effective(&self) -> String {
        let mut root = toml::Table::new();
        root.insert("system".into(), to_value(&self.system.to_settings()));

        fn section<P, S: Serialize>(
            root: &mut toml::Table,
            kind: &str,
            names: impl Iterator<Item = String>,
            get: impl Fn(&str) -> Option<P>,
            to_settings: impl Fn(&P) -> S,
        ) {
            let mut t = toml::Table::new();
            for n in names {
                if let Some(p) = get(&n) {
                    t.insert(n, to_value(&to_settings(&p)));
                }
            }
            root.insert(kind.into(), toml::Value::Table(t));
        }
        section(
            &mut root,
            "tunnel_profile",
            self.doc.tunnel_profiles.keys().cloned(),
            |n| self.tunnel_profile(n),
            TunnelParams::to_settings,
        );
        section(
            &mut root,
            "session_profile",
            self.doc.session_profiles.keys().cloned(),
            |n| self.session_profile(n),
            SessionParams::to_settings,
        );
        section(
            &mut root,
            "ppp_profile",
            self.doc.ppp_profiles.keys().cloned(),
            |n| self.ppp_profile(n),
            PppParams::to_settings,
        );
        section(
            &mut root,
            "peer_profile",
            self.peers.iter().map(|p| p.name.clone()),
            |n| self.peer_profile(n).map(|p| p.params.clone()),
            PeerParams::to_settings,
        );

        let mut tunnels = toml::Table::new();
        for t in &self.tunnels {
            let mut tt = table_of(&t.params.to_settings());
            tt.insert("peer_addr".into(), t.peer.ip().to_string().into());
            if let Some(l) = t.local {
                tt.insert("our_addr".into(), l.to_string().into());
            }
            tt.insert("persist".into(), t.persist.into());
            tt.insert("peer_profile_name".into(), t.peer_profile.clone().into());
            let mut sessions = toml::Table::new();
            for s in &t.sessions {
                let mut st = table_of(&s.params.to_settings());
                st.insert("session_type".into(), to_value(&s.session_type));
                st.insert("ppp".into(), to_value(&s.ppp.to_settings()));
                sessions.insert(s.name.clone(), toml::Value::Table(st));
            }
            if !sessions.is_empty() {
                tt.insert("session".into(), toml::Value::Table(sessions));
            }
            tunnels.insert(t.name.clone(), toml::Value::Table(tt));
        }
        if !tunnels.is_empty() {
            root.insert("tunnel".into(), toml::Value::Table(tunnels));
        }
        // One section at a time, to keep the file's natural order.
        let mut out = String::from(
            "# l2tpd effective configuration: defaults and inheritance applied, secrets redacted\n",
        );
        for kind in [
            "system",
            "tunnel_profile",
            "session_profile",
            "ppp_profile",
            "peer_profile",
            "tunnel",
        ] {
            if let Some(v) = root.remove(kind) {
                let mut one = toml::Table::new();
                one.insert(kind.into(), v);
                out.push('\n');
                out.push_str(&toml::to_string(&one).unwrap_or_default());
            }
        }
        out
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
    ) -> TunnelScope<'a> {
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
            self.report(&[l], params.problems(), None);
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

        let mut tunnels = Vec::new();
        for (name, t) in &doc.tunnels {
            if let Some(lt) = self.local_tunnel(&doc, &system, &peers, name, t) {
                tunnels.push(lt);
            }
        }
        // Profiles no tunnel or peer uses, on their own over default. (A
        // used profile is checked only as used: a shared profile may rely on
        // its users for, say, the secret its auth_mode needs.)
        self.check_unused(&doc.tunnel_profiles, TunnelParams::problems);
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

        Config {
            system,
            tunnels,
            peers,
            doc,
            sources,
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
        self.report(&t.layers, t.params.problems(), Some(user));
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

        let mut sessions = Vec::new();
        for (sname, s) in &t.sessions {
            let session = scope.session(
                Some(&s.params),
                Some(&s.ppp),
                s.own.settings.session_profile_name.as_deref(),
            );
            self.check_session(&session, &s.params.name());
            sessions.push(LocalSession {
                name: sname.clone(),
                session_type: s.own.settings.session_type.unwrap_or_default(),
                params: session.session,
                ppp: session.ppp,
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
            peer_profile: peer_profile.name.clone(),
            params,
            sessions,
            session_defaults: incoming.session,
            ppp_defaults: incoming.ppp,
        })
    }
}
