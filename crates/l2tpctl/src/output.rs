//! Human-readable output: tables and key/value lists.

use comfy_table::{CellAlignment, ColumnConstraint, Table, presets};
use l2tp_api::types::{
    Event, KernelStats, Profile, ProfileSummary, SessionInfo, SessionSummary, SystemCounters,
    SystemInfo, TunnelInfo, TunnelSummary,
};
use serde_json::Value;

/// Print a line on stdout; a closed pipe (`l2tpctl ... | head`) ends l2tpctl quietly.
pub(crate) fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}").and_then(|()| out.flush()) {
        std::process::exit(if e.kind() == std::io::ErrorKind::BrokenPipe {
            0
        } else {
            1
        });
    }
}

/// `println!` that survives a closed pipe.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write_line(format_args!("")) };
    ($($a:tt)*) => { $crate::output::write_line(format_args!($($a)*)) };
}

/// A string from the daemon made safe for a terminal, whatever the daemon
/// (or a peer behind it) put in it: C0 / C1 controls and DEL (newlines, ESC
/// of ANSI and OSC sequences, NUL…) become `\n`, `\r`, `\t`, `\0`,
/// `\xNN` or `\u{NN}`, and invisible format characters that reorder text
/// (bidirectional overrides, zero-width characters, byte-order mark) become
/// `\u{NNNN}`. Backslashes are kept as they are: the daemon already escapes
/// peer strings, and this second line of defence must not double them.
pub(crate) fn esc(s: &str) -> String {
    use std::fmt::Write;
    if !s.chars().any(needs_escape) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}')
}

/// Add a row of cells, each escaped with [`esc`].
fn add_row(t: &mut Table, cells: Vec<String>) {
    t.add_row(cells.iter().map(|c| esc(c)).collect::<Vec<_>>());
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(header.iter().map(|h| h.to_uppercase()));
    t
}

fn print_table(t: &Table) {
    // comfy-table pads every line with a leading space in the NOTHING preset.
    for line in t.to_string().lines() {
        crate::outln!("{}", line.strip_prefix(' ').unwrap_or(line).trim_end());
    }
}

/// `key  value` lines, keys aligned.
fn kv(rows: &[(&str, String)]) {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        crate::outln!("{:<w$}  {}", esc(k), esc(v));
    }
}

fn heading(h: &str) {
    crate::outln!("\n{h}:");
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn flags(f: &[String]) -> String {
    if f.is_empty() {
        "-".into()
    } else {
        f.join(",")
    }
}

/// Seconds as `1d02h03m04s`, shortest form.
pub(crate) fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m{s:02}s"),
        _ => format!("{d}d{h:02}h{m:02}m{s:02}s"),
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn settings(o: &serde_json::Map<String, Value>) {
    if o.is_empty() {
        crate::outln!("(none)");
        return;
    }
    let rows: Vec<(&str, String)> = o.iter().map(|(k, v)| (k.as_str(), value(v))).collect();
    kv(&rows);
}

/// `system show`.
pub(crate) fn system(s: &SystemInfo) {
    kv(&[
        ("version", s.version.clone()),
        (
            "interface",
            format!("io.l2tpd version {}", s.interface_version),
        ),
        ("pid", s.pid.to_string()),
        ("uptime", duration(s.uptime_secs)),
        ("listen", s.listen.clone()),
        ("data plane", s.data_plane.clone()),
        ("tunnels", s.tunnels.to_string()),
        ("sessions", s.sessions.to_string()),
        (
            "configuration",
            if s.config_sources.is_empty() {
                "-".into()
            } else {
                s.config_sources.join(" ")
            },
        ),
        (
            "runtime changes",
            if s.runtime_changes { "yes" } else { "no" }.into(),
        ),
        ("trace flags", flags(&s.trace_flags)),
    ]);
    heading("settings");
    settings(&s.settings);
}

/// `system counters`.
pub(crate) fn counters(c: &SystemCounters) {
    let v = serde_json::to_value(c).unwrap_or_default();
    let mut rows: Vec<(&str, String)> = Vec::new();
    if let Value::Object(o) = &v {
        for (k, v) in o {
            let label = if k == "seconds_since_reset" {
                "since reset"
            } else {
                k.as_str()
            };
            let text = if k == "seconds_since_reset" {
                duration(v.as_u64().unwrap_or(0))
            } else {
                value(v)
            };
            rows.push((label, text));
        }
    }
    kv(&rows);
}

/// `tunnel list`.
pub(crate) fn tunnels(ts: &[TunnelSummary]) {
    if ts.is_empty() {
        crate::outln!("no tunnels");
        return;
    }
    let mut t = table(&[
        "id",
        "name",
        "origin",
        "peer",
        "peer id",
        "state",
        "sessions",
        "uptime",
        "peer host",
    ]);
    for x in ts {
        add_row(
            &mut t,
            vec![
                x.id.to_string(),
                x.name.clone(),
                x.origin.clone(),
                x.peer.clone(),
                x.peer_id.to_string(),
                x.state.clone(),
                x.sessions.to_string(),
                duration(x.uptime_secs),
                x.peer_host_name.clone(),
            ],
        );
    }
    right_align(&mut t, &[0, 4, 6]);
    print_table(&t);
}

fn right_align(t: &mut Table, cols: &[usize]) {
    for c in cols {
        if let Some(col) = t.column_mut(*c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn kernel(k: &Option<KernelStats>, err: &Option<String>) {
    match (k, err) {
        (Some(k), _) => kv(&[
            ("rx packets", k.rx_packets.to_string()),
            ("rx bytes", k.rx_bytes.to_string()),
            ("rx errors", k.rx_errors.to_string()),
            ("rx seq discards", k.rx_seq_discards.to_string()),
            ("rx oos packets", k.rx_oos_packets.to_string()),
            ("rx cookie discards", k.rx_cookie_discards.to_string()),
            ("rx invalid", k.rx_invalid.to_string()),
            ("tx packets", k.tx_packets.to_string()),
            ("tx bytes", k.tx_bytes.to_string()),
            ("tx errors", k.tx_errors.to_string()),
        ]),
        (None, Some(e)) => crate::outln!("unavailable: {}", esc(e)),
        (None, None) => crate::outln!("no kernel object"),
    }
}

fn by_type(m: &std::collections::BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "-".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `tunnel show`.
pub(crate) fn tunnel(t: &TunnelInfo) {
    kv(&[
        ("tunnel", format!("{} (id {})", t.name, t.id)),
        ("origin", t.origin.clone()),
        ("state", t.state.clone()),
        ("peer", t.peer.clone()),
        ("peer tunnel id", t.peer_id.to_string()),
        ("peer host name", t.peer_host_name.clone()),
        ("peer vendor", opt(&t.peer_vendor_name)),
        (
            "peer caps",
            format!(
                "framing {:#x}, bearer {:#x}",
                t.peer_framing_caps, t.peer_bearer_caps
            ),
        ),
        (
            "role",
            if t.initiator {
                "initiator (we sent SCCRQ)"
            } else {
                "responder"
            }
            .into(),
        ),
        ("persist", t.persist.to_string()),
        ("uptime", duration(t.uptime_secs)),
        ("host name", t.host_name.clone()),
        (
            "hello interval",
            t.hello_interval_ms
                .map_or("off".into(), |ms| format!("{}s", ms as f64 / 1000.0)),
        ),
        ("auth mode", t.auth_mode.clone()),
        ("hide avps", t.hide_avps.to_string()),
        (
            "max sessions",
            if t.max_sessions == 0 {
                "no limit".into()
            } else {
                t.max_sessions.to_string()
            },
        ),
        ("close reason", opt(&t.close_reason)),
        ("trace flags", flags(&t.trace_flags)),
    ]);
    let w = &t.window;
    heading("control channel");
    kv(&[
        ("ns / nr", format!("{} / {}", w.ns, w.nr)),
        ("cwnd / ssthresh", format!("{} / {}", w.cwnd, w.ssthresh)),
        ("peer rws", w.peer_rws.to_string()),
        (
            "our rws / max tx window",
            format!("{} / {}", w.rx_window, w.tx_window_max),
        ),
        (
            "in flight / queued",
            format!("{} / {}", w.in_flight, w.unacked),
        ),
        (
            "retry timeout / max retries",
            format!("{}ms / {}", w.retry_timeout_ms, w.max_retries),
        ),
    ]);
    let c = &t.counters;
    heading("counters");
    kv(&[
        (
            "messages tx / rx",
            format!("{} / {}", c.tx_messages, c.rx_messages),
        ),
        ("retransmits", c.retransmits.to_string()),
        ("zlbs tx / rx", format!("{} / {}", c.tx_zlbs, c.rx_zlbs)),
        (
            "hellos tx / rx",
            format!("{} / {}", c.tx_hellos, c.rx_hellos),
        ),
        (
            "duplicates / out of order / out of window",
            format!(
                "{} / {} / {}",
                c.duplicates, c.out_of_order, c.out_of_window
            ),
        ),
        (
            "illegal / bad messages",
            format!("{} / {}", c.illegal_messages, c.bad_messages),
        ),
        (
            "ignored / vendor avps",
            format!("{} / {}", c.ignored_avps, c.vendor_avps),
        ),
        (
            "unknown session discards",
            c.no_matching_session_discards.to_string(),
        ),
        ("auth fails", c.auth_fails.to_string()),
        ("rx by type", by_type(&c.rx_by_type)),
        ("tx by type", by_type(&c.tx_by_type)),
        ("rx bad by type", by_type(&c.rx_bad_by_type)),
    ]);
    heading("kernel data counters");
    kernel(&t.kernel, &t.kernel_error);
    heading("sessions");
    sessions(&t.sessions);
}

/// `session list`.
pub(crate) fn sessions(ss: &[SessionSummary]) {
    if ss.is_empty() {
        crate::outln!("no sessions");
        return;
    }
    let mut t = table(&[
        "tunnel",
        "id",
        "name",
        "peer id",
        "call type",
        "state",
        "pppd",
        "interface",
    ]);
    for s in ss {
        add_row(
            &mut t,
            vec![
                format!("{} ({})", s.tunnel, s.tunnel_id),
                s.id.to_string(),
                s.name.clone(),
                s.peer_id.to_string(),
                s.call_type.clone(),
                s.state.clone(),
                opt(&s.pppd_pid),
                opt(&s.ifname),
            ],
        );
    }
    right_align(&mut t, &[1, 3]);
    if let Some(c) = t.column_mut(0) {
        c.set_constraint(ColumnConstraint::ContentWidth);
    }
    print_table(&t);
}

/// `session show`.
pub(crate) fn session(s: &SessionInfo) {
    let p = &s.peer_info;
    kv(&[
        ("session", format!("{} (id {})", s.name, s.id)),
        ("tunnel", format!("{} (id {})", s.tunnel, s.tunnel_id)),
        ("peer session id", s.peer_id.to_string()),
        ("call type", s.call_type.clone()),
        ("state", s.state.clone()),
        ("call serial", s.serial.to_string()),
        ("sequencing", s.sequencing.to_string()),
        ("pppd pid", opt(&s.pppd_pid)),
        ("interface", opt(&s.ifname)),
        ("trace flags", flags(&s.trace_flags)),
    ]);
    heading("peer call info");
    kv(&[
        ("tx connect speed", opt(&p.tx_connect_speed)),
        ("rx connect speed", opt(&p.rx_connect_speed)),
        ("framing type", opt(&p.framing_type)),
        ("bearer type", opt(&p.bearer_type)),
        ("calling number", opt(&p.calling_number)),
        ("called number", opt(&p.called_number)),
        ("physical channel id", opt(&p.physical_channel_id)),
        ("private group id", opt(&p.private_group_id)),
    ]);
    heading("kernel data counters");
    kernel(&s.kernel, &s.kernel_error);
}

/// `profile list`.
pub(crate) fn profiles(ps: &[ProfileSummary]) {
    if ps.is_empty() {
        crate::outln!("no profiles");
        return;
    }
    let mut t = table(&["kind", "name", "origin", "trace flags"]);
    for p in ps {
        add_row(
            &mut t,
            vec![
                p.kind.clone(),
                p.name.clone(),
                p.origin.clone(),
                flags(&p.trace_flags),
            ],
        );
    }
    print_table(&t);
}

/// `profile KIND show`.
pub(crate) fn profile(p: &Profile) {
    kv(&[
        ("profile", format!("{} {}", p.kind, p.name)),
        ("origin", p.origin.clone()),
        ("trace flags", flags(&p.trace_flags)),
    ]);
    heading("set");
    settings(&p.settings);
    heading("effective");
    settings(&p.effective);
}

/// One `monitor` line: UTC time, kind, description.
pub(crate) fn event(e: &Event) {
    let secs = e.timestamp_usec / 1_000_000;
    let ms = e.timestamp_usec / 1000 % 1000;
    crate::outln!(
        "{:02}:{:02}:{:02}.{ms:03} {:<14} {}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        esc(&e.kind),
        esc(&e.description)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_neutralises_control_and_format_characters() {
        assert_eq!(esc("lns-1 Zürich"), "lns-1 Zürich");
        assert_eq!(
            esc("a\nb\r\t\0\x1b[31m\x1b]0;t\x07\x7f"),
            "a\\nb\\r\\t\\0\\x1b[31m\\x1b]0;t\\x07\\x7f"
        );
        assert_eq!(
            esc("x\u{9b}y\u{202e}z\u{200b}"),
            "x\\u{9b}y\\u{202e}z\\u{200b}"
        );
        // Escapes the daemon already made are kept as they are.
        assert_eq!(esc("evil\\nline"), "evil\\nline");
        let all: String = (0u32..0x250).filter_map(char::from_u32).collect();
        assert!(!esc(&all).chars().any(needs_escape));
    }

    #[test]
    fn table_cells_are_escaped() {
        let mut t = table(&["peer host"]);
        add_row(&mut t, vec!["evil\nFORGED\x1b[2J".to_owned()]);
        let s = t.to_string();
        assert!(!s.contains('\x1b'), "{s:?}");
        assert!(s.contains("evil\\nFORGED\\x1b[2J"), "{s:?}");
        assert_eq!(s.lines().count(), 2, "header and one row: {s:?}");
    }
}
