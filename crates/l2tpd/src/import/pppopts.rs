//! pppd options (an options file, pppd(8) "OPTIONS FILES", or kl2tpd's
//! `pppd_args` file): the options l2tpd has PPP profile keys for become those
//! keys, every other option is kept, in order, in `pppd_options`.

use super::{Import, V};

/// One word of an options file and the line it is on (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Word {
    pub line: usize,
    pub text: String,
}

/// Splits pppd options text into words: `#` starts a comment to the end of
/// the line; `"..."` groups a word with spaces (pppd's quoting; `\"` and
/// `\\` escape). An unterminated quote ends at the end of the line.
pub(super) fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut chars = line.chars().peekable();
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = chars.next() {
            match c {
                '#' if !in_word => break,
                '"' => {
                    in_word = true;
                    while let Some(q) = chars.next() {
                        match q {
                            '"' => break,
                            '\\' => {
                                if let Some(e) = chars.next() {
                                    cur.push(e);
                                }
                            }
                            q => cur.push(q),
                        }
                    }
                }
                c if c.is_whitespace() => {
                    if in_word {
                        out.push(Word {
                            line: n + 1,
                            text: std::mem::take(&mut cur),
                        });
                        in_word = false;
                    }
                }
                '\\' => {
                    in_word = true;
                    if let Some(e) = chars.next() {
                        cur.push(e);
                    }
                }
                c => {
                    in_word = true;
                    cur.push(c);
                }
            }
        }
        if in_word {
            out.push(Word {
                line: n + 1,
                text: cur,
            });
        }
    }
    out
}

/// Options that take one argument (so that the argument stays with its
/// option in `pppd_options`, and is not read as an option itself).
const WITH_ARG: &[&str] = &[
    "asyncmap",
    "call",
    "connect",
    "connect-delay",
    "disconnect",
    "file",
    "holdoff",
    "idle",
    "init",
    "ipparam",
    "ipcp-max-configure",
    "ipcp-max-failure",
    "ipcp-max-terminate",
    "ipcp-restart",
    "lcp-echo-failure",
    "lcp-echo-interval",
    "lcp-max-configure",
    "lcp-max-failure",
    "lcp-max-terminate",
    "lcp-restart",
    "linkname",
    "logfd",
    "logfile",
    "maxconnect",
    "maxfail",
    "ms-dns",
    "ms-wins",
    "mru",
    "mtu",
    "name",
    "netmask",
    "password",
    "pap-max-authreq",
    "pap-restart",
    "pap-timeout",
    "chap-interval",
    "chap-max-challenge",
    "chap-restart",
    "plugin",
    "remotename",
    "user",
    "ifname",
    "unit",
    "kdebug",
    "escape",
    "active-filter",
    "pass-filter",
    "welcome",
    "pty",
    "socket",
    "mp-endpoint",
    "eap-timeout",
    "eap-max-sreq",
    "eap-max-rreq",
    "eap-restart",
    "eap-interval",
    "ipv6",
    "ip-up-script",
    "ip-down-script",
    "pppol2tp",
    "remotenumber",
    "bsdcomp",
    "deflate",
    "receive-all",
    "require-mppe-128",
    "idle-time",
];

/// pppd options that take over what l2tpd manages itself (the PPPoL2TP
/// socket, pppd's lifetime): kept, but each is a behaviour change.
const MANAGED: &[&str] = &[
    "plugin", "pppol2tp", "persist", "demand", "maxfail", "holdoff", "nodetach", "updetach", "pty",
    "socket", "unit", "ifname", "linkname", "connect", "call",
];

/// Applies pppd options to the PPP table `table` of `imp`. `src` names the
/// source (file) for comments and findings; `origin` prefixes them (the
/// source daemon's name).
pub(super) fn apply(imp: &mut Import, table: &[&str], src: &str, origin: &str, words: &[Word]) {
    let mut dns = 0;
    let mut wins = 0;
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let opt = w.text.as_str();
        let takes_arg = WITH_ARG.contains(&opt);
        let arg = if takes_arg { words.get(i + 1) } else { None };
        let at = format!("{src}:{}", w.line);
        i += if takes_arg { 2 } else { 1 };
        if takes_arg && arg.is_none() {
            imp.note(
                table,
                &at,
                format!("{origin}: pppd option \"{opt}\" has no argument: dropped (pppd would refuse it)"),
                false,
            );
            continue;
        }
        let a = arg.map(|a| a.text.as_str()).unwrap_or("");
        let num = || a.parse::<i64>().ok().filter(|n| *n >= 0);
        let ip = || a.parse::<std::net::Ipv4Addr>().ok();
        let mapped = match opt {
            "mtu" | "mru" => match num().filter(|n| (128..=65535).contains(n)) {
                Some(n) => {
                    imp.doc.set(table, opt, V::Int(n));
                    true
                }
                None => false,
            },
            "ms-dns" if dns < 2 && ip().is_some() => {
                let k = if dns == 0 {
                    "dns_ipaddr_pri"
                } else {
                    "dns_ipaddr_sec"
                };
                imp.doc.set(table, k, V::s(a));
                dns += 1;
                true
            }
            "ms-wins" if wins < 2 && ip().is_some() => {
                let k = if wins == 0 {
                    "wins_ipaddr_pri"
                } else {
                    "wins_ipaddr_sec"
                };
                imp.doc.set(table, k, V::s(a));
                wins += 1;
                true
            }
            "lcp-echo-interval" | "idle" | "maxconnect" => match num() {
                Some(n) => {
                    let k = match opt {
                        "lcp-echo-interval" => "lcp_echo_interval",
                        "idle" => "idle_timeout",
                        _ => "max_connect_time",
                    };
                    imp.doc.set(table, k, V::s(format!("{n}s")));
                    true
                }
                None => false,
            },
            "lcp-echo-failure" => match num().filter(|n| *n <= i64::from(u32::MAX)) {
                Some(n) => {
                    imp.doc.set(table, "lcp_echo_fail_count", V::Int(n));
                    true
                }
                None => false,
            },
            "defaultroute" => {
                imp.doc.set(table, "default_route", V::Bool(true));
                true
            }
            "proxyarp" => {
                imp.doc.set(table, "proxy_arp", V::Bool(true));
                true
            }
            "multilink" | "mp" => {
                imp.doc.set(table, "multilink", V::Bool(true));
                true
            }
            "name" | "remotename" | "user" | "password" => {
                let k = match opt {
                    "name" => "local_name",
                    "remotename" => "remote_name",
                    "user" => "user_name",
                    _ => "user_password",
                };
                imp.doc.set(table, k, V::s(a));
                true
            }
            "refuse-pap" | "refuse-chap" | "refuse-mschap" | "refuse-mschap-v2" | "refuse-eap" => {
                let k = match opt {
                    "refuse-pap" => "auth_pap",
                    "refuse-chap" => "auth_chap",
                    "refuse-mschap" => "auth_mschapv1",
                    "refuse-mschap-v2" => "auth_mschapv2",
                    _ => "auth_eap",
                };
                imp.doc.set(table, k, V::Bool(false));
                true
            }
            _ => false,
        };
        if mapped {
            continue;
        }
        if MANAGED.contains(&opt) {
            imp.note(
                table,
                &at,
                format!(
                    "{origin}: pppd option \"{opt}\" is kept in pppd_options, but l2tpd starts pppd on the session's PPPoL2TP socket and manages its lifetime itself: check it still applies"
                ),
                true,
            );
        }
        match arg {
            Some(a) => imp.doc.push_pppd(table, &[opt, a.text.as_str()]),
            None => imp.doc.push_pppd(table, &[opt]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Follows xl2tpd examples/ppp-options.xl2tpd: addresses, DNS/WINS,
    // timers and serial-line options in one file.
    const OPTS: &str = "ipcp-accept-local\nipcp-accept-remote\nms-dns 192.0.2.53 # primary\n\
        ms-dns  192.0.2.54\nms-wins 192.0.2.60\nnoccp\nauth\ncrtscts\nidle 1800\nmtu 1410\n\
        mru 1410\nnodefaultroute\ndebug\nlock\nproxyarp\nconnect-delay 5000\n\
        name \"lns one\"\nrefuse-pap\n";

    #[test]
    fn words_handle_comments_and_quotes() {
        let w = words("a b # c d\n\"x y\" z\\ q\n");
        let t: Vec<_> = w.iter().map(|w| (w.line, w.text.as_str())).collect();
        assert_eq!(t, vec![(1, "a"), (1, "b"), (2, "x y"), (2, "z q")]);
    }

    #[test]
    fn mapped_options_become_keys_the_rest_stay_in_order() {
        let mut imp = Import::default();
        let t = ["ppp_profile", "default"];
        apply(&mut imp, &t, "opts", "xl2tpd", &words(OPTS));
        let d = &imp.doc;
        assert_eq!(d.get(&t, "mtu"), Some(&V::Int(1410)));
        assert_eq!(d.get(&t, "mru"), Some(&V::Int(1410)));
        assert_eq!(d.get(&t, "dns_ipaddr_pri"), Some(&V::s("192.0.2.53")));
        assert_eq!(d.get(&t, "dns_ipaddr_sec"), Some(&V::s("192.0.2.54")));
        assert_eq!(d.get(&t, "wins_ipaddr_pri"), Some(&V::s("192.0.2.60")));
        assert_eq!(d.get(&t, "idle_timeout"), Some(&V::s("1800s")));
        assert_eq!(d.get(&t, "proxy_arp"), Some(&V::Bool(true)));
        assert_eq!(d.get(&t, "local_name"), Some(&V::s("lns one")));
        assert_eq!(d.get(&t, "auth_pap"), Some(&V::Bool(false)));
        let rest: Vec<V> = [
            "ipcp-accept-local",
            "ipcp-accept-remote",
            "noccp",
            "auth",
            "crtscts",
            "nodefaultroute",
            "debug",
            "lock",
            "connect-delay",
            "5000",
        ]
        .iter()
        .map(|s| V::s(*s))
        .collect();
        assert_eq!(d.get(&t, "pppd_options"), Some(&V::Arr(rest)));
        assert!(imp.findings.is_empty(), "{:?}", imp.findings);
    }

    #[test]
    fn lifetime_options_are_kept_and_flagged() {
        let mut imp = Import::default();
        let t = ["ppp_profile", "default"];
        apply(
            &mut imp,
            &t,
            "opts",
            "xl2tpd",
            &words("persist\nmaxfail 0\nmtu 99999\n"),
        );
        assert_eq!(imp.behaviour_changes().count(), 2);
        assert_eq!(imp.findings[0].at, "opts:1");
        // An out-of-range MTU is not a key: it is passed on for pppd to judge.
        assert_eq!(
            imp.doc.get(&t, "pppd_options"),
            Some(&V::Arr(
                ["persist", "maxfail", "0", "mtu", "99999"]
                    .iter()
                    .map(|s| V::s(*s))
                    .collect()
            ))
        );
    }
}
