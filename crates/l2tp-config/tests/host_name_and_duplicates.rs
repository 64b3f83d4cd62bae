//! `host_name` is validated (printable ASCII, 1 to 255 octets) with an error
//! naming file, line and key; toml's "duplicate key" errors name the key.

mod common;

use common::{FILE, error_for, errors, parse};
use l2tp_config::ErrorKind;

#[test]
fn a_host_name_too_long_for_sane_use_is_refused_with_file_line_and_key() {
    let long = "h".repeat(2000);
    let text = format!("[tunnel.lac1]\npeer_addr = \"192.0.2.2\"\nhost_name = \"{long}\"\n");
    let e = errors(&text);
    let err = error_for(&e, "tunnel.lac1.host_name");
    assert_eq!(err.file.to_str(), Some(FILE));
    assert_eq!(err.line(), Some(3));
    assert!(err.message.contains("2000 octets"), "{err}");
    assert!(err.message.contains("255"), "{err}");
    // 255 is fine, 256 is not.
    let ok = format!(
        "[tunnel.lac1]\npeer_addr = \"192.0.2.2\"\nhost_name = \"{}\"\n",
        "a".repeat(255)
    );
    parse(&ok);
    let over = format!(
        "[tunnel.lac1]\npeer_addr = \"192.0.2.2\"\nhost_name = \"{}\"\n",
        "a".repeat(256)
    );
    error_for(&errors(&over), "tunnel.lac1.host_name");
}

#[test]
fn a_host_name_with_controls_or_spaces_is_refused() {
    for bad in [r"lac\n1", r"lac\u001b[31m", "lac 1", r"lac\u0000", "läc"] {
        let text = format!(
            "[tunnel_profile.tp]\nhost_name = \"{bad}\"\n[tunnel.lac1]\npeer_addr = \"192.0.2.2\"\ntunnel_profile_name = \"tp\"\n"
        );
        let e = errors(&text);
        let err = error_for(&e, "tunnel_profile.tp.host_name");
        assert_eq!(err.line(), Some(2), "{err}");
        assert!(err.message.contains("printable ASCII"), "{bad}: {err}");
        // The message shows the character escaped, never raw.
        assert!(!err.to_string().chars().any(char::is_control), "{err:?}");
    }
}

#[test]
fn a_peer_profile_host_name_is_checked_too() {
    let text = "[peer_profile.p]\nhost_name = \"a\\tb\"\n";
    let e = errors(text);
    let err = error_for(&e, "peer_profile.p.host_name");
    assert_eq!(err.line(), Some(2));
    // An unused tunnel profile's host_name as well.
    let text = format!(
        "[tunnel_profile.unused]\nhost_name = \"{}\"\n",
        "x".repeat(300)
    );
    error_for(&errors(&text), "tunnel_profile.unused.host_name");
}

#[test]
fn duplicate_keys_are_named() {
    let text = "[tunnel.lac1]\npeer_addr = \"192.0.2.2\"\npeer_addr = \"192.0.2.3\"\n";
    let e = errors(text);
    assert_eq!(e.errors.len(), 1, "{e}");
    let err = &e.errors[0];
    assert_eq!(err.key.as_deref(), Some("tunnel.lac1.peer_addr"), "{err}");
    assert_eq!(err.kind, ErrorKind::Duplicate);
    assert_eq!(err.line(), Some(3));
    assert_eq!(
        err.to_string(),
        format!(
            "{FILE}:3:1: key `tunnel.lac1.peer_addr`: duplicate key `tunnel.lac1.peer_addr`: defined more than once"
        )
    );
}

#[test]
fn duplicate_tables_and_dotted_keys_are_named() {
    let text = "[system]\nmax_tunnels = 4\n\n[tunnel.a]\npeer_addr = \"192.0.2.2\"\n[tunnel.a]\npeer_addr = \"192.0.2.2\"\n";
    let e = errors(text);
    let err = error_for(&e, "tunnel.a");
    // The second `[tunnel.a]` (line 6).
    assert_eq!(err.line(), Some(6), "{err}");
    assert_eq!(err.kind, ErrorKind::Duplicate);
    let text =
        "[tunnel.t]\npeer_addr = \"192.0.2.2\"\nsession.s.mtu = 1400\nsession.s.mtu = 1300\n";
    let e = errors(text);
    let err = error_for(&e, "tunnel.t.session.s.mtu");
    assert_eq!(err.line(), Some(4));
    // At the top level, before any table.
    let e = errors("a = 1\na = 2\n");
    assert_eq!(e.errors[0].key.as_deref(), Some("a"), "{e}");
}
