//! RADIUS keys of PPP profiles: pppd's `radius.so` / `radattr.so` options
//! (pppd-radius(8), pppd-radattr(8)) and their validation.

mod common;

use std::path::Path;

use common::{TempDir, error_for, errors, line_of, parse};
use l2tp_config::{Config, ErrorKind};

/// An LNS profile with RADIUS, the radiusclient file at `conf`.
fn lns_profile(conf: &Path, extra: &str) -> String {
    format!(
        r#"
[ppp_profile.radius]
local_ipaddr = "198.51.100.1"
auth_peer = true
auth_pap = false
auth_mschapv1 = false
auth_mschapv2 = false
auth_eap = false
radius = true
radius_config_file = "{}"
{extra}
[peer_profile.lacs]
peer_addr = "192.0.2.0/24"
ppp_profile_name = "radius"
"#,
        conf.display()
    )
}

#[test]
fn the_radius_keys_become_plugin_options_in_order() {
    let dir = TempDir::new("radius-args");
    let conf = dir.write("radiusclient.conf", "authserver 127.0.0.1:1812\n");
    let c = parse(&lns_profile(
        &conf,
        "radius_avpairs = [\"NAS-Identifier=lns1\", \"Connect-Info=l2tp\"]\n\
         radattr = true\n\
         pppd_options = [\"map-to-ifname\"]\n",
    ));
    let m = c.match_peer("192.0.2.7".parse().unwrap(), None);
    let (_, _, ppp) = c.resolve_incoming(&m);
    assert!(ppp.radius && ppp.radattr);
    assert_eq!(
        ppp.pppd_args(true, None).join(" "),
        format!(
            "mtu 1500 mru 1500 198.51.100.1: auth require-chap \
             refuse-pap refuse-mschap refuse-mschap-v2 refuse-eap \
             plugin radius.so radius-config-file {} \
             avpair NAS-Identifier=lns1 avpair Connect-Info=l2tp \
             plugin radattr.so map-to-ifname",
            conf.display()
        ),
        "radius.so before its options and before radattr.so; pppd_options after \
         (they may use the plugin's options)"
    );
}

#[test]
fn without_radius_no_plugin_is_loaded() {
    let c = parse("[ppp_profile.default]\nauth_peer = true\n");
    let args = c.ppp_profile("default").unwrap().pppd_args(true, None);
    assert!(!args.iter().any(|a| a.contains("radius") || a == "avpair"));
}

#[test]
fn radius_without_a_config_file_uses_the_plugins_default() {
    let c = parse("[ppp_profile.default]\nauth_peer = true\nauth_eap = false\nradius = true\n");
    let args = c.ppp_profile("default").unwrap().pppd_args(true, None);
    let at = args.iter().position(|a| a == "radius.so").unwrap();
    assert_eq!(args[at - 1], "plugin");
    assert!(
        !args
            .iter()
            .any(|a| a == "radius-config-file" || a == "radattr.so")
    );
}

#[test]
fn the_keys_are_inherited_and_shown_in_the_effective_configuration() {
    let dir = TempDir::new("radius-dump");
    let conf = dir.write("radiusclient.conf", "");
    let c = parse(&lns_profile(&conf, "radattr = true"));
    let toml = c.to_toml_effective();
    assert!(toml.contains("radius = true"), "{toml}");
    assert!(toml.contains("radattr = true"), "{toml}");
    assert!(
        toml.contains(&format!("radius_config_file = \"{}\"", conf.display())),
        "{toml}"
    );
    // Reloading the dump gives the same profile.
    let again = Config::from_str(&toml, Path::new(common::FILE)).unwrap();
    assert_eq!(again.ppp_profile("radius"), c.ppp_profile("radius"));
}

#[test]
fn a_missing_or_relative_config_file_names_file_line_and_key() {
    let dir = TempDir::new("radius-missing");
    let missing = dir.path("no-such.conf");
    let text = lns_profile(&missing, "");
    let e = errors(&text);
    let err = error_for(&e, "ppp_profile.radius.radius_config_file");
    assert_eq!(err.kind, ErrorKind::Inconsistent, "{err}");
    assert_eq!(err.line(), Some(line_of(&text, "radius_config_file")));
    assert_eq!(err.file, Path::new(common::FILE));
    assert!(err.to_string().contains("no-such.conf"), "{err}");
    assert_eq!(e.len(), 1, "{e}");

    let text = lns_profile(Path::new("radiusclient.conf"), "");
    let e = errors(&text);
    let err = error_for(&e, "ppp_profile.radius.radius_config_file");
    assert!(err.to_string().contains("absolute"), "{err}");
    assert_eq!(err.line(), Some(line_of(&text, "radius_config_file")));

    // A directory is no configuration file.
    let e = errors(&lns_profile(&dir.0, ""));
    let err = error_for(&e, "ppp_profile.radius.radius_config_file");
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn radius_needs_peer_authentication_without_eap() {
    let text = "[ppp_profile.a]\nradius = true\n";
    let e = errors(text);
    let err = error_for(&e, "ppp_profile.a.radius");
    assert!(err.to_string().contains("auth_peer"), "{err}");
    assert_eq!(err.line(), Some(2));

    // auth_eap is true by default: the error is at `radius`...
    let text = "[ppp_profile.a]\nauth_peer = true\nradius = true\n";
    let err = error_for(&errors(text), "ppp_profile.a.radius").to_string();
    assert!(err.contains("auth_eap = false"), "{err}");
    // ...or at `auth_eap` where it is set.
    let text = "[ppp_profile.a]\nauth_peer = true\nauth_eap = true\nradius = true\n";
    let e = errors(text);
    let err = error_for(&e, "ppp_profile.a.auth_eap");
    assert_eq!(err.line(), Some(3));
}

#[test]
fn the_other_radius_keys_need_radius() {
    let dir = TempDir::new("radius-needs");
    let conf = dir.write("radiusclient.conf", "");
    let text = format!(
        "[ppp_profile.a]\nradius_config_file = \"{}\"\nradius_avpairs = [\"Class=x\"]\n\
         radattr = true\n",
        conf.display()
    );
    let e = errors(&text);
    for (key, line) in [
        ("radius_config_file", 2),
        ("radius_avpairs", 3),
        ("radattr", 4),
    ] {
        let err = error_for(&e, &format!("ppp_profile.a.{key}"));
        assert!(err.to_string().contains("needs radius = true"), "{err}");
        assert_eq!(err.line(), Some(line), "{err}");
    }
    assert_eq!(e.len(), 3, "{e}");
}

#[test]
fn bad_avpairs_and_plugins_loaded_twice_are_refused() {
    let dir = TempDir::new("radius-avpairs");
    let conf = dir.write("radiusclient.conf", "");
    for bad in ["NAS-Identifier", "=x", "NAS Identifier=x", "Class=a\\nb"] {
        let text = lns_profile(&conf, &format!("radius_avpairs = [\"{bad}\"]"));
        let e = errors(&text);
        let err = error_for(&e, "ppp_profile.radius.radius_avpairs");
        assert_eq!(err.line(), Some(line_of(&text, "radius_avpairs")), "{err}");
    }
    let text = lns_profile(
        &conf,
        "radattr = true\npppd_options = [\"plugin\", \"/usr/lib/pppd/2.4.9/radattr.so\"]",
    );
    let e = errors(&text);
    let err = error_for(&e, "ppp_profile.radius.pppd_options");
    assert!(err.to_string().contains("radattr.so"), "{err}");
}

#[test]
fn a_sessions_own_ppp_table_takes_the_radius_keys() {
    let dir = TempDir::new("radius-session");
    let conf = dir.write("radiusclient.conf", "");
    let c = parse(&format!(
        r#"
[tunnel.t]
peer_addr = "192.0.2.2"
[tunnel.t.session.s]
session_type = "lns_outgoing"
[tunnel.t.session.s.ppp]
auth_peer = true
auth_eap = false
radius = true
radius_config_file = "{}"
"#,
        conf.display()
    ));
    let s = &c.local_tunnel("t").unwrap().sessions[0];
    let args = s.ppp.pppd_args(true, None);
    let at = args.iter().position(|a| a == "radius-config-file").unwrap();
    assert_eq!(Path::new(&args[at + 1]), conf);
}
