//! xl2tpd.conf(5) → l2tpd.toml.
//!
//! The file is read with a small tolerant parser rather than an INI crate
//! (`rust-ini`, `configparser`): xl2tpd repeats keys whose every occurrence
//! counts, in order (`ip range`, `no ip range`, `lac`, `lns`), and the
//! conversion must name the line of each setting; neither crate keeps
//! repeated keys in order with their line numbers. The syntax is xl2tpd's
//! own (file.c `parse_config`): `;` starts a comment anywhere on a line,
//! `[KIND NAME]` opens a section, `key = value` with case-insensitive keys
//! that contain spaces. Lines starting with `#` are taken as comments too.
//!
//! Mapping (see doc/migration.md): `[global]` → `[system]` and the default
//! tunnel profile; `[lns default]` → the `default` tunnel, session and PPP
//! profiles; `[lns NAME]` → profiles `NAME` and a peer profile per prefix of
//! its `lac =` ranges; `[lac default]` → profiles `lac-default` (in xl2tpd
//! neither default section is a template for the named ones); `[lac NAME]`
//! → `[tunnel.NAME]` with one call, `[tunnel.NAME.session.call]`.

use std::path::Path;

use super::{
    Import, ImportError, V, V4Set, clean, fmt_range, parse_bool, parse_v4_range, pppopts,
    valid_host_name,
};

#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    /// Lower case, single spaces.
    key: String,
    value: String,
}

#[derive(Debug, Clone)]
struct Section {
    line: usize,
    kind: String,
    name: Option<String>,
    entries: Vec<Entry>,
}

/// Parses xl2tpd.conf text into sections. Errors name the file and line.
fn parse(file: &str, text: &str) -> Result<Vec<Section>, ImportError> {
    let mut out: Vec<Section> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let s = raw.split(';').next().unwrap_or("").trim();
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        if let Some(rest) = s.strip_prefix('[') {
            let Some(inner) = rest.split(']').next().filter(|_| rest.contains(']')) else {
                return Err(ImportError(format!(
                    "{file}:{line}: no closing bracket in `{}`",
                    clean(s)
                )));
            };
            let inner = inner.trim();
            let (kind, name) = match inner.split_once(char::is_whitespace) {
                Some((k, n)) => (k.to_ascii_lowercase(), Some(n.trim().to_owned())),
                None => (inner.to_ascii_lowercase(), None),
            };
            out.push(Section {
                line,
                kind,
                name,
                entries: Vec::new(),
            });
            continue;
        }
        let Some((k, v)) = s.split_once('=') else {
            return Err(ImportError(format!(
                "{file}:{line}: `{}` is not `key = value` (xl2tpd refuses such a line)",
                clean(s)
            )));
        };
        let key = k
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase();
        let Some(sec) = out.last_mut() else {
            return Err(ImportError(format!(
                "{file}:{line}: key `{}` before any [section]",
                clean(&key)
            )));
        };
        sec.entries.push(Entry {
            line,
            key,
            value: v.trim().to_owned(),
        });
    }
    Ok(out)
}

/// One l2tp-secrets line: our name, the peer's name (`*` matches any), the secret.
#[derive(Debug, Clone)]
struct Secret {
    line: usize,
    us: String,
    them: String,
    secret: String,
    used: bool,
}

fn parse_secrets(text: &str) -> Vec<Secret> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let s = raw.split(['#', ';']).next().unwrap_or("").trim();
        let mut it = s.splitn(2, char::is_whitespace);
        let (Some(us), Some(rest)) = (it.next(), it.next()) else {
            continue;
        };
        let rest = rest.trim_start();
        let mut it = rest.splitn(2, char::is_whitespace);
        let (Some(them), Some(secret)) = (it.next(), it.next()) else {
            continue;
        };
        let secret = secret.trim();
        if secret.is_empty() {
            continue;
        }
        out.push(Secret {
            line: n + 1,
            us: us.to_owned(),
            them: them.to_owned(),
            secret: secret.to_owned(),
            used: false,
        });
    }
    out
}

/// Where one xl2tpd section's settings go.
struct Target {
    tunnel: Vec<String>,
    session: Vec<String>,
    ppp: Vec<String>,
}

fn p(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Converts xl2tpd.conf `text` read from `path`, with the l2tp-secrets file
/// if given.
pub(super) fn convert(
    path: &Path,
    text: &str,
    secrets: Option<(&Path, &str)>,
) -> Result<Import, ImportError> {
    let file = clean(&path.display().to_string());
    let sections = parse(&file, text)?;
    let mut imp = Import::new(&[
        format!("l2tpd.toml converted by `l2tpd import xl2tpd` from {file}"),
        "Each setting without an exact equivalent is a comment below; those marked".into(),
        "[BEHAVIOUR CHANGES] make l2tpd act differently from xl2tpd: review them.".into(),
    ]);
    let secrets_file = secrets.map(|(p, _)| clean(&p.display().to_string()));
    let mut secrets = secrets.map(|(_, t)| parse_secrets(t)).unwrap_or_default();

    // [global] first: access control decides the tunnel auth mode of LNS profiles.
    let mut access_control = false;
    for sec in sections.iter().filter(|s| s.kind == "global") {
        for e in &sec.entries {
            let at = format!("{file}:{}", e.line);
            let setting = format!("xl2tpd: \"{} = {}\"", e.key, e.value);
            let sys = ["system"];
            let tp = ["tunnel_profile", "default"];
            match e.key.as_str() {
                "listen-addr" => match e.value.parse::<std::net::IpAddr>() {
                    Ok(a) => imp.doc.set(&sys, "listen_addr", V::s(a.to_string())),
                    Err(_) => imp.note(&sys, &at, format!("{setting}: not an address; l2tpd needs one"), true),
                },
                "port" => match e.value.parse::<u16>() {
                    Ok(n) => imp.doc.set(&sys, "udp_port", V::Int(n.into())),
                    Err(_) => imp.note(&sys, &at, format!("{setting}: not a port number"), true),
                },
                "access control" => match parse_bool(&e.value) {
                    Some(b) => access_control = b,
                    None => imp.note(&sys, &at, format!("{setting}: not yes/no"), true),
                },
                "max retries" => match e.value.parse::<u32>() {
                    Ok(n) if n >= 1 => imp.doc.set(&tp, "max_retries", V::Int(n.into())),
                    _ => imp.note(&tp, &at, format!("{setting}: l2tpd needs 1 or more"), true),
                },
                "cap backoff" => match e.value.parse::<u32>() {
                    Ok(0) => {}
                    Ok(n) => {
                        imp.doc.set(&tp, "retry_max_timeout", V::s(format!("{n}s")));
                        imp.doc.comment(&tp, &format!("{setting}: the retransmission back-off is capped at {n}s"));
                    }
                    Err(_) => imp.note(&tp, &at, format!("{setting}: not a number"), true),
                },
                "ipsec saref" if parse_bool(&e.value) == Some(true) => imp.note(
                    &sys,
                    &at,
                    format!("{setting} has no equivalent: l2tpd does not track IPsec SAs (Openswan KLIPS SAref); clients behind one NAT address are told apart by tunnel id only"),
                    true,
                ),
                "ipsec saref" | "saref refinfo" | "rand source" | "auth file" => imp.note(
                    &sys,
                    &at,
                    format!(
                        "{setting} has no equivalent{}",
                        if e.key == "auth file" {
                            ": pass the secrets file with `l2tpd import xl2tpd --secrets FILE`"
                        } else {
                            ""
                        }
                    ),
                    false,
                ),
                "force userspace" => imp.note(
                    &sys,
                    &at,
                    format!("{setting} has no equivalent: l2tpd always carries data in the kernel (data_plane)"),
                    false,
                ),
                k if k.starts_with("debug ") => imp.note(
                    &sys,
                    &at,
                    format!("{setting} has no equivalent: use `l2tpd --log debug` or L2TPD_LOG"),
                    false,
                ),
                _ => imp.note(&sys, &at, format!("{setting}: not a [global] setting of xl2tpd"), true),
            }
        }
    }

    let has_lns_default = sections.iter().any(|s| s.kind == "lns" && is_default(s));
    let mut peer_n = 0usize;
    let mut any_peer_needed = false;
    // LNS sections, default first (xl2tpd falls back to it last, but in
    // l2tpd its profiles are the base of all others).
    let mut lns: Vec<&Section> = sections.iter().filter(|s| s.kind == "lns").collect();
    lns.sort_by_key(|s| !is_default(s));
    for sec in lns {
        let default = is_default(sec);
        let name = if default {
            "default".to_owned()
        } else {
            sec.name.clone().unwrap_or_default()
        };
        let t = Target {
            tunnel: vec!["tunnel_profile".into(), name.clone()],
            session: vec!["session_profile".into(), name.clone()],
            ppp: vec!["ppp_profile".into(), name.clone()],
        };
        for table in [&t.tunnel, &t.session, &t.ppp] {
            imp.doc.ensure(&p(table));
        }
        if !default && has_lns_default {
            imp.note(
                &p(&t.tunnel),
                &format!("{file}:{}", sec.line),
                format!("xl2tpd: [lns {name}] does not inherit [lns default] in xl2tpd (file.c new_lns), but l2tpd's profiles `{name}` inherit the `default` ones: settings [lns default] has and [lns {name}] lacks now apply to its peers"),
                true,
            );
        }
        let mut st = SectionState::default();
        apply_section(&mut imp, &file, sec, &t, Role::Lns, &mut st);
        // Peers: `lac =` ranges.
        let mut n_here = 0;
        for (line, r) in &st.lacs {
            for (addr, len) in super::range_to_prefixes(r.0, r.1) {
                peer_n += 1;
                n_here += 1;
                let pname = if default {
                    format!("lac-{peer_n}")
                } else if n_here == 1 {
                    name.clone()
                } else {
                    format!("{name}-{n_here}")
                };
                let pp = ["peer_profile", pname.as_str()];
                imp.doc.comment(
                    &pp,
                    &format!("xl2tpd: \"lac = ...\" at {file}:{line}, [lns {name}]"),
                );
                imp.doc.set(
                    &pp,
                    "peer_addr",
                    V::s(format!("{}/{len}", std::net::Ipv4Addr::from(addr))),
                );
                if !default {
                    for k in [
                        "tunnel_profile_name",
                        "session_profile_name",
                        "ppp_profile_name",
                    ] {
                        imp.doc.set(&pp, k, V::s(name.as_str()));
                    }
                }
            }
        }
        if !default && st.lacs.is_empty() {
            imp.note(
                &p(&t.tunnel),
                &format!("{file}:{}", sec.line),
                format!("xl2tpd: [lns {name}] has no `lac =` range, so no peer reaches it (as in xl2tpd)"),
                false,
            );
        }
        // Tunnel authentication.
        let mode = if st.challenge {
            "challenge"
        } else if access_control {
            "simple"
        } else {
            "none"
        };
        if st.challenge || st.hidden {
            let found = lns_secret(
                &mut imp,
                &mut secrets,
                &file,
                secrets_file.as_deref(),
                sec,
                &t,
                &st,
                default,
            );
            if !found {
                st.challenge = false;
                st.hidden = false;
            }
        }
        if st.challenge {
            imp.doc.set(&p(&t.tunnel), "auth_mode", V::s("challenge"));
            if default && !access_control {
                any_peer_needed = true;
            }
        } else if mode == "simple" && default {
            imp.doc.set(&p(&t.tunnel), "auth_mode", V::s("simple"));
        }
        if st.hidden {
            imp.doc.set(&p(&t.tunnel), "hide_avps", V::Bool(true));
        }
    }
    if access_control {
        imp.doc.comment(
            &["tunnel_profile", "default"],
            "xl2tpd: \"access control = yes\": only peers matching a peer profile (a `lac =` range) may set up tunnels",
        );
    }
    if any_peer_needed {
        let pp = ["peer_profile", "any"];
        imp.doc.comment(
            &pp,
            "xl2tpd: \"challenge = yes\" without \"access control\": l2tpd's auth_mode = \"challenge\" only admits peers that match a peer profile, so this one matches every IPv4 peer",
        );
        imp.doc.set(&pp, "peer_addr", V::s("0.0.0.0/0"));
    }

    // LAC sections.
    let mut lacs: Vec<&Section> = sections.iter().filter(|s| s.kind == "lac").collect();
    lacs.sort_by_key(|s| !is_default(s));
    for sec in lacs {
        let default = is_default(sec);
        let t = if default {
            Target {
                tunnel: vec!["tunnel_profile".into(), "lac-default".into()],
                session: vec!["session_profile".into(), "lac-default".into()],
                ppp: vec!["ppp_profile".into(), "lac-default".into()],
            }
        } else {
            let name = sec.name.clone().unwrap_or_default();
            Target {
                tunnel: vec!["tunnel".into(), name.clone()],
                session: vec![
                    "tunnel".into(),
                    name.clone(),
                    "session".into(),
                    "call".into(),
                ],
                ppp: vec![
                    "tunnel".into(),
                    name,
                    "session".into(),
                    "call".into(),
                    "ppp".into(),
                ],
            }
        };
        for table in [&t.tunnel, &t.session, &t.ppp] {
            imp.doc.ensure(&p(table));
        }
        if default {
            imp.note(
                &p(&t.tunnel),
                &format!("{file}:{}", sec.line),
                "xl2tpd: [lac default] is the LAC xl2tpd-control dials for names the file lacks, not a template (file.c new_lac): its settings are kept in the profiles `lac-default`, for `l2tpctl tunnel create --profile lac-default`".into(),
                false,
            );
        } else {
            imp.doc
                .set(&p(&t.session), "session_type", V::s("lac_incoming"));
        }
        let mut st = SectionState::default();
        apply_section(&mut imp, &file, sec, &t, Role::Lac, &mut st);
        let at = format!("{file}:{}", sec.line);
        let name = sec.name.clone().unwrap_or_default();
        if !default {
            if imp.doc.get(&p(&t.tunnel), "peer_addr").is_none() {
                return Err(ImportError(format!(
                    "{at}: [lac {}] has no usable `lns =` address: l2tpd needs the LNS's IP address",
                    clean(&name)
                )));
            }
            if !st.autodial {
                imp.note(
                    &p(&t.tunnel),
                    &at,
                    format!("xl2tpd: [lac {name}] without \"autodial = yes\" waited for `xl2tpd-control connect-lac`; l2tpd sets up [tunnel.{name}] and its call at start (remove the table and use `l2tpctl tunnel create` to dial by hand)"),
                    true,
                );
            }
            if st.challenge || st.hidden {
                let found = lac_secret(
                    &mut imp,
                    &mut secrets,
                    &file,
                    secrets_file.as_deref(),
                    &t,
                    &st,
                );
                if !found {
                    st.challenge = false;
                    st.hidden = false;
                }
            }
            if st.challenge {
                imp.doc.set(&p(&t.tunnel), "auth_mode", V::s("challenge"));
            }
            if st.hidden {
                imp.doc.set(&p(&t.tunnel), "hide_avps", V::Bool(true));
            }
        } else if st.challenge || st.hidden {
            imp.note(
                &p(&t.tunnel),
                &at,
                "xl2tpd: \"challenge\"/\"hidden bit\" in [lac default]: set them in each [lac NAME] so the secret can be matched to its LNS".into(),
                true,
            );
        }
    }

    for sec in sections
        .iter()
        .filter(|s| !matches!(s.kind.as_str(), "global" | "lns" | "lac"))
    {
        imp.note(
            &[],
            &format!("{file}:{}", sec.line),
            format!(
                "xl2tpd: section [{}] is not one xl2tpd knows: dropped",
                sec.kind
            ),
            true,
        );
    }
    if let Some(sf) = &secrets_file {
        for s in secrets.iter().filter(|s| !s.used) {
            imp.note(
                &[],
                &format!("{sf}:{}", s.line),
                format!("xl2tpd: l2tp-secrets entry for \"{} {}\" is used by no tunnel that needs a secret: dropped", s.us, s.them),
                false,
            );
        }
    }
    if sections.iter().any(|s| s.kind == "lac") && sections.iter().any(|s| s.kind == "lns") {
        imp.note(
            &[],
            &file,
            "xl2tpd: the file has both [lns] and [lac] sections: in l2tpd the `default` profiles ([lns default]'s settings) also apply to the [tunnel.NAME] tables of the LACs".into(),
            true,
        );
    }
    Ok(imp)
}

fn is_default(s: &Section) -> bool {
    s.name
        .as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case("default"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Lns,
    Lac,
}

/// What a section said that is decided only once it is all read.
#[derive(Debug, Default)]
struct SectionState {
    lacs: Vec<(usize, (u32, u32))>,
    challenge: bool,
    hidden: bool,
    host_name: Option<String>,
    autodial: bool,
}

#[allow(clippy::too_many_lines)]
fn apply_section(
    imp: &mut Import,
    file: &str,
    sec: &Section,
    t: &Target,
    role: Role,
    st: &mut SectionState,
) {
    let (tun, ses, ppp) = (p(&t.tunnel), p(&t.session), p(&t.ppp));
    let mut pool = V4Set::default();
    let mut pool_lines = 0;
    let mut pool_at = String::new();
    let mut local_ip: Option<std::net::Ipv4Addr> = None;
    let mut assign_ip = true;
    let (mut req_auth, mut req_pap, mut req_chap) = (false, false, false);
    let (mut ref_auth, mut ref_pap, mut ref_chap) = (false, false, false);
    let mut unix_auth = false;
    let mut ppp_debug = false;
    let mut optfile: Option<(String, String)> = None;
    let mut lns_seen = false;
    let mut redial = false;
    let profile = t.tunnel[0] == "tunnel_profile";
    for e in &sec.entries {
        let at = format!("{file}:{}", e.line);
        let setting = format!("xl2tpd: \"{} = {}\"", e.key, e.value);
        let b = parse_bool(&e.value);
        let bool_key = |imp: &mut Import| -> Option<bool> {
            if b.is_none() {
                imp.note(
                    &tun,
                    &at,
                    format!("{setting}: not yes/no (xl2tpd refuses it)"),
                    true,
                );
            }
            b
        };
        match (e.key.as_str(), role) {
            ("ip range" | "no ip range", Role::Lns) => match parse_v4_range(&e.value) {
                Some((a, z)) => {
                    pool_lines += 1;
                    pool_at = at.clone();
                    if e.key == "ip range" {
                        pool.add(a, z);
                    } else {
                        pool.remove(a, z);
                    }
                }
                None => imp.note(&ppp, &at, format!("{setting}: not an IPv4 range (l2tpd pools take addresses only): dropped"), true),
            },
            ("lac" | "no lac", Role::Lns) => match (e.key.as_str(), parse_v4_range(&e.value)) {
                ("lac", Some(r)) => st.lacs.push((e.line, r)),
                ("lac", None) => imp.note(&tun, &at, format!("{setting}: l2tpd matches peers by IPv4 prefix (or by the Host Name AVP, host_name), not by a DNS name: dropped"), true),
                _ => imp.note(&tun, &at, format!("{setting} has no equivalent: l2tpd peer profiles admit peers, they cannot exclude some"), true),
            },
            ("local ip", _) => match e.value.parse::<std::net::Ipv4Addr>() {
                Ok(a) => {
                    local_ip = Some(a);
                    imp.doc.set(&ppp, "local_ipaddr", V::s(a.to_string()));
                }
                Err(_) => imp.note(&ppp, &at, format!("{setting}: not an IPv4 address: dropped"), true),
            },
            ("remote ip", Role::Lac) => match e.value.parse::<std::net::Ipv4Addr>() {
                Ok(a) => imp.doc.set(&ppp, "remote_ipaddr", V::s(a.to_string())),
                Err(_) => imp.note(&ppp, &at, format!("{setting}: not an IPv4 address: dropped"), true),
            },
            ("local ip range", Role::Lns) => imp.note(
                &ppp,
                &at,
                format!("{setting} has no equivalent: l2tpd gives every session the one local_ipaddr"),
                true,
            ),
            ("assign ip", Role::Lns) => {
                if let Some(v) = bool_key(imp) {
                    assign_ip = v;
                }
            }
            ("exclusive", Role::Lns) => {
                if bool_key(imp) == Some(true) {
                    imp.note(&tun, &at, format!("{setting} has no equivalent: l2tpd accepts several tunnels from one peer"), true);
                }
            }
            ("hidden bit", _) => st.hidden = bool_key(imp).unwrap_or(false),
            ("challenge", _) => st.challenge = bool_key(imp).unwrap_or(false),
            ("length bit", _) => {
                if bool_key(imp) == Some(true) {
                    imp.note(&ses, &at, format!("{setting} has no equivalent: the kernel data plane sends data messages without the Length field; receivers accept both"), false);
                }
            }
            ("flow bit", _) => {
                if let Some(v) = bool_key(imp) {
                    imp.doc.set(&ses, "use_sequence_numbers", V::Bool(v));
                }
            }
            ("tunnel rws", _) => match e.value.parse::<u16>() {
                Ok(n) if n >= 4 => imp.doc.set(&tun, "rx_window_size", V::Int(n.into())),
                Ok(n) if n >= 1 => {
                    imp.doc.set(&tun, "rx_window_size", V::Int(4));
                    imp.note(&tun, &at, format!("{setting}: RFC 2661 §5.8 and l2tpd need at least 4: raised to 4"), false);
                }
                _ => imp.note(&tun, &at, format!("{setting}: not a window size (1..65535): dropped"), true),
            },
            ("call rws", _) => imp.note(&ses, &at, format!("{setting} has no equivalent (deprecated in xl2tpd too, RFC 2661 has no session flow control)"), false),
            ("tx bps" | "rx bps" | "bps", _) => match e.value.parse::<u32>() {
                Ok(n) => {
                    if e.key != "rx bps" {
                        imp.doc.set(&ses, "tx_connect_speed", V::Int(n.into()));
                    }
                    if e.key != "tx bps" {
                        imp.doc.set(&ses, "rx_connect_speed", V::Int(n.into()));
                    }
                }
                Err(_) => imp.note(&ses, &at, format!("{setting}: not a number of bits/s: dropped"), true),
            },
            ("hostname", _) => {
                if valid_host_name(&e.value) {
                    st.host_name = Some(e.value.clone());
                    imp.doc.set(&tun, "host_name", V::s(e.value.as_str()));
                } else {
                    imp.note(&tun, &at, format!("{setting}: l2tpd's host_name is 1 to 255 printable ASCII characters without spaces: dropped"), true);
                }
            }
            ("name", _) => imp.doc.set(&ppp, "local_name", V::s(e.value.as_str())),
            ("ppp debug", _) => ppp_debug = bool_key(imp).unwrap_or(false),
            ("pass peer", Role::Lns) => imp.note(
                &ppp,
                &at,
                format!("{setting} has no equivalent: l2tpd passes pppd `ipparam TUNNEL-NAME`, not the peer's address"),
                false,
            ),
            ("pppoptfile", _) => optfile = Some((at.clone(), e.value.clone())),
            ("require pap", _) => req_pap = bool_key(imp).unwrap_or(false),
            ("require chap", _) => req_chap = bool_key(imp).unwrap_or(false),
            ("require authentication" | "require auth", _) => req_auth = bool_key(imp).unwrap_or(false),
            ("refuse pap", _) => ref_pap = bool_key(imp).unwrap_or(false),
            ("refuse chap", _) => ref_chap = bool_key(imp).unwrap_or(false),
            ("refuse authentication" | "refuse auth", _) => ref_auth = bool_key(imp).unwrap_or(false),
            ("unix authentication" | "unix auth", _) => unix_auth = bool_key(imp).unwrap_or(false),
            ("defaultroute", Role::Lac) => {
                if let Some(v) = bool_key(imp) {
                    if v {
                        imp.doc.set(&ppp, "default_route", V::Bool(true));
                    }
                }
            }
            ("lns" | "redial" | "redial timeout" | "max redials" | "autodial", Role::Lac) if profile => imp.note(
                &tun,
                &at,
                format!("{setting} in [lac default] has no equivalent in an l2tpd profile: give it to `l2tpctl tunnel create`"),
                true,
            ),
            ("lns", Role::Lac) => {
                if lns_seen {
                    imp.note(&tun, &at, format!("{setting}: a second LNS has no equivalent (xl2tpd does not use it either)"), false);
                    continue;
                }
                lns_seen = true;
                let (host, port) = match e.value.rsplit_once(':') {
                    Some((h, pt)) if !h.contains(':') => (h, pt.parse::<u16>().ok()),
                    _ => (e.value.as_str(), None),
                };
                match host.parse::<std::net::IpAddr>() {
                    Ok(a) => {
                        imp.doc.set(&tun, "peer_addr", V::s(a.to_string()));
                        if let Some(pt) = port.filter(|p| *p != 1701) {
                            imp.doc.set(&tun, "peer_udp_port", V::Int(pt.into()));
                        }
                    }
                    Err(_) => imp.note(&tun, &at, format!("{setting}: l2tpd needs the LNS's IP address, not a name (resolve it and set peer_addr)"), true),
                }
            }
            ("autodial", Role::Lac) => st.autodial = bool_key(imp).unwrap_or(false),
            ("redial", Role::Lac) => {
                redial = bool_key(imp).unwrap_or(false);
                if redial {
                    imp.doc.set(&tun, "persist", V::Bool(true));
                    imp.note(&tun, &at, format!("{setting} → persist = true: l2tpd sets the tunnel up again with its own back-off (retry_timeout doubling up to retry_max_timeout), for ever"), true);
                }
            }
            ("redial timeout" | "max redials", Role::Lac) => imp.note(
                &tun,
                &at,
                format!("{setting} has no equivalent: l2tpd's persist retries with back-off and never gives up"),
                redial || e.key == "max redials",
            ),
            _ => imp.note(
                &tun,
                &at,
                format!("{setting}: not a setting of an xl2tpd [{} ...] section (xl2tpd refuses it): dropped", sec.kind),
                true,
            ),
        }
    }
    let sec_at = format!("{file}:{}", sec.line);
    if role == Role::Lns {
        // The pool, without our own address.
        if let Some(l) = local_ip {
            let l = u32::from(l);
            if pool.0.iter().any(|&(a, z)| a <= l && l <= z) {
                pool.remove(l, l);
                imp.doc.comment(
                    &ppp,
                    &format!(
                        "xl2tpd: local ip {} taken out of the pool",
                        std::net::Ipv4Addr::from(l)
                    ),
                );
            }
        }
        if !assign_ip {
            imp.note(&ppp, &sec_at, "xl2tpd: \"assign ip = no\": no ip_pool; pppd (an options file, RADIUS) decides the peer's address".into(), false);
        } else if let Some(r) = pool.largest() {
            imp.doc.set(&ppp, "ip_pool", V::s(fmt_range(r)));
            if pool.0.len() > 1 {
                let all: Vec<String> = pool.0.iter().map(|r| fmt_range(*r)).collect();
                imp.note(
                    &ppp,
                    &pool_at,
                    format!("xl2tpd: the ip ranges make {} disjoint ranges ({}); an l2tpd pool is one range: only {} is used", pool.0.len(), all.join(", "), fmt_range(r)),
                    true,
                );
            }
        } else if pool_lines > 0 {
            imp.note(
                &ppp,
                &pool_at,
                "xl2tpd: the ip ranges leave no address: no ip_pool".into(),
                true,
            );
        }
    }
    // pppd authentication options exactly as xl2tpd passes them (control.c):
    // l2tpd's auth_* keys would add require-/refuse- options xl2tpd does not.
    if ref_auth {
        imp.doc.set(&ppp, "auth_pap", V::Bool(false));
        imp.doc.set(&ppp, "auth_chap", V::Bool(false));
    } else {
        if ref_pap {
            imp.doc.set(&ppp, "auth_pap", V::Bool(false));
        }
        if ref_chap {
            imp.doc.set(&ppp, "auth_chap", V::Bool(false));
        }
    }
    // xl2tpd never passes `noauth`: leave pppd's own default.
    imp.doc.set(&ppp, "auth_none", V::Bool(false));
    if req_auth {
        imp.doc.push_pppd(&ppp, &["auth"]);
        if req_pap {
            imp.doc.push_pppd(&ppp, &["require-pap"]);
        }
        if req_chap {
            imp.doc.push_pppd(&ppp, &["require-chap"]);
        }
        if unix_auth {
            imp.doc.push_pppd(&ppp, &["login"]);
        }
        imp.doc.comment(
            &ppp,
            "xl2tpd: \"require authentication\" (with require pap/chap) passes pppd `auth` and `require-pap`/`require-chap` only; kept as pppd options (auth_peer = true would also require MS-CHAP and EAP)",
        );
    } else if req_pap || req_chap || unix_auth {
        imp.note(&ppp, &sec_at, "xl2tpd: \"require pap/chap\" and \"unix authentication\" have no effect without \"require authentication = yes\" (as in xl2tpd)".into(), false);
    }
    if ppp_debug {
        imp.doc.push_pppd(&ppp, &["debug"]);
    }
    if let Some((at, path)) = optfile {
        match super::read_source(Path::new(&path)) {
            Ok(text) => {
                imp.doc.comment(&ppp, &format!("xl2tpd: pppoptfile {path} carried over"));
                let src = clean(&path);
                pppopts::apply(imp, &ppp, &src, "xl2tpd", &pppopts::words(&text));
            }
            Err(e) if path.starts_with('/') => {
                imp.doc.set(&ppp, "options_file", V::s(path.as_str()));
                imp.note(&ppp, &at, format!("xl2tpd: pppoptfile {path} could not be read here ({e}): pppd reads it with `file` (options_file)"), false);
            }
            Err(e) => imp.note(&ppp, &at, format!("xl2tpd: pppoptfile {path}: {e}; l2tpd's options_file must be an absolute path: dropped"), true),
        }
    }
}

/// The tunnel secret of an LNS section: a `* PEER` or `US *` line gives the
/// profile's secret; lines naming one peer give it a peer profile matched by
/// its Host Name AVP. False (with a finding) when there is none.
#[allow(clippy::too_many_arguments)]
fn lns_secret(
    imp: &mut Import,
    secrets: &mut [Secret],
    file: &str,
    secrets_file: Option<&str>,
    sec: &Section,
    t: &Target,
    st: &SectionState,
    default: bool,
) -> bool {
    let tun = p(&t.tunnel);
    let at = format!("{file}:{}", sec.line);
    let us_ok = |s: &Secret| {
        s.us == "*"
            || st
                .host_name
                .as_deref()
                .is_none_or(|h| h.eq_ignore_ascii_case(&s.us))
    };
    let mut found = false;
    if let Some(s) = secrets.iter_mut().find(|s| us_ok(s) && s.them == "*") {
        s.used = true;
        imp.doc.set(&tun, "secret", V::s(s.secret.as_str()));
        imp.doc.comment(
            &tun,
            &format!(
                "xl2tpd: secret from {}:{} (better moved to [system] secrets_file)",
                secrets_file.unwrap_or(""),
                s.line
            ),
        );
        found = true;
    }
    if default {
        for s in secrets.iter_mut().filter(|s| us_ok(s) && s.them != "*") {
            if !valid_host_name(&s.them) {
                continue;
            }
            s.used = true;
            let name = format!("host-{}", s.them);
            let pp = ["peer_profile", name.as_str()];
            imp.doc.comment(
                &pp,
                &format!("xl2tpd: l2tp-secrets line {} for peer {}", s.line, s.them),
            );
            imp.doc.set(&pp, "host_name", V::s(s.them.as_str()));
            imp.doc.set(&pp, "tunnel_profile_name", V::s(name.as_str()));
            imp.doc.set(
                &["tunnel_profile", name.as_str()],
                "secret",
                V::s(s.secret.as_str()),
            );
            found = true;
        }
    }
    if !found {
        imp.note(
            &tun,
            &at,
            match secrets_file {
                None => "xl2tpd: \"challenge\"/\"hidden bit\" need the tunnel secret: rerun with --secrets l2tp-secrets; left out".into(),
                Some(f) => format!("xl2tpd: \"challenge\"/\"hidden bit\": no usable entry in {f}; left out"),
            },
            true,
        );
    }
    found
}

/// The tunnel secret of a LAC section: the line for our name (or `*`) and the
/// LNS (its address, or `*`); else the only line for our name.
fn lac_secret(
    imp: &mut Import,
    secrets: &mut [Secret],
    file: &str,
    secrets_file: Option<&str>,
    t: &Target,
    st: &SectionState,
) -> bool {
    let tun = p(&t.tunnel);
    let peer = match imp.doc.get(&tun, "peer_addr") {
        Some(V::Str(s)) => s.clone(),
        _ => String::new(),
    };
    let us_ok = |s: &Secret| {
        s.us == "*"
            || st
                .host_name
                .as_deref()
                .is_none_or(|h| h.eq_ignore_ascii_case(&s.us))
    };
    let idx = secrets
        .iter()
        .position(|s| us_ok(s) && (s.them == "*" || s.them == peer))
        .or_else(|| {
            let c: Vec<usize> = (0..secrets.len()).filter(|&i| us_ok(&secrets[i])).collect();
            (c.len() == 1).then(|| c[0])
        });
    match idx {
        Some(i) => {
            let s = &mut secrets[i];
            s.used = true;
            imp.doc.set(&tun, "secret", V::s(s.secret.as_str()));
            imp.doc.comment(
                &tun,
                &format!(
                    "xl2tpd: secret from {}:{} (better moved to [system] secrets_file)",
                    secrets_file.unwrap_or(""),
                    s.line
                ),
            );
            true
        }
        None => {
            imp.note(
                &tun,
                file,
                match secrets_file {
                    None => "xl2tpd: \"challenge\"/\"hidden bit\" need the tunnel secret: rerun with --secrets l2tp-secrets; left out".into(),
                    Some(f) => format!("xl2tpd: \"challenge\"/\"hidden bit\": no entry in {f} for this LNS; left out"),
                },
                true,
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(text: &str, secrets: Option<&str>) -> Import {
        convert(
            Path::new("x.conf"),
            text,
            secrets.map(|s| (Path::new("sec"), s)),
        )
        .unwrap()
    }

    fn get<'a>(imp: &'a Import, path: &[&str], k: &str) -> Option<&'a V> {
        imp.doc.get(path, k)
    }

    // Follows xl2tpd examples/xl2tpd.conf ([lns default] for L2TP/IPsec clients).
    #[test]
    fn lns_default_pool_local_ip_and_auth() {
        let imp = conv(
            "[global]\n; listen-addr = 192.0.2.98\n[lns default]\nip range = 192.0.2.128-192.0.2.254\n\
             local ip = 192.0.2.99\nrequire chap = yes\nrefuse pap = yes\nrequire authentication = yes\n\
             name = VPNserver ; pppd name\nppp debug = yes\nlength bit = yes\n",
            None,
        );
        let ppp = ["ppp_profile", "default"];
        assert_eq!(
            get(&imp, &ppp, "ip_pool"),
            Some(&V::s("192.0.2.128-192.0.2.254"))
        );
        assert_eq!(get(&imp, &ppp, "local_ipaddr"), Some(&V::s("192.0.2.99")));
        assert_eq!(get(&imp, &ppp, "local_name"), Some(&V::s("VPNserver")));
        assert_eq!(get(&imp, &ppp, "auth_pap"), Some(&V::Bool(false)));
        assert_eq!(get(&imp, &ppp, "auth_none"), Some(&V::Bool(false)));
        assert_eq!(
            get(&imp, &ppp, "pppd_options"),
            Some(&V::Arr(vec![
                V::s("auth"),
                V::s("require-chap"),
                V::s("debug")
            ]))
        );
        // length bit: a comment, not a behaviour change.
        assert_eq!(imp.findings.len(), 1);
        assert_eq!(imp.behaviour_changes().count(), 0);
        assert_eq!(imp.findings[0].at, "x.conf:11");
    }

    // Follows xl2tpd doc/l2tpd.conf.sample: ranges with exceptions, lac ranges.
    #[test]
    fn ip_ranges_with_exceptions_and_lac_peers() {
        let imp = conv(
            "[global]\naccess control = yes\n[lns default]\nip range = 192.0.2.1-192.0.2.20\n\
             no ip range = 192.0.2.3-192.0.2.20\nip range = 192.0.2.3-192.0.2.9\n\
             lac = 198.51.100.4 - 198.51.100.8\nlocal ip = 192.0.2.1\n",
            None,
        );
        assert_eq!(
            get(&imp, &["ppp_profile", "default"], "ip_pool"),
            Some(&V::s("192.0.2.2-192.0.2.9"))
        );
        assert_eq!(
            get(&imp, &["tunnel_profile", "default"], "auth_mode"),
            Some(&V::s("simple"))
        );
        assert_eq!(
            get(&imp, &["peer_profile", "lac-1"], "peer_addr"),
            Some(&V::s("198.51.100.4/30"))
        );
        assert_eq!(
            get(&imp, &["peer_profile", "lac-2"], "peer_addr"),
            Some(&V::s("198.51.100.8/32"))
        );
        assert_eq!(imp.behaviour_changes().count(), 0, "{:?}", imp.findings);
    }

    #[test]
    fn disjoint_pools_and_saref_change_behaviour() {
        let imp = conv(
            "[global]\nipsec saref = yes\n[lns default]\nip range = 192.0.2.10-192.0.2.20\nip range = 192.0.2.30-192.0.2.31\nexclusive = yes\nno lac = 192.0.2.1\n",
            None,
        );
        assert_eq!(
            get(&imp, &["ppp_profile", "default"], "ip_pool"),
            Some(&V::s("192.0.2.10-192.0.2.20"))
        );
        let at: Vec<&str> = imp.behaviour_changes().map(|f| f.at.as_str()).collect();
        assert_eq!(at, vec!["x.conf:2", "x.conf:6", "x.conf:7", "x.conf:5"]);
    }

    // Follows xl2tpd doc/l2tpd.conf.sample [lac marko] and doc/l2tp-secrets.sample.
    #[test]
    fn lac_with_redial_challenge_and_secret() {
        let imp = conv(
            "[lac default]\nrequire authentication = no\n[lac marko]\nlns = 192.0.2.2\nlns = 192.0.2.3\n\
             redial = yes\nredial timeout = 15\nmax redials = 5\nhidden bit = yes\nchallenge = yes\n\
             local ip = 192.0.2.100\nremote ip = 192.0.2.101\nautodial = yes\nhostname = lac.example\n",
            Some(
                "# us them secret\nlns.example lac.example wrong\nlac.example 192.0.2.2 s3cret word\n",
            ),
        );
        let t = ["tunnel", "marko"];
        assert_eq!(get(&imp, &t, "peer_addr"), Some(&V::s("192.0.2.2")));
        assert_eq!(get(&imp, &t, "persist"), Some(&V::Bool(true)));
        assert_eq!(get(&imp, &t, "auth_mode"), Some(&V::s("challenge")));
        assert_eq!(get(&imp, &t, "hide_avps"), Some(&V::Bool(true)));
        assert_eq!(get(&imp, &t, "secret"), Some(&V::s("s3cret word")));
        // [lac default] is no template: its profiles are not named.
        assert_eq!(get(&imp, &t, "tunnel_profile_name"), None);
        assert_eq!(
            get(&imp, &["ppp_profile", "lac-default"], "auth_none"),
            Some(&V::Bool(false))
        );
        assert_eq!(get(&imp, &t, "host_name"), Some(&V::s("lac.example")));
        let s = ["tunnel", "marko", "session", "call"];
        assert_eq!(get(&imp, &s, "session_type"), Some(&V::s("lac_incoming")));
        let ppp = ["tunnel", "marko", "session", "call", "ppp"];
        assert_eq!(get(&imp, &ppp, "remote_ipaddr"), Some(&V::s("192.0.2.101")));
        // redial, redial timeout, max redials change behaviour.
        let at: Vec<&str> = imp.behaviour_changes().map(|f| f.at.as_str()).collect();
        assert_eq!(at, vec!["x.conf:6", "x.conf:7", "x.conf:8"]);
    }

    #[test]
    fn lns_challenge_gets_the_wildcard_secret_and_per_peer_profiles() {
        let imp = conv(
            "[lns default]\nchallenge = yes\nip range = 192.0.2.10-192.0.2.20\n",
            Some("* * anyone\n* branch7 seven\n"),
        );
        let tp = ["tunnel_profile", "default"];
        assert_eq!(get(&imp, &tp, "auth_mode"), Some(&V::s("challenge")));
        assert_eq!(get(&imp, &tp, "secret"), Some(&V::s("anyone")));
        assert_eq!(
            get(&imp, &["peer_profile", "host-branch7"], "host_name"),
            Some(&V::s("branch7"))
        );
        assert_eq!(
            get(&imp, &["tunnel_profile", "host-branch7"], "secret"),
            Some(&V::s("seven"))
        );
        assert_eq!(
            get(&imp, &["peer_profile", "any"], "peer_addr"),
            Some(&V::s("0.0.0.0/0"))
        );
    }

    #[test]
    fn challenge_without_secrets_is_left_out_and_flagged() {
        let imp = conv("[lns default]\nchallenge = yes\n", None);
        assert_eq!(get(&imp, &["tunnel_profile", "default"], "auth_mode"), None);
        assert_eq!(imp.behaviour_changes().count(), 1);
    }

    #[test]
    fn named_lns_gets_profiles_and_a_peer_profile() {
        let imp = conv(
            "[lns default]\nip range = 192.0.2.10-192.0.2.20\n[lns branch]\nlac = 198.51.100.0-198.51.100.255\ntunnel rws = 2\nflow bit = yes\nbps = 64000\n",
            None,
        );
        let pp = ["peer_profile", "branch"];
        assert_eq!(get(&imp, &pp, "peer_addr"), Some(&V::s("198.51.100.0/24")));
        assert_eq!(get(&imp, &pp, "ppp_profile_name"), Some(&V::s("branch")));
        assert_eq!(
            get(&imp, &["tunnel_profile", "branch"], "rx_window_size"),
            Some(&V::Int(4))
        );
        let sp = ["session_profile", "branch"];
        assert_eq!(get(&imp, &sp, "use_sequence_numbers"), Some(&V::Bool(true)));
        assert_eq!(get(&imp, &sp, "tx_connect_speed"), Some(&V::Int(64000)));
        assert_eq!(get(&imp, &sp, "rx_connect_speed"), Some(&V::Int(64000)));
        // xl2tpd's [lns branch] does not inherit [lns default]; l2tpd's profiles do.
        let at: Vec<&str> = imp.behaviour_changes().map(|f| f.at.as_str()).collect();
        assert_eq!(at, vec!["x.conf:3"]);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let e = convert(Path::new("x.conf"), "[global]\nport 1701\n", None).unwrap_err();
        assert!(e.0.starts_with("x.conf:2:"), "{e}");
        let e = convert(Path::new("x.conf"), "port = 1\n", None).unwrap_err();
        assert!(e.0.starts_with("x.conf:1:"), "{e}");
        let e = convert(Path::new("x.conf"), "[lac a]\nlns = lns.example\n", None).unwrap_err();
        assert!(e.0.starts_with("x.conf:1:"), "{e}");
    }
}
