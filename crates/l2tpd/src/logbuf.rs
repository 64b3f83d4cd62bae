//! Log lines to stderr, gathered per turn of the daemon loop.
//!
//! Writing each formatted event to stderr costs a `write(2)` per line; at
//! tens of thousands of `session up` lines a second that was a tenth of the
//! daemon's CPU time. While a [`Batch`] is alive on a thread, the events
//! that thread logs are appended to a buffer of that thread instead, written
//! out with one `write(2)` when the batch ends (or when the buffer passes
//! [`FLUSH_AT`] bytes). The daemon loop holds a batch for one turn: the
//! lines of a turn appear together when the turn ends, a few milliseconds at
//! most after their event; the lines themselves are unchanged. Other
//! threads, and the loop thread between turns, write each line at once.

use std::cell::RefCell;
use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Buffered bytes (64 KiB) past which a batch writes out what it holds.
const FLUSH_AT: usize = 64 * 1024;

thread_local! {
    /// The open batch's buffer of this thread, if one is open.
    static BUFFER: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// The `MakeWriter` of the stderr log layer: per event, a [`LineWriter`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter
    }
}

/// Writes one formatted event: into this thread's open batch, else to stderr.
#[derive(Debug)]
pub(crate) struct LineWriter;

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match append(buf) {
            Some(true) => flush_buffer(),
            Some(false) => Ok(()),
            None => io::stderr().lock().write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Append `buf` to this thread's open batch: whether the batch has reached
/// [`FLUSH_AT`] bytes; `None` when no batch is open.
fn append(buf: &[u8]) -> Option<bool> {
    BUFFER.with_borrow_mut(|b| {
        b.as_mut().map(|b| {
            b.extend_from_slice(buf);
            b.len() >= FLUSH_AT
        })
    })
}

/// Write out this thread's batch buffer (kept open).
fn flush_buffer() -> io::Result<()> {
    let bytes = BUFFER.with_borrow_mut(|b| b.as_mut().map(std::mem::take));
    match bytes {
        Some(bytes) if !bytes.is_empty() => {
            let r = io::stderr().lock().write_all(&bytes);
            // Give the (emptied) allocation back for the next lines.
            BUFFER.with_borrow_mut(|b| {
                if let Some(b) = b {
                    let mut bytes = bytes;
                    bytes.clear();
                    *b = bytes;
                }
            });
            r
        }
        _ => Ok(()),
    }
}

/// While alive, this thread's log lines are gathered; dropped, they are
/// written out with one `write(2)`. Batches do not nest: a second one on
/// the same thread flushes and ends with the first.
#[derive(Debug)]
pub(crate) struct Batch(());

impl Batch {
    /// Open a batch on this thread.
    pub(crate) fn begin() -> Self {
        BUFFER.with_borrow_mut(|b| {
            if b.is_none() {
                *b = Some(Vec::new());
            }
        });
        Self(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let _ = flush_buffer();
        BUFFER.with_borrow_mut(|b| *b = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffered() -> Option<Vec<u8>> {
        BUFFER.with_borrow(Clone::clone)
    }

    #[test]
    fn lines_are_gathered_while_a_batch_is_open() {
        assert_eq!(buffered(), None);
        let batch = Batch::begin();
        LineWriter.write_all(b"one\n").unwrap();
        LineWriter.write_all(b"two\n").unwrap();
        assert_eq!(buffered().as_deref(), Some(&b"one\ntwo\n"[..]));
        // Not on the test's stderr.
        BUFFER.with_borrow_mut(|b| *b = Some(Vec::new()));
        drop(batch);
        assert_eq!(buffered(), None);
    }

    #[test]
    fn a_batch_is_full_at_flush_at_bytes() {
        assert_eq!(append(b"no batch\n"), None);
        let batch = Batch::begin();
        let line = [b'x'; 1024];
        for _ in 1..FLUSH_AT / line.len() {
            assert_eq!(append(&line), Some(false));
        }
        // The line that reaches FLUSH_AT asks for the batch to be written out.
        assert_eq!(append(&line), Some(true));
        // Dropped without writing anything: what a failed test would print.
        BUFFER.with_borrow_mut(|b| *b = Some(Vec::new()));
        drop(batch);
        assert_eq!(buffered(), None);
    }
}
