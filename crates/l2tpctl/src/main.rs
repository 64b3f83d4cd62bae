//! `l2tpctl`: the command-line client of l2tpd's management API.

mod cli;
mod man;
mod output;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use l2tp_api::types::{self as t, Settings};
use l2tp_api::{ApiError, Client, ClientError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use cli::{
    Cli, Command, ProfileAction, ProfileCmd, SessionCmd, SetArgs, SystemCmd, TraceArgs, TunnelCmd,
};

/// Why l2tpctl failed, and its exit status.
#[derive(Debug)]
enum Failure {
    /// 1: anything else (broken connection, bad reply, ...).
    Other(String),
    /// 2: the command line is wrong.
    Usage(String),
    /// 3: the daemon cannot be reached.
    Unreachable(String),
    /// 4: the daemon refused (an error reply, or no permission on the socket).
    Refused(String, Option<ApiError>),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Self::Other(_) => 1,
            Self::Usage(_) => 2,
            Self::Unreachable(_) => 3,
            Self::Refused(..) => 4,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Other(m) | Self::Usage(m) | Self::Unreachable(m) => m,
            Self::Refused(m, _) => m,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        if let ClientError::Connect { path, .. } = &e
            && e.is_connect_permission_denied()
        {
            return Self::Refused(
                format!(
                    "permission denied on {}: only root and the members of l2tpd's \
                     system.api_group (or api_readonly_group) may use it",
                    path.display()
                ),
                None,
            );
        }
        match e {
            ClientError::Connect { .. } => {
                Self::Unreachable(format!("{e} (is l2tpd running? see --socket)"))
            }
            ClientError::Api(api) => Self::Refused(api.to_string(), Some(api)),
            other => Self::Other(other.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// A `KEY=VALUE` argument: VALUE as JSON if it parses, else as a string.
fn key_value(arg: &str, option: &str) -> Result<(String, Value)> {
    let Some((k, v)) = arg.split_once('=') else {
        return Err(Failure::Usage(format!(
            "{option} {arg}: expected KEY=VALUE"
        )));
    };
    if k.is_empty() {
        return Err(Failure::Usage(format!("{option} {arg}: empty key")));
    }
    let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
    Ok((k.to_owned(), v))
}

fn settings(args: &[String], option: &str) -> Result<Option<Settings>> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut s = Settings::new();
    for a in args {
        let (k, v) = key_value(a, option)?;
        s.insert(k, v);
    }
    Ok(Some(s))
}

fn set_settings(set: &SetArgs) -> Result<Option<Settings>> {
    settings(&set.set, "--set")
}

fn trace_flags(t: &TraceArgs) -> Option<Vec<String>> {
    t.trace.as_ref().map(|f| {
        f.split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty() && *f != "none")
            .map(str::to_owned)
            .collect()
    })
}

struct Ctl {
    client: Client,
    json: bool,
}

impl Ctl {
    async fn call<P, R>(&mut self, method: &str, params: &P) -> Result<R>
    where
        P: Serialize + std::fmt::Debug,
        R: DeserializeOwned + std::fmt::Debug,
    {
        Ok(self.client.call(method, params).await?)
    }

    /// Call, then print the reply as JSON (`--json`) or with `human`.
    async fn show<P, R>(&mut self, method: &str, params: &P, human: impl FnOnce(&R)) -> Result<()>
    where
        P: Serialize + std::fmt::Debug,
        R: DeserializeOwned + Serialize + std::fmt::Debug,
    {
        let r: R = self.call(method, params).await?;
        if self.json {
            print_json(&r);
        } else {
            human(&r);
        }
        Ok(())
    }

    /// Call a method whose reply is empty; say `done` for people.
    async fn act<P>(&mut self, method: &str, params: &P, done: &str) -> Result<()>
    where
        P: Serialize + std::fmt::Debug,
    {
        let r: t::Empty = self.call(method, params).await?;
        if self.json {
            print_json(&r);
        } else {
            outln!("{done}");
        }
        Ok(())
    }
}

/// `s` with every control character but `\n` escaped (`\u{1b}`).
fn printable_lines(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\n') {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

fn print_json<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => outln!("{s}"),
        Err(e) => eprintln!("l2tpctl: {e}"),
    }
}

async fn system(ctl: &mut Ctl, cmd: SystemCmd) -> Result<()> {
    let none = t::NoParams {};
    match cmd {
        SystemCmd::Show => {
            ctl.show("SystemShow", &none, |r: &t::SystemShowReply| {
                output::system(&r.system)
            })
            .await
        }
        SystemCmd::Counters { reset } => {
            ctl.show("SystemCounters", &none, |r: &t::SystemCountersReply| {
                output::counters(&r.counters)
            })
            .await?;
            if reset {
                let _: t::Empty = ctl.call("SystemResetCounters", &none).await?;
            }
            Ok(())
        }
        SystemCmd::ResetCounters => {
            ctl.act("SystemResetCounters", &none, "counters reset")
                .await
        }
        SystemCmd::Modify { set, trace } => {
            let p = t::SystemModifyParams {
                settings: set_settings(&set)?,
                trace_flags: trace_flags(&trace),
            };
            ctl.act("SystemModify", &p, "modified").await
        }
        SystemCmd::Reload => {
            ctl.show("SystemReload", &none, |r: &t::SystemReloadReply| {
                outln!("configuration reloaded from {}", r.config_sources.join(" "))
            })
            .await
        }
    }
}

/// Poll until `done` says yes (Ok(true)), fails, or the time runs out.
async fn wait_until(
    ctl: &mut Ctl,
    timeout: u64,
    what: &str,
    mut done: impl AsyncFnMut(&mut Ctl) -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        if done(ctl).await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Failure::Refused(
                format!("{what} not established after {timeout}s"),
                None,
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait for a tunnel (and the sessions it carries) to be established.
async fn wait_tunnel(ctl: &mut Ctl, tunnel: &str, sessions: usize, timeout: u64) -> Result<()> {
    let what = format!("tunnel {tunnel}");
    let r = t::TunnelRef {
        tunnel: tunnel.to_owned(),
    };
    wait_until(ctl, timeout, &what, async |c: &mut Ctl| {
        match c.call::<_, t::TunnelShowReply>("TunnelShow", &r).await {
            Ok(s) => {
                let t = &s.tunnel;
                if t.close_reason.is_some() || t.state == "closing" {
                    return Err(Failure::Refused(
                        format!(
                            "tunnel {tunnel} failed: {}",
                            t.close_reason.as_deref().unwrap_or("closing")
                        ),
                        None,
                    ));
                }
                let up = t
                    .sessions
                    .iter()
                    .filter(|s| s.state == "established")
                    .count();
                Ok(t.state == "established" && up >= sessions)
            }
            Err(Failure::Refused(_, Some(ApiError::NoSuchTunnel { .. }))) => {
                Err(Failure::Refused(format!("tunnel {tunnel} went down"), None))
            }
            Err(e) => Err(e),
        }
    })
    .await
}

async fn wait_session(ctl: &mut Ctl, tunnel: &str, session: &str, timeout: u64) -> Result<()> {
    let what = format!("session {session}");
    let r = t::SessionRef {
        tunnel: tunnel.to_owned(),
        session: session.to_owned(),
    };
    wait_until(ctl, timeout, &what, async |c: &mut Ctl| {
        match c.call::<_, t::SessionShowReply>("SessionShow", &r).await {
            Ok(s) => Ok(s.session.state == "established"),
            Err(Failure::Refused(
                _,
                Some(ApiError::NoSuchSession { .. } | ApiError::NoSuchTunnel { .. }),
            )) => Err(Failure::Refused(
                format!("session {session} failed (see l2tpctl monitor or the daemon's log)"),
                None,
            )),
            Err(e) => Err(e),
        }
    })
    .await
}

async fn tunnel(ctl: &mut Ctl, cmd: TunnelCmd) -> Result<()> {
    match cmd {
        TunnelCmd::List => {
            ctl.show("TunnelList", &t::NoParams {}, |r: &t::TunnelListReply| {
                output::tunnels(&r.tunnels)
            })
            .await
        }
        TunnelCmd::Show { tunnel } => {
            ctl.show(
                "TunnelShow",
                &t::TunnelRef { tunnel },
                |r: &t::TunnelShowReply| output::tunnel(&r.tunnel),
            )
            .await
        }
        TunnelCmd::Create {
            peer,
            name,
            sessions,
            set,
            wait,
        } => {
            let p = t::TunnelCreateParams {
                peer,
                name,
                settings: set_settings(&set)?,
                sessions: (!sessions.is_empty()).then(|| {
                    sessions
                        .iter()
                        .map(|s| (s.clone(), Settings::new()))
                        .collect::<BTreeMap<_, _>>()
                }),
            };
            let r: t::TunnelCreateReply = ctl.call("TunnelCreate", &p).await?;
            if wait.wait {
                wait_tunnel(
                    ctl,
                    &r.tunnel_id.to_string(),
                    r.session_ids.len(),
                    wait.timeout,
                )
                .await?;
            }
            if ctl.json {
                print_json(&r);
            } else {
                let verb = if wait.wait {
                    "is up"
                } else {
                    "is being set up"
                };
                outln!("tunnel {} (id {}) {verb}", r.name, r.tunnel_id);
                for (n, id) in &r.session_ids {
                    outln!("session {n} (id {id}) placed");
                }
            }
            Ok(())
        }
        TunnelCmd::Modify {
            tunnel,
            trace,
            persist,
            hello_timeout,
        } => {
            let p = t::TunnelModifyParams {
                tunnel,
                trace_flags: trace_flags(&trace),
                persist,
                hello_timeout,
            };
            ctl.act("TunnelModify", &p, "modified").await
        }
        TunnelCmd::Delete {
            tunnel,
            result_code,
            message,
        } => {
            let done = format!("tunnel {tunnel} is being cleared");
            let p = t::TunnelDeleteParams {
                tunnel,
                result_code,
                message,
            };
            ctl.act("TunnelDelete", &p, &done).await
        }
    }
}

async fn session(ctl: &mut Ctl, cmd: SessionCmd) -> Result<()> {
    match cmd {
        SessionCmd::List { tunnel } => {
            ctl.show(
                "SessionList",
                &t::SessionListParams { tunnel },
                |r: &t::SessionListReply| output::sessions(&r.sessions),
            )
            .await
        }
        SessionCmd::Show { tunnel, session } => {
            ctl.show(
                "SessionShow",
                &t::SessionRef { tunnel, session },
                |r: &t::SessionShowReply| output::session(&r.session),
            )
            .await
        }
        SessionCmd::Create {
            tunnel,
            name,
            call_type,
            set,
            ppp,
            wait,
        } => {
            let mut s = set_settings(&set)?.unwrap_or_default();
            if let Some(ct) = call_type {
                let v = match ct {
                    cli::PlacedCall::LacIncoming => "lac_incoming",
                    cli::PlacedCall::LnsOutgoing => "lns_outgoing",
                };
                s.insert("session_type".into(), Value::String(v.into()));
            }
            if let Some(p) = settings(&ppp, "--ppp")? {
                s.insert("ppp".into(), Value::Object(p));
            }
            let p = t::SessionCreateParams {
                tunnel: tunnel.clone(),
                name,
                settings: (!s.is_empty()).then_some(s),
            };
            let r: t::SessionCreateReply = ctl.call("SessionCreate", &p).await?;
            if wait.wait {
                wait_session(
                    ctl,
                    &r.tunnel_id.to_string(),
                    &r.session_id.to_string(),
                    wait.timeout,
                )
                .await?;
            }
            if ctl.json {
                print_json(&r);
            } else {
                let verb = if wait.wait { "is up" } else { "placed" };
                outln!(
                    "session {} (id {}) in tunnel {tunnel} {verb}",
                    r.name,
                    r.session_id
                );
            }
            Ok(())
        }
        SessionCmd::Modify {
            tunnel,
            session,
            trace,
        } => {
            let Some(flags) = trace_flags(&trace) else {
                return Err(Failure::Usage(
                    "session modify: nothing to change (--trace)".into(),
                ));
            };
            let p = t::SessionModifyParams {
                tunnel,
                session,
                trace_flags: Some(flags),
            };
            ctl.act("SessionModify", &p, "modified").await
        }
        SessionCmd::Delete {
            tunnel,
            session,
            result_code,
            message,
        } => {
            let done = format!("session {session} in tunnel {tunnel} is being cleared");
            let p = t::SessionDeleteParams {
                tunnel,
                session,
                result_code,
                message,
            };
            ctl.act("SessionDelete", &p, &done).await
        }
    }
}

async fn profile(ctl: &mut Ctl, cmd: ProfileCmd) -> Result<()> {
    let Some((kind, action)) = cmd.split() else {
        return ctl
            .show(
                "ProfileList",
                &t::ProfileListParams { kind: None },
                |r: &t::ProfileListReply| output::profiles(&r.profiles),
            )
            .await;
    };
    let kind = kind.as_str().to_owned();
    match action {
        ProfileAction::List => {
            ctl.show(
                "ProfileList",
                &t::ProfileListParams { kind: Some(kind) },
                |r: &t::ProfileListReply| output::profiles(&r.profiles),
            )
            .await
        }
        ProfileAction::Show { name } => {
            ctl.show(
                "ProfileShow",
                &t::ProfileRef {
                    kind,
                    name: name.clone(),
                },
                |r: &t::ProfileShowReply| output::profile(&r.profile),
            )
            .await
        }
        ProfileAction::Create { name, set, trace } => {
            let done = format!("{kind} profile {name} created");
            let p = t::ProfileCreateParams {
                kind,
                name: name.clone(),
                settings: set_settings(set)?,
                trace_flags: trace_flags(trace),
            };
            ctl.act("ProfileCreate", &p, &done).await
        }
        ProfileAction::Modify {
            name,
            set,
            unset,
            trace,
        } => {
            let done = format!("{kind} profile {name} modified");
            let p = t::ProfileModifyParams {
                kind,
                name: name.clone(),
                settings: set_settings(set)?,
                unset: (!unset.is_empty()).then(|| unset.clone()),
                trace_flags: trace_flags(trace),
            };
            ctl.act("ProfileModify", &p, &done).await
        }
        ProfileAction::Delete { name } => {
            let done = format!("{kind} profile {name} deleted");
            let p = t::ProfileRef {
                kind,
                name: name.clone(),
            };
            ctl.act("ProfileDelete", &p, &done).await
        }
    }
}

async fn monitor(ctl: Ctl) -> Result<()> {
    let json = ctl.json;
    let (mut m, first) = ctl.client.monitor().await?;
    let print = |e: &t::Event| {
        if json {
            match serde_json::to_string(e) {
                Ok(s) => outln!("{s}"),
                Err(e) => eprintln!("l2tpctl: {e}"),
            }
        } else {
            output::event(e);
        }
    };
    print(&first);
    loop {
        match m.next().await {
            Ok(e) => {
                print(&e);
                if e.kind == "exiting" {
                    return Ok(());
                }
            }
            Err(e) => return Err(Failure::Unreachable(format!("monitor ended: {e}"))),
        }
    }
}

/// Usage errors found without the daemon.
fn check_usage(cmd: &Command) -> Result<()> {
    let nothing = |what: &str, opts: &str| {
        Err(Failure::Usage(format!(
            "{what}: nothing to change ({opts})"
        )))
    };
    match cmd {
        Command::System(SystemCmd::Modify { set, trace }) => {
            if set.set.is_empty() && trace.trace.is_none() {
                return nothing("system modify", "--set or --trace");
            }
            set_settings(set)?;
        }
        Command::Tunnel(TunnelCmd::Modify {
            trace,
            persist,
            hello_timeout,
            ..
        }) if trace.trace.is_none() && persist.is_none() && hello_timeout.is_none() => {
            return nothing("tunnel modify", "--trace, --persist or --hello-timeout");
        }
        Command::Tunnel(TunnelCmd::Create { set, .. }) => {
            set_settings(set)?;
        }
        Command::Session(SessionCmd::Create { set, ppp, .. }) => {
            set_settings(set)?;
            settings(ppp, "--ppp")?;
        }
        Command::Session(SessionCmd::Modify { trace, .. }) if trace.trace.is_none() => {
            return nothing("session modify", "--trace");
        }
        Command::Profile(p) => match p.split() {
            Some((
                _,
                ProfileAction::Modify {
                    set, unset, trace, ..
                },
            )) => {
                if set.set.is_empty() && unset.is_empty() && trace.trace.is_none() {
                    return nothing("profile modify", "--set, --unset or --trace");
                }
                set_settings(set)?;
            }
            Some((_, ProfileAction::Create { set, .. })) => {
                set_settings(set)?;
            }
            _ => {}
        },
        _ => {}
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    check_usage(&cli.command)?;
    let connect = |json| async move {
        Ok::<_, Failure>(Ctl {
            client: Client::connect(&cli.socket).await?,
            json,
        })
    };
    match cli.command {
        Command::Completions { shell } => {
            // Rendered in memory: clap_complete panics when its writer
            // fails (`l2tpctl completions bash | head -1`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "l2tpctl", &mut script);
            output::write_line(format_args!(
                "{}",
                String::from_utf8_lossy(&script).trim_end()
            ));
            Ok(())
        }
        Command::Man => {
            output::write_line(format_args!("{}", man::render().trim_end()));
            Ok(())
        }
        Command::System(c) => system(&mut connect(cli.json).await?, c).await,
        Command::Tunnel(c) => tunnel(&mut connect(cli.json).await?, c).await,
        Command::Session(c) => session(&mut connect(cli.json).await?, c).await,
        Command::Profile(c) => profile(&mut connect(cli.json).await?, c).await,
        Command::Monitor => monitor(connect(cli.json).await?).await,
        Command::Metrics { per_tunnel } => {
            let mut ctl = connect(cli.json).await?;
            let p = t::MetricsParams { per_tunnel };
            ctl.show("Metrics", &p, |r: &t::MetricsReply| {
                // The daemon escapes what it renders; still, nothing but
                // line ends reaches the terminal as a control character.
                outln!("{}", printable_lines(&r.text).trim_end());
            })
            .await
        }
        Command::Introspect => {
            let mut ctl = connect(cli.json).await?;
            let r: Value = ctl
                .call(
                    "org.varlink.service.GetInterfaceDescription",
                    &serde_json::json!({ "interface": l2tp_api::INTERFACE }),
                )
                .await?;
            if ctl.json {
                print_json(&r);
            } else {
                outln!(
                    "{}",
                    r["description"].as_str().unwrap_or_default().trim_end()
                );
            }
            Ok(())
        }
        Command::Call { method, parameters } => {
            let params: Value = serde_json::from_str(&parameters)
                .map_err(|e| Failure::Usage(format!("parameters: not JSON: {e}")))?;
            if !params.is_object() {
                return Err(Failure::Usage("parameters: must be a JSON object".into()));
            }
            let mut ctl = connect(true).await?;
            let r: Value = ctl.call(&method, &params).await?;
            print_json(&r);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("l2tpctl: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if json && let Failure::Refused(_, Some(api)) = &f {
                print_json(api);
            }
            eprintln!("l2tpctl: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_values_parse_as_json_or_string() {
        assert_eq!(
            key_value("mtu=1400", "--set").unwrap(),
            ("mtu".into(), Value::from(1400))
        );
        assert_eq!(
            key_value("hello_timeout=30s", "--set").unwrap().1,
            Value::String("30s".into())
        );
        assert_eq!(
            key_value("pppd_options=[\"noauth\"]", "--set").unwrap().1,
            serde_json::json!(["noauth"])
        );
        assert!(matches!(
            key_value("nokey", "--set"),
            Err(Failure::Usage(_))
        ));
    }

    #[test]
    fn man_page_in_the_repository_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../doc/l2tpctl.1");
        let current = man::render();
        if std::env::var_os("L2TPCTL_UPDATE_MAN").is_some() {
            std::fs::write(&path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == current,
            "doc/l2tpctl.1 is stale: run `L2TPCTL_UPDATE_MAN=1 cargo test -p l2tpctl man_page` \
             (or `l2tpctl man > doc/l2tpctl.1`)"
        );
    }
}
