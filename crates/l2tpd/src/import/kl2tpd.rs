//! kl2tpd.toml(5) (go-l2tp) → l2tpd.toml. Read with the `toml` crate.
//!
//! kl2tpd is a LAC only: it dials the tunnels of its file and places their
//! sessions, and accepts no tunnel. So: `[system] deny_remote_tunnel_creates
//! = true`; `[tunnel.NAME]` → `[tunnel.NAME]`; `[tunnel.NAME.session.NAME]` →
//! the same session with `session_type = "lac_incoming"`. kl2tpd's defaults
//! that differ from l2tpd's are written out (no HELLO, 3 retries, window 4).

use std::path::Path;

use toml::Value;

use super::{Import, ImportError, V, clean, pppopts, valid_host_name};

/// Converts kl2tpd.toml `text` read from `path`.
pub(super) fn convert(path: &Path, text: &str) -> Result<Import, ImportError> {
    let file = clean(&path.display().to_string());
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            .unwrap_or(1);
        ImportError(format!("{file}:{line}: {}", clean(e.message())))
    })?;
    // Line of a key, for findings (a `toml::Table` keeps no positions): the
    // first line at or after the line of table header `after` that sets
    // `key`; the header's line when none does.
    let line_of_in = |after: &str, key: &str| -> usize {
        let lines: Vec<&str> = text.lines().collect();
        let start = if after.is_empty() {
            0
        } else {
            lines
                .iter()
                .position(|l| l.split('#').next().unwrap_or("").replace([' ', '"'], "") == after)
                .unwrap_or(0)
        };
        lines
            .iter()
            .enumerate()
            .skip(start)
            .find(|(_, l)| {
                let l = l.trim_start();
                l.strip_prefix(key)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
            .map_or(start + 1, |(n, _)| n + 1)
    };
    let line_of = |key: &str| line_of_in("", key);
    let mut imp = Import::new(&[
        format!("l2tpd.toml converted by `l2tpd import kl2tpd` from {file}"),
        "kl2tpd only dials out (LAC): l2tpd is set to refuse tunnels from peers too.".into(),
        "Settings marked [BEHAVIOUR CHANGES] make l2tpd act differently from kl2tpd: review them."
            .into(),
    ]);
    imp.doc
        .set(&["system"], "deny_remote_tunnel_creates", V::Bool(true));
    for (k, _) in doc.iter().filter(|(k, _)| k.as_str() != "tunnel") {
        imp.note(
            &[],
            &format!("{file}:{}", line_of(k)),
            format!("kl2tpd: top-level key `{k}` is not a kl2tpd setting: dropped"),
            true,
        );
    }
    let Some(tunnels) = doc.get("tunnel") else {
        return Ok(imp);
    };
    let Some(tunnels) = tunnels.as_table() else {
        return Err(ImportError(format!(
            "{file}:{}: `tunnel` must be a table",
            line_of("tunnel")
        )));
    };
    for (tname, tval) in tunnels {
        let header = format!("[tunnel.{tname}]");
        let at = format!("{file}:{}", line_of_in(&header, "\u{0}"));
        let Some(t) = tval.as_table() else {
            return Err(ImportError(format!(
                "{at}: tunnel.{} must be a table",
                clean(tname)
            )));
        };
        let tp = ["tunnel", tname.as_str()];
        imp.doc.ensure(&tp);
        // kl2tpd defaults that are not l2tpd's.
        imp.doc.set(&tp, "hello_timeout", V::s("0"));
        imp.doc.set(&tp, "max_retries", V::Int(3));
        imp.doc.set(&tp, "rx_window_size", V::Int(4));
        imp.doc.set(&tp, "tx_window_size", V::Int(4));
        imp.doc.comment(
            &tp,
            "kl2tpd defaults: no HELLO, 3 retries, window of 4 (l2tpd's are 60s, 5, 16/10)",
        );
        let mut have_peer = false;
        for (k, v) in t {
            let kat = format!("{file}:{}", line_of_in(&header, k));
            let setting = format!("kl2tpd: tunnel.{tname}.{k} = {v}");
            match (k.as_str(), v) {
                ("peer", Value::String(s)) => match parse_host_port(s) {
                    Some((a, port)) => {
                        have_peer = true;
                        imp.doc.set(&tp, "peer_addr", V::s(a.to_string()));
                        if port != 1701 {
                            imp.doc.set(&tp, "peer_udp_port", V::Int(port.into()));
                        }
                    }
                    None => return Err(ImportError(format!("{kat}: {setting}: l2tpd needs an IP address (and port)"))),
                },
                ("local", Value::String(s)) => match parse_host_port(s) {
                    Some((a, port)) => {
                        imp.doc.set(&tp, "our_addr", V::s(a.to_string()));
                        if port != 0 {
                            imp.doc.set(&tp, "our_udp_port", V::Int(port.into()));
                        }
                    }
                    None => imp.note(&tp, &kat, format!("{setting}: not an address: dropped"), true),
                },
                ("version", Value::String(s)) if s == "l2tpv2" => {}
                ("version", _) => imp.note(&tp, &kat, format!("{setting}: l2tpd speaks L2TPv2 only"), true),
                ("encap", Value::String(s)) if s == "udp" => {}
                ("encap", _) => imp.note(&tp, &kat, format!("{setting}: l2tpd carries L2TPv2 over UDP only"), true),
                ("tid" | "ptid", _) => imp.note(&tp, &kat, format!("{setting} has no equivalent: l2tpd picks its tunnel id and learns the peer's"), false),
                ("window_size", Value::Integer(n)) if (1..=65535).contains(n) => {
                    imp.doc.set(&tp, "rx_window_size", V::Int((*n).max(4)));
                    imp.doc.set(&tp, "tx_window_size", V::Int(*n));
                    if *n < 4 {
                        imp.note(&tp, &kat, format!("{setting}: the advertised window is at least 4 in l2tpd (RFC 2661 §5.8)"), false);
                    }
                }
                ("hello_timeout" | "retry_timeout", Value::Integer(n)) if *n >= 0 => {
                    if k == "retry_timeout" && *n == 0 {
                        imp.note(&tp, &kat, format!("{setting}: must be above zero in l2tpd: dropped"), true);
                    } else {
                        imp.doc.set(&tp, k, V::s(format!("{n}ms")));
                        if k == "retry_timeout" && *n > 8000 {
                            imp.doc.set(&tp, "retry_max_timeout", V::s(format!("{n}ms")));
                        }
                    }
                }
                ("max_retries", Value::Integer(n)) if (1..=i64::from(u32::MAX)).contains(n) => {
                    imp.doc.set(&tp, "max_retries", V::Int(*n));
                }
                ("host_name", Value::String(s)) if valid_host_name(s) => imp.doc.set(&tp, "host_name", V::s(s.as_str())),
                ("framing_caps", Value::Array(a)) => {
                    let caps: Vec<V> = a
                        .iter()
                        .filter_map(|c| c.as_str())
                        .filter(|c| matches!(*c, "sync" | "async"))
                        .map(V::s)
                        .collect();
                    if caps.len() != a.len() {
                        imp.note(&tp, &kat, format!("{setting}: only \"sync\" and \"async\" are kept"), true);
                    }
                    imp.doc.set(&tp, "framing_caps", V::Arr(caps));
                }
                ("session", Value::Table(_)) => {}
                _ => imp.note(&tp, &kat, format!("{setting}: not a kl2tpd tunnel setting (or a bad value): dropped"), true),
            }
        }
        if !have_peer {
            return Err(ImportError(format!(
                "{at}: tunnel.{} has no `peer` (kl2tpd requires it)",
                clean(tname)
            )));
        }
        let Some(sessions) = t.get("session").and_then(Value::as_table) else {
            imp.note(&tp, &at, format!("kl2tpd: tunnel.{tname} has no session: l2tpd sets up the tunnel alone, as kl2tpd"), false);
            continue;
        };
        for (sname, sval) in sessions {
            let Some(s) = sval.as_table() else {
                return Err(ImportError(format!(
                    "{at}: tunnel.{}.session.{} must be a table",
                    clean(tname),
                    clean(sname)
                )));
            };
            let sp = ["tunnel", tname.as_str(), "session", sname.as_str()];
            let pp = ["tunnel", tname.as_str(), "session", sname.as_str(), "ppp"];
            imp.doc.set(&sp, "session_type", V::s("lac_incoming"));
            let sheader = format!("[tunnel.{tname}.session.{sname}]");
            for (k, v) in s {
                let kat = format!("{file}:{}", line_of_in(&sheader, k));
                let setting = format!("kl2tpd: tunnel.{tname}.session.{sname}.{k} = {v}");
                match (k.as_str(), v) {
                    ("pseudowire", Value::String(p)) if p == "ppp" => {}
                    ("pseudowire", _) => imp.note(&sp, &kat, format!("{setting}: l2tpd carries PPP pseudowires only"), true),
                    ("sid" | "psid", _) => imp.note(&sp, &kat, format!("{setting} has no equivalent: l2tpd picks its session id and learns the peer's"), false),
                    ("seqnum", Value::Boolean(b)) => {
                        imp.doc.set(&sp, "use_sequence_numbers", V::Bool(*b));
                        imp.doc.set(&sp, "sequencing_required", V::Bool(*b));
                    }
                    ("reorder_timeout", Value::Integer(n)) if *n >= 0 => imp.doc.set(&sp, "reorder_timeout", V::s(format!("{n}ms"))),
                    ("cookie" | "peer_cookie" | "l2spec_type" | "pppoe_session_id" | "pppoe_peer_mac", _) => {
                        imp.note(&sp, &kat, format!("{setting} has no equivalent (L2TPv3 / PPPoE access concentrator only)"), true)
                    }
                    ("interface_name", _) => imp.note(&sp, &kat, format!("{setting} has no equivalent: pppd names the interface pppN"), true),
                    ("pppd_args", Value::String(f)) => match super::read_source(Path::new(f)) {
                        Ok(args) => {
                            imp.doc.comment(&pp, &format!("kl2tpd: pppd_args {f} carried over"));
                            pppopts::apply(&mut imp, &pp, &clean(f), "kl2tpd", &pppopts::words(&args));
                        }
                        Err(e) if f.starts_with('/') => {
                            imp.doc.set(&pp, "options_file", V::s(f.as_str()));
                            imp.note(&pp, &kat, format!("{setting}: could not be read here ({e}): pppd reads it with `file` (options_file)"), false);
                        }
                        Err(e) => imp.note(&pp, &kat, format!("{setting}: {e}; options_file must be an absolute path: dropped"), true),
                    },
                    _ => imp.note(&sp, &kat, format!("{setting}: not a kl2tpd session setting (or a bad value): dropped"), true),
                }
            }
        }
    }
    Ok(imp)
}

/// `ADDR:PORT`, `[V6]:PORT` or a bare address (port 1701; `local` without a
/// port means any port, 0).
fn parse_host_port(s: &str) -> Option<(std::net::IpAddr, u16)> {
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some((sa.ip(), sa.port()));
    }
    s.parse::<std::net::IpAddr>().ok().map(|a| (a, 1701))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Follows go-l2tp doc/kl2tpd.toml.5.md (its full list of tunnel and
    // session options), with RFC 5737 addresses.
    const FULL: &str = r#"
[tunnel.t1]
peer = "192.0.2.2:1701"
version = "l2tpv2"
encap = "udp"
local = "192.0.2.1:0"
tid = 62719
window_size = 10
hello_timeout = 7500
retry_timeout = 1500
max_retries = 5
host_name = "lac.example"
framing_caps = ["sync","async"]

[tunnel.t1.session.s1]
pseudowire = "ppp"
sid = 12389
seqnum = true
reorder_timeout = 250
"#;

    #[test]
    fn tunnel_and_session_keys_map() {
        let imp = convert(Path::new("k.toml"), FULL).unwrap();
        let t = ["tunnel", "t1"];
        let d = &imp.doc;
        assert_eq!(
            d.get(&["system"], "deny_remote_tunnel_creates"),
            Some(&V::Bool(true))
        );
        assert_eq!(d.get(&t, "peer_addr"), Some(&V::s("192.0.2.2")));
        assert_eq!(d.get(&t, "peer_udp_port"), None);
        assert_eq!(d.get(&t, "our_addr"), Some(&V::s("192.0.2.1")));
        assert_eq!(d.get(&t, "rx_window_size"), Some(&V::Int(10)));
        assert_eq!(d.get(&t, "hello_timeout"), Some(&V::s("7500ms")));
        assert_eq!(d.get(&t, "retry_timeout"), Some(&V::s("1500ms")));
        assert_eq!(d.get(&t, "max_retries"), Some(&V::Int(5)));
        assert_eq!(d.get(&t, "host_name"), Some(&V::s("lac.example")));
        let s = ["tunnel", "t1", "session", "s1"];
        assert_eq!(d.get(&s, "session_type"), Some(&V::s("lac_incoming")));
        assert_eq!(d.get(&s, "use_sequence_numbers"), Some(&V::Bool(true)));
        assert_eq!(d.get(&s, "reorder_timeout"), Some(&V::s("250ms")));
        // tid, sid: comments only.
        assert_eq!(imp.findings.len(), 2);
        assert_eq!(imp.behaviour_changes().count(), 0);
        assert_eq!(imp.findings[0].at, "k.toml:7");
        assert_eq!(imp.findings[1].at, "k.toml:17");
    }

    #[test]
    fn kl2tpd_defaults_are_written_out() {
        let imp = convert(Path::new("k.toml"), "[tunnel.a]\npeer = \"192.0.2.2\"\n").unwrap();
        let t = ["tunnel", "a"];
        assert_eq!(imp.doc.get(&t, "hello_timeout"), Some(&V::s("0")));
        assert_eq!(imp.doc.get(&t, "max_retries"), Some(&V::Int(3)));
        assert_eq!(imp.doc.get(&t, "tx_window_size"), Some(&V::Int(4)));
    }

    #[test]
    fn l2tpv3_eth_and_cookies_change_behaviour() {
        let imp = convert(
            Path::new("k.toml"),
            "[tunnel.a]\npeer = \"192.0.2.2:1701\"\nversion = \"l2tpv3\"\nencap = \"ip\"\n[tunnel.a.session.b]\npseudowire = \"eth\"\ncookie = [1, 2]\n",
        )
        .unwrap();
        assert_eq!(imp.behaviour_changes().count(), 4);
    }

    #[test]
    fn syntax_errors_and_missing_peer_name_the_line() {
        let e = convert(Path::new("k.toml"), "[tunnel.a]\npeer = \n").unwrap_err();
        assert!(e.0.starts_with("k.toml:2:"), "{e}");
        let e = convert(Path::new("k.toml"), "\n[tunnel.a]\nversion = \"l2tpv2\"\n").unwrap_err();
        assert!(e.0.starts_with("k.toml:2:"), "{e}");
    }
}
