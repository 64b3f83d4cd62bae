//! openl2tpd.conf(5) → l2tpd.toml.
//!
//! OpenL2TP's file holds `l2tpconfig` commands (its lexer,
//! l2tp_config_token.l): `system modify`, `{tunnel|session|ppp|peer} profile
//! {create|modify}`, `tunnel create`, `session create`, each followed by
//! `key=value` pairs; a command ends at a new line or `;`, `\` continues a
//! line, `#` starts a comment, values may be `"quoted"`. A small line-based
//! parser reads it. l2tpd's model is OpenL2TP's, so most keys keep their
//! names; see doc/migration.md for the rest.

use std::path::Path;

use super::{Import, ImportError, V, clean, parse_bool, valid_host_name};

/// One command: its leading words and its `key=value` pairs, with the line
/// each pair is on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Command {
    line: usize,
    verb: Vec<String>,
    args: Vec<(usize, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Eq,
}

/// Splits the file into commands. Errors name the file and line.
fn parse(file: &str, text: &str) -> Result<Vec<Command>, ImportError> {
    let mut cmds = Vec::new();
    let mut toks: Vec<(usize, Tok)> = Vec::new();
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let mut word_line = 1;
    let flush = |word: &mut String, toks: &mut Vec<(usize, Tok)>, wl: usize| {
        if !word.is_empty() {
            toks.push((wl, Tok::Word(std::mem::take(word))));
        }
    };
    let end = |toks: &mut Vec<(usize, Tok)>, cmds: &mut Vec<Command>| -> Result<(), ImportError> {
        if toks.is_empty() {
            return Ok(());
        }
        let t = std::mem::take(toks);
        cmds.push(command(file, t)?);
        Ok(())
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'\n') => {
                chars.next();
                flush(&mut word, &mut toks, word_line);
                line += 1;
            }
            '#' => {
                flush(&mut word, &mut toks, word_line);
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '\n' | ';' => {
                flush(&mut word, &mut toks, word_line);
                end(&mut toks, &mut cmds)?;
                if c == '\n' {
                    line += 1;
                }
            }
            '=' => {
                flush(&mut word, &mut toks, word_line);
                toks.push((line, Tok::Eq));
            }
            '"' => {
                word_line = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\n') | None => {
                            return Err(ImportError(format!(
                                "{file}:{line}: unterminated quoted string"
                            )));
                        }
                        Some(q) => s.push(q),
                    }
                }
                // An empty quoted string is still a value.
                toks.push((line, Tok::Word(s)));
            }
            c if c.is_whitespace() => flush(&mut word, &mut toks, word_line),
            c => {
                if word.is_empty() {
                    word_line = line;
                }
                word.push(c);
            }
        }
    }
    flush(&mut word, &mut toks, word_line);
    end(&mut toks, &mut cmds)?;
    Ok(cmds)
}

fn command(file: &str, toks: Vec<(usize, Tok)>) -> Result<Command, ImportError> {
    let line = toks[0].0;
    let mut verb = Vec::new();
    let mut args = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match (&toks[i], toks.get(i + 1), toks.get(i + 2)) {
            ((l, Tok::Word(k)), Some((_, Tok::Eq)), Some((_, Tok::Word(v)))) => {
                args.push((*l, k.to_ascii_lowercase(), v.clone()));
                i += 3;
            }
            ((l, Tok::Word(k)), Some((_, Tok::Eq)), _) => {
                return Err(ImportError(format!(
                    "{file}:{l}: `{}=` has no value",
                    clean(k)
                )));
            }
            ((_, Tok::Word(w)), _, _) if args.is_empty() => {
                verb.push(w.to_ascii_lowercase());
                i += 1;
            }
            ((l, t), _, _) => {
                let what = match t {
                    Tok::Word(w) => clean(w),
                    Tok::Eq => "=".into(),
                };
                return Err(ImportError(format!(
                    "{file}:{l}: `{what}` is not `key=value`"
                )));
            }
        }
    }
    Ok(Command { line, verb, args })
}

/// Converts openl2tpd.conf `text` read from `path`.
pub(super) fn convert(path: &Path, text: &str) -> Result<Import, ImportError> {
    let file = clean(&path.display().to_string());
    let cmds = parse(&file, text)?;
    let mut imp = Import::new(&[
        format!("l2tpd.toml converted by `l2tpd import openl2tpd` from {file}"),
        "l2tpd follows OpenL2TP's profile model; settings without an equivalent are".into(),
        "comments below, those marked [BEHAVIOUR CHANGES] make l2tpd act differently.".into(),
    ]);
    let mut unnamed = 0usize;
    for c in &cmds {
        let at = format!("{file}:{}", c.line);
        let verb = c.verb.join(" ");
        let arg = |k: &str| {
            c.args
                .iter()
                .find(|(_, key, _)| key == k)
                .map(|(_, _, v)| v.clone())
        };
        match verb.as_str() {
            "system modify" => {
                for (l, k, v) in &c.args {
                    system_key(&mut imp, &format!("{file}:{l}"), k, v);
                }
            }
            "tunnel profile create"
            | "tunnel profile modify"
            | "session profile create"
            | "session profile modify"
            | "ppp profile create"
            | "ppp profile modify"
            | "peer profile create"
            | "peer profile modify" => {
                let Some(name) = arg("profile_name") else {
                    return Err(ImportError(format!(
                        "{at}: `{verb}` without profile_name (OpenL2TP refuses it)"
                    )));
                };
                let kind = c.verb[0].as_str();
                let table = format!("{kind}_profile");
                let tp = [table.as_str(), name.as_str()];
                imp.doc.ensure(&tp);
                for (l, k, v) in c.args.iter().filter(|(_, k, _)| k != "profile_name") {
                    let kat = format!("{file}:{l}");
                    match kind {
                        "tunnel" => tunnel_key(&mut imp, &tp, &kat, k, v, false),
                        "session" => session_key(&mut imp, &tp, None, &kat, k, v),
                        "ppp" => ppp_key(&mut imp, &tp, &kat, k, v),
                        _ => peer_key(&mut imp, &tp, &kat, k, v, &name),
                    }
                }
                if kind == "peer" && name != "default" && imp.doc.get(&tp, "peer_addr").is_none() {
                    // OpenL2TP matches a peer profile by name against the Host Name AVP.
                    if valid_host_name(&name) {
                        imp.doc.set(&tp, "host_name", V::s(name.as_str()));
                        imp.doc.comment(
                            &tp,
                            "OpenL2TP: matched by its name against the peer's Host Name AVP",
                        );
                    } else {
                        imp.note(&tp, &at, format!("OpenL2TP: peer profile \"{name}\" has no peer_ipaddr and its name is not a valid Host Name: no peer matches it"), true);
                    }
                }
            }
            "tunnel create" => {
                let name = match arg("tunnel_name") {
                    Some(n) => n,
                    None => {
                        unnamed += 1;
                        format!("tunnel{unnamed}")
                    }
                };
                let tp = ["tunnel", name.as_str()];
                imp.doc.ensure(&tp);
                for (l, k, v) in c.args.iter().filter(|(_, k, _)| k != "tunnel_name") {
                    tunnel_key(&mut imp, &tp, &format!("{file}:{l}"), k, v, true);
                }
                if imp.doc.get(&tp, "peer_addr").is_none() {
                    return Err(ImportError(format!(
                        "{at}: `tunnel create` without dest_ipaddr (OpenL2TP refuses it)"
                    )));
                }
            }
            "session create" => {
                let Some(tname) = arg("tunnel_name") else {
                    imp.note(&[], &at, "OpenL2TP: `session create` without tunnel_name (by tunnel_id) cannot be placed in a [tunnel.NAME]: dropped".into(), true);
                    continue;
                };
                if !imp.doc.has_table(&["tunnel", tname.as_str()]) {
                    return Err(ImportError(format!(
                        "{at}: `session create` names tunnel {} that no earlier `tunnel create` made",
                        clean(&tname)
                    )));
                }
                let sname = match arg("session_name") {
                    Some(n) => n,
                    None => {
                        unnamed += 1;
                        format!("session{unnamed}")
                    }
                };
                let sp = ["tunnel", tname.as_str(), "session", sname.as_str()];
                let pp = ["tunnel", tname.as_str(), "session", sname.as_str(), "ppp"];
                imp.doc.ensure(&sp);
                for (l, k, v) in c
                    .args
                    .iter()
                    .filter(|(_, k, _)| k != "tunnel_name" && k != "session_name")
                {
                    session_key(&mut imp, &sp, Some(&pp), &format!("{file}:{l}"), k, v);
                }
                if imp.doc.get(&sp, "session_type").is_none() {
                    imp.doc.set(&sp, "session_type", V::s("lac_incoming"));
                }
            }
            _ => imp.note(
                &[],
                &at,
                format!("OpenL2TP: command `{verb}` is not one openl2tpd's file takes: dropped"),
                true,
            ),
        }
    }
    Ok(imp)
}

fn bool_or_note(imp: &mut Import, t: &[&str], at: &str, k: &str, v: &str) -> Option<bool> {
    let b = parse_bool(v);
    if b.is_none() {
        imp.note(
            t,
            at,
            format!("OpenL2TP: \"{k}={v}\": not yes/no: dropped"),
            true,
        );
    }
    b
}

fn num_or_note(
    imp: &mut Import,
    t: &[&str],
    at: &str,
    k: &str,
    v: &str,
    lo: i64,
    hi: i64,
) -> Option<i64> {
    let n = v.parse::<i64>().ok().filter(|n| (lo..=hi).contains(n));
    if n.is_none() {
        imp.note(
            t,
            at,
            format!("OpenL2TP: \"{k}={v}\": l2tpd takes {lo}..{hi}: dropped"),
            true,
        );
    }
    n
}

const U32: i64 = u32::MAX as i64;

fn system_key(imp: &mut Import, at: &str, k: &str, v: &str) {
    let t = ["system"];
    match k {
        "max_tunnels" | "max_sessions" => {
            if let Some(n) = num_or_note(imp, &t, at, k, v, 0, U32) {
                imp.doc.set(&t, k, V::Int(n));
            }
        }
        "tunnel_establish_timeout" | "session_establish_timeout" => {
            if let Some(n) = num_or_note(imp, &t, at, k, v, 1, U32) {
                imp.doc.set(&t, k, V::Int(n));
            }
        }
        "deny_remote_tunnel_creates" => {
            if let Some(b) = bool_or_note(imp, &t, at, k, v) {
                imp.doc.set(&t, k, V::Bool(b));
            }
        }
        "deny_local_tunnel_creates" => {
            if bool_or_note(imp, &t, at, k, v) == Some(true) {
                imp.note(&t, at, format!("OpenL2TP: \"{k}={v}\" has no equivalent: l2tpd's management API may always create tunnels (restrict it with api_group)"), true);
            }
        }
        "tunnel_persist_pend_timeout" | "session_persist_pend_timeout" => imp.note(
            &t,
            at,
            format!("OpenL2TP: \"{k}={v}\" has no equivalent: l2tpd retries a persistent tunnel with back-off (retry_timeout .. retry_max_timeout)"),
            true,
        ),
        "trace_flags" | "drain_tunnels" | "reset_statistics" => imp.note(
            &t,
            at,
            format!("OpenL2TP: \"{k}={v}\" has no equivalent{}", if k == "trace_flags" { ": use `l2tpd --log` or `l2tpctl ... trace`" } else { "" }),
            false,
        ),
        _ => imp.note(&t, at, format!("OpenL2TP: \"{k}={v}\" is not a system setting: dropped"), true),
    }
}

fn tunnel_key(imp: &mut Import, t: &[&str], at: &str, k: &str, v: &str, is_tunnel: bool) {
    let setting = format!("OpenL2TP: \"{k}={v}\"");
    let int = |imp: &mut Import, key: &str, lo: i64, hi: i64| {
        if let Some(n) = num_or_note(imp, t, at, k, v, lo, hi) {
            imp.doc.set(t, key, V::Int(n));
        }
    };
    let boolean = |imp: &mut Import, key: &str| {
        if let Some(b) = bool_or_note(imp, t, at, k, v) {
            imp.doc.set(t, key, V::Bool(b));
        }
    };
    match k {
        "hide_avps" | "use_tiebreaker" | "use_udp_checksums" => boolean(imp, k),
        "persist" if is_tunnel => boolean(imp, k),
        "persist" => imp.note(t, at, format!("{setting} in a tunnel profile has no equivalent: set persist in each [tunnel.NAME]"), true),
        "auth_mode" => match v.to_ascii_lowercase().as_str() {
            m @ ("none" | "simple" | "challenge") => imp.doc.set(t, k, V::s(m)),
            _ => imp.note(t, at, format!("{setting}: not none|simple|challenge: dropped"), true),
        },
        "framing_cap" | "bearer_cap" | "framing_caps" | "bearer_caps" => {
            let (a, b, key) = if k.starts_with("framing") {
                ("sync", "async", "framing_caps")
            } else {
                ("digital", "analog", "bearer_caps")
            };
            let lv = v.to_ascii_lowercase();
            let caps = match lv.as_str() {
                "any" => vec![V::s(a), V::s(b)],
                x if x == a || x == b => vec![V::s(x)],
                _ => {
                    imp.note(t, at, format!("{setting}: not {a}|{b}|any: dropped"), true);
                    return;
                }
            };
            imp.doc.set(t, key, V::Arr(caps));
        }
        "hello_timeout" | "idle_timeout" => int(imp, k, 0, U32),
        "retry_timeout" => int(imp, k, 1, U32),
        "max_retries" => int(imp, k, 1, U32),
        "rx_window_size" => match v.parse::<i64>() {
            Ok(n) if (1..4).contains(&n) => {
                imp.doc.set(t, k, V::Int(4));
                imp.note(t, at, format!("{setting}: RFC 2661 §5.8 and l2tpd advertise at least 4"), false);
            }
            _ => int(imp, k, 4, 65535),
        },
        "tx_window_size" => int(imp, k, 1, 65535),
        "max_sessions" => int(imp, k, 0, U32),
        "mtu" => int(imp, k, 68, 65535),
        "peer_udp_port" | "peer_port" => int(imp, "peer_udp_port", 1, 65535),
        "secret" => {
            if v.is_empty() {
                imp.note(t, at, format!("{k}: an empty secret is no secret in l2tpd: dropped"), true);
            } else {
                imp.doc.set(t, k, V::s(v));
            }
        }
        "host_name" if valid_host_name(v) => imp.doc.set(t, k, V::s(v)),
        "session_profile_name" | "ppp_profile_name" => imp.doc.set(t, k, V::s(v)),
        "profile_name" | "tunnel_profile_name" if is_tunnel => imp.doc.set(t, "tunnel_profile_name", V::s(v)),
        "peer_profile_name" if is_tunnel => imp.doc.set(t, k, V::s(v)),
        "dest_ipaddr" | "peer_addr" if is_tunnel => match v.parse::<std::net::IpAddr>() {
            Ok(a) => imp.doc.set(t, "peer_addr", V::s(a.to_string())),
            Err(_) => imp.note(t, at, format!("{setting}: l2tpd needs an IP address, not a name: dropped"), true),
        },
        "src_ipaddr" | "our_addr" if is_tunnel => match v.parse::<std::net::IpAddr>() {
            Ok(a) => imp.doc.set(t, "our_addr", V::s(a.to_string())),
            Err(_) => imp.note(t, at, format!("{setting}: not an IP address: dropped"), true),
        },
        "dest_ipaddr" | "peer_addr" | "src_ipaddr" | "our_addr" | "peer_profile_name" => {
            imp.note(t, at, format!("{setting} in a tunnel profile has no equivalent: l2tpd sets it per [tunnel.NAME]"), true)
        }
        "our_udp_port" => int(imp, k, 0, 65535),
        "tunnel_id" | "config_id" | "interface_name" | "trace_flags" => {
            imp.note(t, at, format!("{setting} has no equivalent: l2tpd picks tunnel ids itself; trace with `l2tpctl ... trace`"), false)
        }
        "do_pmtu_discovery" | "pmtu_discovery" | "allow_ppp_proxy" => imp.note(
            t,
            at,
            format!("{setting} has no equivalent (OpenL2TP did not implement it either)"),
            false,
        ),
        _ => imp.note(t, at, format!("{setting}: not a tunnel setting of l2tpd: dropped"), true),
    }
}

fn session_key(imp: &mut Import, t: &[&str], ppp: Option<&[&str]>, at: &str, k: &str, v: &str) {
    let setting = format!("OpenL2TP: \"{k}={v}\"");
    match k {
        "sequencing_required" | "use_sequence_numbers" => {
            if let Some(b) = bool_or_note(imp, t, at, k, v) {
                imp.doc.set(t, k, V::Bool(b));
            }
        }
        "reorder_timeout" => {
            if let Some(n) = num_or_note(imp, t, at, k, v, 0, U32) {
                imp.doc.set(t, k, V::s(format!("{n}ms")));
            }
        }
        "framing_type" | "bearer_type" => {
            let lv = v.to_ascii_lowercase();
            let ok = if k == "framing_type" {
                matches!(lv.as_str(), "sync" | "async" | "any")
            } else {
                matches!(lv.as_str(), "digital" | "analog" | "any")
            };
            if ok {
                imp.doc.set(t, k, V::s(lv));
            } else {
                imp.note(t, at, format!("{setting}: not a {k}: dropped"), true);
            }
        }
        "minimum_bps" | "maximum_bps" => {
            if let Some(n) = num_or_note(imp, t, at, k, v, 0, U32) {
                imp.doc.set(t, k, V::Int(n));
            }
        }
        "connect_speed" => {
            let (rx, tx) = match v.split_once(':') {
                Some((a, b)) => (Some(a), b),
                None => (None, v),
            };
            let p = |s: &str| s.parse::<u32>().ok();
            match (rx.map(p), p(tx)) {
                (None, Some(tx)) => imp.doc.set(t, "tx_connect_speed", V::Int(tx.into())),
                (Some(Some(rx)), Some(tx)) => {
                    imp.doc.set(t, "rx_connect_speed", V::Int(rx.into()));
                    imp.doc.set(t, "tx_connect_speed", V::Int(tx.into()));
                }
                _ => imp.note(t, at, format!("{setting}: not speed[:txspeed]: dropped"), true),
            }
        }
        "calling_number" | "called_number" | "sub_address" => imp.doc.set(t, k, V::s(v)),
        "ppp_profile_name" => imp.doc.set(t, k, V::s(v)),
        "profile_name" | "session_profile_name" if ppp.is_some() => imp.doc.set(t, "session_profile_name", V::s(v)),
        "session_type" => {
            let st = match v.to_ascii_lowercase().as_str() {
                "laic" => "lac_incoming",
                "laoc" => "lac_outgoing",
                "lnic" => "lns_incoming",
                "lnoc" => "lns_outgoing",
                _ => {
                    imp.note(t, at, format!("{setting}: not laic|laoc|lnic|lnoc: dropped"), true);
                    return;
                }
            };
            if ppp.is_some() {
                imp.doc.set(t, k, V::s(st));
            } else {
                imp.note(t, at, format!("{setting} in a session profile has no equivalent: set session_type in each [tunnel.T.session.NAME]"), false);
            }
        }
        "user_name" | "user_password" => match ppp {
            Some(pp) => imp.doc.set(pp, k, V::s(v)),
            None => imp.note(t, at, format!("{k} in a session profile has no equivalent: l2tpd keeps it in PPP profiles: dropped"), true),
        },
        "no_ppp" => {
            if bool_or_note(imp, t, at, k, v) == Some(true) {
                imp.note(t, at, format!("{setting} has no equivalent: every l2tpd session runs pppd"), true);
            }
        }
        "interface_name" => imp.note(t, at, format!("{setting} has no equivalent: pppd names the interface pppN"), true),
        "session_id" | "trace_flags" | "priv_group_id" | "tunnel_id" => {
            imp.note(t, at, format!("{setting} has no equivalent"), false)
        }
        "use_ppp_proxy" | "proxy_auth_type" | "proxy_auth_name" | "proxy_auth_challenge" | "proxy_auth_response"
        | "initial_rcvd_lcp_confreq" | "last_sent_lcp_confreq" | "last_rcvd_lcp_confreq" => imp.note(
            t,
            at,
            format!("{setting} has no equivalent: l2tpd does no PPP proxy (OpenL2TP only reported these AVPs)"),
            false,
        ),
        _ => imp.note(t, at, format!("{setting}: not a session setting of l2tpd: dropped"), true),
    }
}

fn ppp_key(imp: &mut Import, t: &[&str], at: &str, k: &str, v: &str) {
    let setting = format!("OpenL2TP: \"{k}={v}\"");
    let key = match k {
        "lcp_echo_failure_count" => "lcp_echo_fail_count",
        "default_route" | "use_as_default_route" => "default_route",
        k => k,
    };
    match key {
        "mtu" | "mru" => {
            if let Some(n) = num_or_note(imp, t, at, k, v, 128, 65535) {
                imp.doc.set(t, key, V::Int(n));
            }
        }
        "auth_pap" | "auth_chap" | "auth_mschapv1" | "auth_mschapv2" | "auth_eap" | "auth_none" | "auth_peer"
        | "default_route" | "proxy_arp" | "multilink" => {
            if let Some(b) = bool_or_note(imp, t, at, k, v) {
                imp.doc.set(t, key, V::Bool(b));
            }
        }
        "lcp_echo_interval" | "idle_timeout" | "max_connect_time" | "lcp_echo_fail_count" => {
            if let Some(n) = num_or_note(imp, t, at, k, v, 0, U32) {
                imp.doc.set(t, key, V::Int(n));
            }
        }
        "local_ipaddr" | "remote_ipaddr" | "dns_ipaddr_pri" | "dns_ipaddr_sec" | "wins_ipaddr_pri" | "wins_ipaddr_sec" => {
            match v.parse::<std::net::Ipv4Addr>() {
                Ok(a) => imp.doc.set(t, key, V::s(a.to_string())),
                Err(_) => imp.note(t, at, format!("{setting}: not an IPv4 address: dropped"), true),
            }
        }
        "local_name" | "remote_name" | "user_name" | "user_password" => imp.doc.set(t, key, V::s(v)),
        // pppd options l2tpd has no key for, passed on as they are (pppd(8)).
        "asyncmap" | "chap_interval" | "chap_max_challenge" | "chap_restart" | "pap_max_auth_requests"
        | "pap_restart_interval" | "pap_timeout" | "ipcp_max_config_requests" | "ipcp_max_config_naks"
        | "ipcp_max_terminate_requests" | "ipcp_retransmit_interval" | "lcp_max_config_requests"
        | "lcp_max_config_naks" | "lcp_max_terminate_requests" | "lcp_retransmit_interval" => {
            let opt = match key {
                "asyncmap" => "asyncmap",
                "chap_interval" => "chap-interval",
                "chap_max_challenge" => "chap-max-challenge",
                "chap_restart" => "chap-restart",
                "pap_max_auth_requests" => "pap-max-authreq",
                "pap_restart_interval" => "pap-restart",
                "pap_timeout" => "pap-timeout",
                "ipcp_max_config_requests" => "ipcp-max-configure",
                "ipcp_max_config_naks" => "ipcp-max-failure",
                "ipcp_max_terminate_requests" => "ipcp-max-terminate",
                "ipcp_retransmit_interval" => "ipcp-restart",
                "lcp_max_config_requests" => "lcp-max-configure",
                "lcp_max_config_naks" => "lcp-max-failure",
                "lcp_max_terminate_requests" => "lcp-max-terminate",
                _ => "lcp-restart",
            };
            if v.parse::<u64>().is_ok() || (opt == "asyncmap" && v.starts_with("0x")) {
                imp.doc.push_pppd(t, &[opt, v]);
            } else {
                imp.note(t, at, format!("{setting}: not a number: dropped"), true);
            }
        }
        "ip_pool_name" => imp.note(
            t,
            at,
            format!("{setting} has no equivalent: l2tpd's ip_pool is an address range (\"a.b.c.d-e.f.g.h\"); OpenL2TP's named pools lived in its ippool plugin"),
            true,
        ),
        "use_radius" | "radius_hint" => {
            if key == "radius_hint" || parse_bool(v) == Some(true) {
                imp.note(t, at, format!("{setting} has no equivalent here: load pppd's radius plugin with pppd_options"), true);
            }
        }
        "sync_mode" | "trace_flags" | "max_failure_count" => imp.note(t, at, format!("{setting} has no equivalent"), false),
        _ => imp.note(t, at, format!("{setting}: not a PPP setting of l2tpd: dropped"), true),
    }
}

fn peer_key(imp: &mut Import, t: &[&str], at: &str, k: &str, v: &str, name: &str) {
    let setting = format!("OpenL2TP: \"{k}={v}\"");
    match k {
        "peer_ipaddr" | "netmask" if name == "default" => imp.note(
            t,
            at,
            format!("{setting}: the default peer profile matches every peer in l2tpd: dropped"),
            true,
        ),
        "peer_ipaddr" => match v.parse::<std::net::Ipv4Addr>() {
            Ok(a) => {
                let len = match imp.doc.get(t, "peer_addr") {
                    Some(V::Str(s)) => s
                        .split_once('/')
                        .and_then(|(_, l)| l.parse::<u32>().ok())
                        .unwrap_or(32),
                    _ => 32,
                };
                let masked = u32::from(a) & mask(len);
                imp.doc.set(
                    t,
                    "peer_addr",
                    V::s(format!("{}/{len}", std::net::Ipv4Addr::from(masked))),
                );
            }
            Err(_) => imp.note(
                t,
                at,
                format!("{setting}: l2tpd needs an IP address, not a name: dropped"),
                true,
            ),
        },
        "netmask" => match v
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .map(u32::from)
            .filter(|m| m.leading_ones() + m.trailing_zeros() == 32)
        {
            Some(m) => {
                let len = m.leading_ones();
                let addr = match imp.doc.get(t, "peer_addr") {
                    Some(V::Str(s)) => s
                        .split('/')
                        .next()
                        .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok()),
                    _ => None,
                };
                let addr = addr.map_or(0, u32::from) & mask(len);
                imp.doc.set(
                    t,
                    "peer_addr",
                    V::s(format!("{}/{len}", std::net::Ipv4Addr::from(addr))),
                );
            }
            None => imp.note(
                t,
                at,
                format!("{setting}: not a contiguous netmask: dropped"),
                true,
            ),
        },
        "lac_lns" => match v.to_ascii_lowercase().as_str() {
            "lac" => imp.doc.set(t, k, V::s("lac")),
            "lns" => imp.doc.set(t, k, V::s("lns")),
            "laclns" | "lnslac" => imp.doc.set(t, k, V::s("lac_lns")),
            _ => imp.note(
                t,
                at,
                format!("{setting}: not lac|lns|laclns: dropped"),
                true,
            ),
        },
        "tunnel_profile_name"
        | "session_profile_name"
        | "ppp_profile_name"
        | "default_tunnel_profile_name"
        | "default_session_profile_name"
        | "default_ppp_profile_name" => imp.doc.set(t, k.trim_start_matches("default_"), V::s(v)),
        "peer_port" => imp.note(
            t,
            at,
            format!(
                "{setting} has no equivalent: l2tpd answers a peer on the port its SCCRQ came from"
            ),
            false,
        ),
        _ => imp.note(
            t,
            at,
            format!("{setting}: not a peer profile setting of l2tpd: dropped"),
            true,
        ),
    }
}

fn mask(len: u32) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(text: &str) -> Import {
        convert(Path::new("o.conf"), text).unwrap()
    }

    #[test]
    fn commands_split_on_lines_semicolons_and_continuations() {
        let c = parse("f", "system modify max_tunnels=5 ; ppp profile modify \\\n profile_name=default mtu = 1400 # c\n\n").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].verb, vec!["system", "modify"]);
        assert_eq!(c[1].verb, vec!["ppp", "profile", "modify"]);
        assert_eq!(c[1].args[1], (2, "mtu".to_owned(), "1400".to_owned()));
        let e = parse("f", "tunnel create\nsession create tunnel_name=\n").unwrap_err();
        assert!(e.0.starts_with("f:2:"), "{e}");
        let e = parse("f", "x secret=\"abc\n").unwrap_err();
        assert!(e.0.starts_with("f:1:"), "{e}");
    }

    // Follows OpenL2TP l2tp_config_parse.y (the statements of each command)
    // and doc/openl2tp.7's LNS set-up: profiles, a peer, an outgoing tunnel.
    #[test]
    fn profiles_peer_tunnel_and_session_map() {
        let imp = conv(
            "system modify max_tunnels=100 deny_local_tunnel_creates=no\n\
             tunnel profile create profile_name=isp hello_timeout=30 framing_cap=sync auth_mode=challenge secret=\"s e\" rx_window_size=2\n\
             session profile create profile_name=seq use_sequence_numbers=yes reorder_timeout=100 connect_speed=64000:128000\n\
             ppp profile create profile_name=pool local_ipaddr=192.0.2.1 lcp_echo_failure_count=3 chap_restart=5 auth_pap=no\n\
             peer profile create profile_name=branch peer_ipaddr=198.51.100.77 netmask=255.255.255.0 lac_lns=lns tunnel_profile_name=isp\n\
             peer profile create profile_name=lac7.example default_ppp_profile_name=pool\n\
             tunnel create tunnel_name=up dest_ipaddr=192.0.2.2 profile_name=isp persist=yes\n\
             session create tunnel_name=up session_name=s1 session_type=laic user_name=u user_password=pw profile_name=seq\n",
        );
        let d = &imp.doc;
        assert_eq!(d.get(&["system"], "max_tunnels"), Some(&V::Int(100)));
        let tp = ["tunnel_profile", "isp"];
        assert_eq!(d.get(&tp, "hello_timeout"), Some(&V::Int(30)));
        assert_eq!(
            d.get(&tp, "framing_caps"),
            Some(&V::Arr(vec![V::s("sync")]))
        );
        assert_eq!(d.get(&tp, "secret"), Some(&V::s("s e")));
        assert_eq!(d.get(&tp, "rx_window_size"), Some(&V::Int(4)));
        let sp = ["session_profile", "seq"];
        assert_eq!(d.get(&sp, "reorder_timeout"), Some(&V::s("100ms")));
        assert_eq!(d.get(&sp, "rx_connect_speed"), Some(&V::Int(64000)));
        assert_eq!(d.get(&sp, "tx_connect_speed"), Some(&V::Int(128000)));
        let pp = ["ppp_profile", "pool"];
        assert_eq!(d.get(&pp, "lcp_echo_fail_count"), Some(&V::Int(3)));
        assert_eq!(
            d.get(&pp, "pppd_options"),
            Some(&V::Arr(vec![V::s("chap-restart"), V::s("5")]))
        );
        let peer = ["peer_profile", "branch"];
        assert_eq!(d.get(&peer, "peer_addr"), Some(&V::s("198.51.100.0/24")));
        assert_eq!(d.get(&peer, "lac_lns"), Some(&V::s("lns")));
        assert_eq!(
            d.get(&["peer_profile", "lac7.example"], "host_name"),
            Some(&V::s("lac7.example"))
        );
        assert_eq!(
            d.get(&["peer_profile", "lac7.example"], "ppp_profile_name"),
            Some(&V::s("pool"))
        );
        let t = ["tunnel", "up"];
        assert_eq!(d.get(&t, "tunnel_profile_name"), Some(&V::s("isp")));
        assert_eq!(d.get(&t, "persist"), Some(&V::Bool(true)));
        let s = ["tunnel", "up", "session", "s1"];
        assert_eq!(d.get(&s, "session_type"), Some(&V::s("lac_incoming")));
        assert_eq!(d.get(&s, "session_profile_name"), Some(&V::s("seq")));
        assert_eq!(
            d.get(&["tunnel", "up", "session", "s1", "ppp"], "user_password"),
            Some(&V::s("pw"))
        );
        // Only the raised window is noted; nothing changes behaviour.
        assert_eq!(imp.behaviour_changes().count(), 0, "{:?}", imp.findings);
    }

    #[test]
    fn unmappable_settings_change_behaviour() {
        let imp = conv(
            "ppp profile modify profile_name=default ip_pool_name=pool1 use_radius=yes\n\
             session profile modify profile_name=default no_ppp=yes\n\
             system modify deny_local_tunnel_creates=yes\n",
        );
        let at: Vec<&str> = imp.behaviour_changes().map(|f| f.at.as_str()).collect();
        assert_eq!(at, vec!["o.conf:1", "o.conf:1", "o.conf:2", "o.conf:3"]);
    }

    #[test]
    fn session_for_an_unknown_tunnel_is_an_error() {
        let e = convert(Path::new("o.conf"), "session create tunnel_name=nope\n").unwrap_err();
        assert!(e.0.starts_with("o.conf:1:"), "{e}");
    }
}
