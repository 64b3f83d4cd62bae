//! The l2tpctl(1) man page, generated from the clap definitions: clap_mangen
//! renders the top-level sections; every command with its options follows
//! under COMMANDS (one page for all, rather than a page per subcommand),
//! then exit status, files, examples.

use clap::CommandFactory;

use crate::cli::Cli;

/// Escape text for roff.
fn esc(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    s.lines()
        .map(|l| {
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn arg_term(a: &clap::Arg) -> String {
    let value = a
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.to_string())
        .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
    if a.is_positional() {
        return format!("\\fI{}\\fR", esc(&value));
    }
    let mut names = Vec::new();
    if let Some(s) = a.get_short() {
        names.push(format!("\\fB\\-{s}\\fR"));
    }
    if let Some(l) = a.get_long() {
        names.push(format!("\\fB\\-\\-{}\\fR", esc(l)));
    }
    let takes_value = a.get_num_args().is_some_and(|n| n.takes_values());
    let mut term = names.join(", ");
    if takes_value {
        term.push_str(&format!(" \\fI{}\\fR", esc(&value)));
    }
    term
}

fn commands(cmd: &clap::Command, out: &mut String) {
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        if sub.has_subcommands() {
            commands(sub, out);
            continue;
        }
        let mut sub = sub.clone();
        let usage = sub.render_usage().to_string();
        let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage);
        out.push_str(&format!(
            ".SS \"{}\"\n",
            esc(sub.get_bin_name().unwrap_or(sub.get_name()))
        ));
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            out.push_str(&format!("{}\n", esc(&about.to_string())));
        }
        out.push_str(&format!(".PP\n\\fB{}\\fR\n", esc(usage)));
        for a in sub.get_arguments() {
            if a.is_hide_set()
                || a.is_global_set()
                || matches!(a.get_id().as_str(), "help" | "version")
            {
                continue;
            }
            out.push_str(&format!(".TP\n{}\n", arg_term(a)));
            if let Some(h) = a.get_long_help().or(a.get_help()) {
                out.push_str(&format!("{}\n", esc(&h.to_string())));
            }
            let values: Vec<String> = a
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect();
            if !values.is_empty() {
                out.push_str(&format!("One of: {}.\n", esc(&values.join(", "))));
            }
        }
    }
}

const TAIL: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success.
.TP
\fB1\fR
Another failure (the connection broke, a reply could not be read).
.TP
\fB2\fR
Usage error: the command line is wrong.
.TP
\fB3\fR
The daemon cannot be reached (no socket, nothing listening).
.TP
\fB4\fR
The daemon refused the operation: no such tunnel, session or profile, an
invalid parameter (named in the message), a configuration the change would
make invalid, or permission denied (also when the socket itself may not be
opened).
.SH FILES
.TP
\fI/run/l2tpd/io.l2tpd.sock\fR
The daemon's API socket (\fBsystem.api_socket\fR in \fBl2tpd.toml\fR(5)),
owned by root, mode 0660. Root and members of \fBsystem.api_group\fR may use
every command; members of \fBsystem.api_readonly_group\fR only the commands
that read (show, list, counters, metrics, monitor).
.SH ENVIRONMENT
.TP
\fBL2TPCTL_SOCKET\fR
The socket, when \fB\-\-socket\fR is not given.
.SH EXAMPLES
.nf
l2tpctl tunnel create \-\-peer 192.0.2.2 \-\-name lns1 \-\-set hello_timeout=30s \-\-wait
l2tpctl session create lns1 \-\-name s1 \-\-ppp mtu=1400 \-\-wait
l2tpctl tunnel list
l2tpctl session show lns1 s1
l2tpctl tunnel modify lns1 \-\-trace protocol,fsm
l2tpctl profile ppp create fast \-\-set mtu=1400 \-\-set lcp_echo_interval=10
l2tpctl monitor \-\-json
l2tpctl session delete lns1 s1
l2tpctl tunnel delete lns1 \-\-result\-code 6
l2tpctl call TunnelList
.fi
.SH "SEE ALSO"
\fBl2tpd\fR(8), \fBl2tpd.toml\fR(5), \fBvarlinkctl\fR(1); the interface
description: \fBl2tpctl introspect\fR.
"#;

/// The whole page.
pub(crate) fn render() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone())
        .section("1")
        .manual("l2tpd")
        .source(format!("l2tpd {}", env!("CARGO_PKG_VERSION")));
    let mut buf = Vec::new();
    type Part = fn(&clap_mangen::Man, &mut dyn std::io::Write) -> std::io::Result<()>;
    let parts: [Part; 5] = [
        clap_mangen::Man::render_title,
        clap_mangen::Man::render_name_section,
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_description_section,
        clap_mangen::Man::render_options_section,
    ];
    for part in parts {
        // Writing to a Vec cannot fail.
        let _ = part(&man, &mut buf);
    }
    let mut out = String::from_utf8_lossy(&buf).into_owned();
    out.push_str(".SH COMMANDS\n");
    commands(&cmd, &mut out);
    out.push_str(TAIL);
    out
}
