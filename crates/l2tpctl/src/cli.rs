//! The command line (clap derive); the man page and the shell completions
//! are generated from it.
//!
//! The doc comments here are the `--help` text (plain text, where
//! `[system]` names a configuration table, not an item).
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Control a running l2tpd: tunnels, sessions, profiles, counters, trace
/// flags and events, through its Varlink API (interface io.l2tpd).
#[derive(Debug, Parser)]
#[command(
    name = "l2tpctl",
    version,
    about,
    long_about = "Control a running l2tpd (L2TPv2 LAC/LNS daemon): list, show, create, \
        modify and delete tunnels, sessions and profiles, read and reset counters, \
        reload the configuration, switch trace flags and watch events, through the \
        daemon's Varlink API on a Unix socket (interface io.l2tpd).\n\n\
        Output is a table for people; --json prints the API's replies as JSON for \
        programs (one object per line for monitor).\n\n\
        Exit status: 0 success, 1 other failure, 2 usage error, 3 the daemon cannot be \
        reached, 4 the daemon refused the operation (no such object, invalid \
        parameter, permission denied, ...)."
)]
pub(crate) struct Cli {
    /// The daemon's API socket (system.api_socket in l2tpd.toml).
    #[arg(
        short,
        long,
        global = true,
        env = "L2TPCTL_SOCKET",
        default_value = l2tp_api::DEFAULT_SOCKET
    )]
    pub socket: PathBuf,
    /// Print the API's replies as JSON instead of tables.
    #[arg(short, long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The daemon: version, uptime, counts, settings, counters, reload.
    #[command(subcommand)]
    System(SystemCmd),
    /// Tunnels (control connections).
    #[command(subcommand)]
    Tunnel(TunnelCmd),
    /// Sessions (calls) in tunnels.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Tunnel, session, PPP and peer profiles.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Print the daemon's metrics in the Prometheus text format (0.0.4), e.g.
    /// for node_exporter's textfile collector; the same text as the metrics
    /// HTTP endpoint (system.metrics_listen in l2tpd.toml).
    #[command(
        long_about = "Print the daemon's metrics in the Prometheus text format (version 0.0.4): \
            the same text the HTTP endpoint of system.metrics_listen serves, for \
            node_exporter's textfile collector, e.g.\n\n  \
            l2tpctl metrics > /var/lib/prometheus/node-exporter/l2tpd.prom.$$ && \
            mv /var/lib/prometheus/node-exporter/l2tpd.prom.$$ /var/lib/prometheus/node-exporter/l2tpd.prom\n\n\
            Daemon-wide series only, unless --per-tunnel. Counters count since l2tpd \
            started (system reset-counters does not reset them). With --json the reply \
            is printed as JSON ({\"text\": ...})."
    )]
    Metrics {
        /// Add one set of series per tunnel (labels tunnel and id; kernel data
        /// counters included): the output grows with the number of tunnels.
        #[arg(long)]
        per_tunnel: bool,
    },
    /// Print tunnel and session events (up, down, with reasons) as they happen, until interrupted.
    Monitor,
    /// Call any method of the API with JSON parameters and print the JSON reply.
    Call {
        /// Method, e.g. TunnelList or io.l2tpd.TunnelShow or org.varlink.service.GetInfo.
        method: String,
        /// Parameters as a JSON object.
        #[arg(default_value = "{}")]
        parameters: String,
    },
    /// Print the API's interface description (Varlink IDL) as the daemon serves it.
    Introspect,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the l2tpctl(1) man page (roff).
    #[command(hide = true)]
    Man,
}

/// `l2tpctl system ...`
#[derive(Debug, Subcommand)]
pub(crate) enum SystemCmd {
    /// Version, uptime, tunnel and session counts, configuration files, settings.
    Show,
    /// System-wide protocol counters.
    Counters {
        /// Start the counters afresh after printing them.
        #[arg(long)]
        reset: bool,
    },
    /// Start the system counters afresh.
    ResetCounters,
    /// Change [system] settings or the system-wide trace flags at run time.
    Modify {
        #[command(flatten)]
        set: SetArgs,
        #[command(flatten)]
        trace: TraceArgs,
    },
    /// Read the configuration files again (like SIGHUP).
    Reload,
}

/// `--set KEY=VALUE` options.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SetArgs {
    /// Set a key of l2tpd.toml(5) (repeatable). VALUE is JSON if it parses as
    /// JSON (30, true, ["a","b"]), else a string ("30s", "192.0.2.1").
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// `--trace FLAGS`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TraceArgs {
    /// Trace flags, comma-separated: protocol, fsm, api, avp, avp_hide,
    /// avp_data, func, xprt, data, system, ppp, all; none clears them.
    #[arg(long, value_name = "FLAGS")]
    pub trace: Option<String>,
}

/// How to wait for an object created at run time.
#[derive(Debug, Clone, Args)]
pub(crate) struct WaitArgs {
    /// Wait until it is established (exit status 4 if it fails or the time runs out).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
}

/// `l2tpctl tunnel ...`
#[derive(Debug, Subcommand)]
pub(crate) enum TunnelCmd {
    /// All tunnels.
    List,
    /// One tunnel: state, ids, peer, window, Ns/Nr, cwnd, counters, kernel counters, sessions.
    Show {
        /// Tunnel id or name.
        tunnel: String,
    },
    /// Open a tunnel to a peer, with any key of a [tunnel.NAME] table.
    Create {
        /// The peer's IP address.
        #[arg(long)]
        peer: String,
        /// The tunnel's name (default api-N).
        #[arg(long)]
        name: Option<String>,
        /// Place a call named NAME once the tunnel is up (repeatable;
        /// session_type lac_incoming and the profiles' settings).
        #[arg(long = "session", value_name = "NAME")]
        sessions: Vec<String>,
        #[command(flatten)]
        set: SetArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Change a tunnel's trace flags or whether it persists.
    Modify {
        /// Tunnel id or name.
        tunnel: String,
        #[command(flatten)]
        trace: TraceArgs,
        /// Re-establish the tunnel when it goes down.
        #[arg(long)]
        persist: Option<bool>,
        /// HELLO after this long without a message from the peer, e.g. 30s (0s: never).
        #[arg(long, value_name = "DURATION")]
        hello_timeout: Option<String>,
    },
    /// Clear a tunnel (StopCCN).
    Delete {
        /// Tunnel id or name.
        tunnel: String,
        /// StopCCN Result Code (RFC 2661 section 4.4.2; default 1).
        #[arg(long)]
        result_code: Option<u16>,
        /// Error message sent with it.
        #[arg(long)]
        message: Option<String>,
    },
}

/// The call types we place.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum PlacedCall {
    /// We are the LAC and signal an incoming call (ICRQ).
    LacIncoming,
    /// We are the LNS and ask the LAC to place an outgoing call (OCRQ).
    LnsOutgoing,
}

/// `l2tpctl session ...`
#[derive(Debug, Subcommand)]
pub(crate) enum SessionCmd {
    /// All sessions, or those of one tunnel.
    List {
        /// Tunnel id or name.
        tunnel: Option<String>,
    },
    /// One session: state, ids, call type, pppd, interface and the kernel's data counters.
    Show {
        /// Tunnel id or name.
        tunnel: String,
        /// Session id or name.
        session: String,
    },
    /// Place a call in a tunnel, with any key of a [tunnel.T.session.NAME] table.
    Create {
        /// Tunnel id or name.
        tunnel: String,
        /// The session's name (default api-N).
        #[arg(long)]
        name: Option<String>,
        /// The call to place (default lac-incoming).
        #[arg(long = "type", value_enum)]
        call_type: Option<PlacedCall>,
        #[command(flatten)]
        set: SetArgs,
        /// Set a PPP-profile key for this call (repeatable), like --set.
        #[arg(long = "ppp", value_name = "KEY=VALUE")]
        ppp: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Change a session's trace flags.
    Modify {
        /// Tunnel id or name.
        tunnel: String,
        /// Session id or name.
        session: String,
        #[command(flatten)]
        trace: TraceArgs,
    },
    /// Clear a call (CDN).
    Delete {
        /// Tunnel id or name.
        tunnel: String,
        /// Session id or name.
        session: String,
        /// CDN Result Code (RFC 2661 section 4.4.2; default 3).
        #[arg(long)]
        result_code: Option<u16>,
        /// Error message sent with it.
        #[arg(long)]
        message: Option<String>,
    },
}

/// Profile kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProfileKind {
    /// [tunnel_profile.NAME]
    Tunnel,
    /// [session_profile.NAME]
    Session,
    /// [ppp_profile.NAME]
    Ppp,
    /// [peer_profile.NAME]
    Peer,
}

impl ProfileKind {
    /// The API's spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Tunnel => "tunnel",
            Self::Session => "session",
            Self::Ppp => "ppp",
            Self::Peer => "peer",
        }
    }
}

/// `l2tpctl profile ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ProfileCmd {
    /// Profiles of every kind.
    List,
    /// Tunnel profiles.
    #[command(subcommand)]
    Tunnel(ProfileAction),
    /// Session profiles.
    #[command(subcommand)]
    Session(ProfileAction),
    /// PPP profiles.
    #[command(subcommand)]
    Ppp(ProfileAction),
    /// Peer profiles.
    #[command(subcommand)]
    Peer(ProfileAction),
}

impl ProfileCmd {
    /// The kind and action, `None` for `list` of every kind.
    pub(crate) fn split(&self) -> Option<(ProfileKind, &ProfileAction)> {
        match self {
            Self::List => None,
            Self::Tunnel(a) => Some((ProfileKind::Tunnel, a)),
            Self::Session(a) => Some((ProfileKind::Session, a)),
            Self::Ppp(a) => Some((ProfileKind::Ppp, a)),
            Self::Peer(a) => Some((ProfileKind::Peer, a)),
        }
    }
}

/// What to do with profiles of one kind.
#[derive(Debug, Subcommand)]
pub(crate) enum ProfileAction {
    /// The profiles of this kind.
    List,
    /// One profile: the keys set for it and what it resolves to.
    Show {
        /// Profile name.
        name: String,
    },
    /// Create a profile (used by tunnels and sessions created from now on).
    Create {
        /// Profile name.
        name: String,
        #[command(flatten)]
        set: SetArgs,
        #[command(flatten)]
        trace: TraceArgs,
    },
    /// Set or unset keys of a profile, or its trace flags.
    Modify {
        /// Profile name.
        name: String,
        #[command(flatten)]
        set: SetArgs,
        /// Remove a key set at run time (repeatable); the files' value applies again.
        #[arg(long, value_name = "KEY")]
        unset: Vec<String>,
        #[command(flatten)]
        trace: TraceArgs,
    },
    /// Delete a profile nothing refers to (not `default`).
    Delete {
        /// Profile name.
        name: String,
    },
}
