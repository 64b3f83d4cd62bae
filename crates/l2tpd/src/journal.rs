//! Logging to the systemd journal over its native protocol, when systemd
//! connected stderr to the journal (`JOURNAL_STREAM` names stderr's
//! device:inode, systemd.exec(5)).
//!
//! Each event is formatted as on stderr (message and fields, without the
//! time and level, which the journal records itself) by the usual
//! `tracing_subscriber::fmt` layer and the same filter; the line goes to
//! journald as one entry with `PRIORITY=` from the level (ERROR 3, WARN 4,
//! INFO 5, DEBUG 6, TRACE 7, the mapping of the `log` crate's levels that
//! `systemd-journal-logger` uses), `SYSLOG_IDENTIFIER=l2tpd`, `TARGET=`,
//! `CODE_FILE=` and `CODE_LINE=`. So `journalctl -u l2tpd -p warning`
//! works and multi-line messages stay one entry. A line journald does not
//! take is written to stderr instead (the journal's stream, still).

use std::io::{self, Write};
use std::sync::Arc;

use systemd_journal_logger::JournalLog;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Whether stderr is the journal stream systemd set up for this process
/// (`JOURNAL_STREAM` equals stderr's `st_dev:st_ino`).
pub(crate) fn stderr_is_journal() -> bool {
    systemd_journal_logger::connected_to_journal()
}

/// A `MakeWriter` whose writers send one journal entry each.
#[derive(Clone)]
pub(crate) struct JournalWriter {
    log: Arc<JournalLog>,
}

impl JournalWriter {
    /// Open a socket to journald (`/run/systemd/journal/socket`) and check
    /// that it takes datagrams. Errors: the socket's, e.g. `ENOENT` or
    /// `ECONNREFUSED` when journald is not running.
    pub(crate) fn open() -> io::Result<Self> {
        let log = JournalLog::new()?.with_syslog_identifier("l2tpd".to_string());
        Ok(Self { log: Arc::new(log) })
    }
}

/// One event's formatted line, sent to journald when dropped.
pub(crate) struct Entry<'a> {
    log: &'a JournalLog,
    level: log::Level,
    target: String,
    file: Option<String>,
    line: Option<u32>,
    buf: Vec<u8>,
}

impl Write for Entry<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end_matches('\n');
        if text.is_empty() {
            return;
        }
        let sent = self.log.journal_send(
            &log::Record::builder()
                .args(format_args!("{text}"))
                .level(self.level)
                .target(&self.target)
                .file(self.file.as_deref())
                .line(self.line)
                .build(),
        );
        if sent.is_err() {
            let _ = writeln!(io::stderr().lock(), "{text}");
        }
    }
}

impl<'a> MakeWriter<'a> for JournalWriter {
    type Writer = Entry<'a>;

    fn make_writer(&'a self) -> Entry<'a> {
        self.entry(log::Level::Info, "l2tpd", None, None)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Entry<'a> {
        let level = match *meta.level() {
            Level::ERROR => log::Level::Error,
            Level::WARN => log::Level::Warn,
            Level::INFO => log::Level::Info,
            Level::DEBUG => log::Level::Debug,
            Level::TRACE => log::Level::Trace,
        };
        self.entry(level, meta.target(), meta.file(), meta.line())
    }
}

impl JournalWriter {
    fn entry(
        &self,
        level: log::Level,
        target: &str,
        file: Option<&str>,
        line: Option<u32>,
    ) -> Entry<'_> {
        Entry {
            log: &self.log,
            level,
            target: target.to_string(),
            file: file.map(str::to_string),
            line,
            buf: Vec::with_capacity(256),
        }
    }
}
