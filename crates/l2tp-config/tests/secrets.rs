//! The secrets file: what it may hold, its permission check, and secrets
//! staying out of Debug output, the effective dump, errors and warnings.

mod common;

use common::TempDir;
use l2tp_config::{Config, ConfigErrors, ConfigPaths, ErrorKind};

const TUNNEL_SECRET: &str = "tunnel-secret-xyzzy";
const PROFILE_SECRET: &str = "profile-secret-frobozz";
const PPP_PASSWORD: &str = "ppp-password-plugh";
const SESSION_PASSWORD: &str = "session-password-zork";

const CONFIG: &str = r#"[system]
secrets_file = "secrets.toml"

[tunnel_profile.corp]
auth_mode = "challenge"
hide_avps = true

[ppp_profile.isp]
user_name = "me"

[tunnel.lac1]
peer_addr = "192.0.2.2"
tunnel_profile_name = "corp"
[tunnel.lac1.session.s1]
ppp_profile_name = "isp"
[tunnel.lac1.session.s1.ppp]
user_name = "me-too"

[tunnel.lac2]
peer_addr = "192.0.2.3"
tunnel_profile_name = "corp"
"#;

fn secrets() -> String {
    format!(
        r#"[tunnel_profile.corp]
secret = "{PROFILE_SECRET}"

[tunnel.lac1]
secret = "{TUNNEL_SECRET}"

[ppp_profile.isp]
user_password = "{PPP_PASSWORD}"

[tunnel.lac1.session.s1.ppp]
user_password = "{SESSION_PASSWORD}"
"#
    )
}

fn load(dir: &TempDir) -> Result<Config, ConfigErrors> {
    Config::load(&ConfigPaths::explicit(dir.path("l2tpd.toml")))
}

fn assert_no_secret(what: &str, text: &str) {
    for s in [
        TUNNEL_SECRET,
        PROFILE_SECRET,
        PPP_PASSWORD,
        SESSION_PASSWORD,
        "hunter2",
    ] {
        assert!(!text.contains(s), "{what} contains {s}:\n{text}");
    }
}

#[test]
fn secrets_file_mode_0600_is_read_and_merged() {
    let dir = TempDir::new("secrets-ok");
    let main = dir.write("l2tpd.toml", CONFIG);
    let sf = dir.write_mode("secrets.toml", &secrets(), 0o600);
    let c = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.secrets_file(), Some(sf.as_path()));
    assert_eq!(c.sources(), [main, sf.clone()]);
    assert_eq!(c.system.secrets_file.as_deref(), Some(sf.as_path()));

    let lac1 = c.local_tunnel("lac1").unwrap();
    assert_eq!(lac1.params.secret.as_ref().unwrap().expose(), TUNNEL_SECRET);
    assert_eq!(
        lac1.sessions[0]
            .ppp
            .user_password
            .as_ref()
            .unwrap()
            .expose(),
        SESSION_PASSWORD
    );
    assert_eq!(
        lac1.session_defaults.ppp_profile_name, None,
        "incoming sessions do not use the session's table"
    );
    let lac2 = c.local_tunnel("lac2").unwrap();
    assert_eq!(
        lac2.params.secret.as_ref().unwrap().expose(),
        PROFILE_SECRET
    );
    assert_eq!(
        c.ppp_profile("isp")
            .unwrap()
            .user_password
            .unwrap()
            .expose(),
        PPP_PASSWORD
    );
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    // 0400 is fine too.
    dir.write_mode("secrets.toml", &secrets(), 0o400);
    load(&dir).unwrap();
}

#[test]
fn secrets_file_accessible_by_group_or_others_is_refused_with_its_mode() {
    for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660] {
        let dir = TempDir::new("secrets-mode");
        dir.write("l2tpd.toml", CONFIG);
        let sf = dir.write_mode("secrets.toml", &secrets(), mode);
        let e = load(&dir).unwrap_err();
        let perm: Vec<_> = e
            .iter()
            .filter(|x| x.kind == ErrorKind::Permissions)
            .collect();
        assert_eq!(perm.len(), 1, "mode {mode:o}: {e}");
        assert_eq!(perm[0].file, sf);
        let msg = perm[0].to_string();
        assert!(
            msg.starts_with(&format!("{}: ", sf.display())),
            "the message names the file: {msg}"
        );
        assert!(
            msg.contains(&format!("mode {mode:04o}")),
            "the message names the mode: {msg}"
        );
        // Nothing else is wrong: the secrets were still checked, so no
        // follow-on "needs a tunnel secret" errors.
        assert_eq!(e.len(), 1, "{e}");
        assert_no_secret("errors", &e.to_string());
    }
}

#[test]
fn relative_and_absolute_secrets_paths() {
    let dir = TempDir::new("secrets-paths");
    let sf = dir.write("keys/s.toml", &secrets());
    // Relative to the directory of the file that sets it: a drop-in here.
    dir.write(
        "l2tpd.toml",
        &CONFIG.replace("secrets_file = \"secrets.toml\"", ""),
    );
    dir.write(
        "l2tpd.toml.d/50-secrets.toml",
        "[system]\nsecrets_file = \"../keys/s.toml\"\n",
    );
    let c = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.secrets_file(),
        Some(dir.path("l2tpd.toml.d/../keys/s.toml").as_path())
    );
    // Absolute.
    dir.write(
        "l2tpd.toml.d/50-secrets.toml",
        &format!("[system]\nsecrets_file = {:?}\n", sf.display().to_string()),
    );
    let c = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.secrets_file(), Some(sf.as_path()));
}

#[test]
fn a_missing_secrets_file_is_an_error_naming_it_and_where_it_is_set() {
    let dir = TempDir::new("secrets-missing");
    let main = dir.write("l2tpd.toml", CONFIG);
    let e = load(&dir).unwrap_err();
    let io: Vec<_> = e.iter().filter(|x| x.kind == ErrorKind::Io).collect();
    assert_eq!(io.len(), 1, "{e}");
    assert_eq!(io[0].file, dir.path("secrets.toml"));
    assert!(
        io[0]
            .message
            .contains(&format!("set at {}:2", main.display())),
        "{e}"
    );
}

#[test]
fn the_secrets_file_overrides_secrets_in_the_configuration() {
    let dir = TempDir::new("secrets-override");
    dir.write(
        "l2tpd.toml",
        &CONFIG.replace(
            "[tunnel.lac1]\n",
            "[tunnel.lac1]\nsecret = \"inline-secret\"\n",
        ),
    );
    dir.write("secrets.toml", &secrets());
    let c = load(&dir).unwrap();
    assert_eq!(
        c.local_tunnel("lac1")
            .unwrap()
            .params
            .secret
            .as_ref()
            .unwrap()
            .expose(),
        TUNNEL_SECRET
    );
}

#[test]
fn only_secrets_of_defined_tables_are_allowed() {
    let dir = TempDir::new("secrets-shape");
    dir.write("l2tpd.toml", CONFIG);
    let text = format!(
        r#"{}
[tunnel.lac1.session.s1]
session_type = "lac_outgoing"

[tunnel_profile.corp2]
secret = "hunter2"

[tunnel.lac9]
secret = "hunter2"

[tunnel.lac2]
mtu = "hunter2"
secret = 12

[system]
max_tunnels = 3

[ppp_profile.isp2]
user_password = "hunter2"
"#,
        secrets()
    );
    let sf = dir.write("secrets.toml", &text);
    let e = load(&dir).unwrap_err();
    let line = |needle: &str| common::line_of(&text, needle);
    let expect = [
        (
            "tunnel.lac1.session.s1.session_type",
            line("session_type"),
            ErrorKind::UnknownKey,
        ),
        (
            "tunnel_profile.corp2",
            line("[tunnel_profile.corp2]"),
            ErrorKind::UnknownProfile,
        ),
        (
            "tunnel.lac9",
            line("[tunnel.lac9]"),
            ErrorKind::UnknownProfile,
        ),
        ("tunnel.lac2.mtu", line("mtu ="), ErrorKind::UnknownKey),
        (
            "tunnel.lac2.secret",
            line("secret = 12"),
            ErrorKind::InvalidValue,
        ),
        ("system", line("[system]"), ErrorKind::UnknownKey),
        (
            "ppp_profile.isp2",
            line("[ppp_profile.isp2]"),
            ErrorKind::UnknownProfile,
        ),
    ];
    for (key, line, kind) in expect {
        let err = common::error_for(&e, key);
        assert_eq!(err.file, sf, "{err}");
        assert_eq!(err.line(), Some(line), "{err}");
        assert_eq!(err.kind, kind, "{err}");
    }
    assert_eq!(e.len(), expect.len(), "{e}");
    assert_no_secret("errors", &e.to_string());
    assert!(
        common::error_for(&e, "tunnel_profile.corp2")
            .message
            .contains("did you mean \"corp\""),
        "{e}"
    );
}

#[test]
fn secrets_file_syntax_errors_do_not_quote_it() {
    for text in [
        "[tunnel.lac1]\nsecret = \"hunter2\n",
        "[tunnel.lac1]\nsecret = hunter2\n",
        "[tunnel.lac1]\nsecret = 'hunter2\n",
        "[tunnel.lac1]\nsecret = \"\"\"hunter2\n",
        "[tunnel.lac1]\nsecret = \"hunter2\" x\n",
        "[tunnel.lac1]\nsecret = \"hun\\qter2\"\n",
        "[tunnel.lac1]\nhunter2\n",
        "[tunnel.lac1 hunter2]\n",
    ] {
        let dir = TempDir::new("secrets-syntax");
        dir.write("l2tpd.toml", CONFIG);
        let sf = dir.write("secrets.toml", text);
        let e = load(&dir).unwrap_err();
        assert!(
            e.iter()
                .any(|x| x.file == sf && x.kind == ErrorKind::Syntax && x.line().is_some()),
            "{e}"
        );
        assert_no_secret("errors", &format!("{e}\n{e:?}"));
    }
}

#[test]
fn secrets_stay_out_of_debug_dump_errors_and_warnings() {
    let dir = TempDir::new("secrets-leak");
    // Inline secrets too, in a file others may read: a warning.
    let main = dir.write_mode(
        "l2tpd.toml",
        &CONFIG.replace("[tunnel.lac2]\n", "[tunnel.lac2]\nsecret = \"hunter2\"\n"),
        0o644,
    );
    dir.write("secrets.toml", &secrets());
    let c = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_no_secret("Debug", &format!("{c:?}"));
    assert_no_secret("Debug of a tunnel", &format!("{:?}", c.local_tunnels()));
    let dump = c.to_toml_effective();
    assert_no_secret("the dump", &dump);
    assert!(dump.contains("secret = \"<redacted>\""), "{dump}");
    assert!(dump.contains("user_password = \"<redacted>\""), "{dump}");
    let warnings = c
        .warnings()
        .iter()
        .map(|w| format!("{w}\n{w:?}\n"))
        .collect::<String>();
    assert_no_secret("warnings", &warnings);

    // Errors after the secrets are merged: an empty secret, a constraint.
    dir.write(
        "secrets.toml",
        &format!("{}\n[tunnel_profile.default]\nsecret = \"\"\n", secrets()),
    );
    dir.write(
        "l2tpd.toml",
        &format!("{CONFIG}\n[tunnel_profile.default]\nretry_timeout = \"20s\"\n"),
    );
    let e = load(&dir).unwrap_err();
    let empty = common::error_for(&e, "tunnel_profile.default.secret");
    assert_eq!(empty.file, dir.path("secrets.toml"));
    assert_no_secret("errors", &format!("{e}\n{e:?}"));
    let _ = main;
}

#[test]
fn inline_secrets_in_a_file_others_may_read_are_a_warning() {
    let dir = TempDir::new("secrets-inline");
    let text = "[tunnel_profile.default]\nsecret = \"hunter2\"\n[ppp_profile.p]\nuser_password = \"hunter2\"\n\
                [tunnel.t]\npeer_addr = \"192.0.2.2\"\nsecret = \"hunter2\"\n\
                [tunnel.t.session.s.ppp]\nuser_password = \"hunter2\"\n";
    let main = dir.write_mode("l2tpd.toml", text, 0o644);
    let c = load(&dir).unwrap();
    let w = c.warnings();
    let keys: Vec<_> = w.iter().map(|x| x.key.clone().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "tunnel_profile.default.secret",
            "ppp_profile.p.user_password",
            "tunnel.t.secret",
            "tunnel.t.session.s.ppp.user_password",
        ],
        "{w:?}"
    );
    assert!(
        w.iter()
            .all(|x| x.kind == ErrorKind::Permissions && x.file == main)
    );
    assert_eq!(w[0].line(), Some(2));
    assert!(w[0].to_string().contains("mode 0644"), "{}", w[0]);
    assert_no_secret("warnings", &format!("{w:?}"));

    // Readable by the owner only: no warning.
    dir.write_mode("l2tpd.toml", text, 0o600);
    assert!(load(&dir).unwrap().warnings().is_empty());
    // Text given directly: nothing is known about the file, no warning.
    let c = Config::from_str(text, &main).unwrap();
    assert!(c.warnings().is_empty());
}

#[test]
fn from_str_does_not_read_the_secrets_file() {
    let text = "[system]\nsecrets_file = \"/nonexistent/secrets.toml\"\n";
    let c = Config::from_str(text, std::path::Path::new("/etc/l2tpd/l2tpd.toml")).unwrap();
    assert_eq!(c.secrets_file(), None);
    assert_eq!(
        c.system.secrets_file.as_deref(),
        Some(std::path::Path::new("/nonexistent/secrets.toml"))
    );
    let e = Config::from_str(
        "[system]\nsecrets_file = \"\"\n",
        std::path::Path::new("x.toml"),
    )
    .unwrap_err();
    assert_eq!(common::error_for(&e, "system.secrets_file").line(), Some(2));
}
