//! Strings a peer sent us (Host Name, Vendor Name, Calling / Called Number,
//! Sub-Address, the error message of a Result Code, Q.931 advisory
//! messages…), made safe to print.
//!
//! A hostile peer controls these octets entirely: newlines that forge log
//! lines, ANSI / OSC escape sequences that rewrite an operator's terminal,
//! NUL, invalid UTF-8, Unicode direction overrides, and up to 1,017 octets
//! per AVP (RFC 2661 §4.1: a 10-bit AVP length less the 6-octet header).
//! [`PeerText`] keeps the raw octets for protocol use (matching a peer
//! profile by host name, echoing a value) and its `Display` / `Debug` print
//! an escaped, bounded form: see [`escape_peer_bytes`].

use std::fmt;

/// At most this many characters of escaped output are printed for one peer
/// string; longer ones end with the [cut marker](escape_peer_bytes).
pub const PEER_TEXT_DISPLAY_MAX: usize = 256;

/// Octets of a peer-supplied string, kept as received. `Display` writes the
/// escaped, length-bounded form of [`escape_peer_bytes`]; `Debug` writes the
/// same inside double quotes (with `"` escaped), so neither ever puts a raw
/// control character, escape sequence or newline into a log line or a
/// terminal.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct PeerText(Vec<u8>);

impl PeerText {
    /// Wrap octets received from a peer.
    pub fn new(raw: impl Into<Vec<u8>>) -> Self {
        Self(raw.into())
    }

    /// The octets as received (for protocol use only, never for printing).
    pub fn raw(&self) -> &[u8] {
        &self.0
    }

    /// The escaped, bounded form (as `Display` writes it).
    pub fn escaped(&self) -> String {
        escape_peer_bytes(&self.0)
    }

    /// Length of the raw value, in octets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&[u8]> for PeerText {
    fn from(v: &[u8]) -> Self {
        Self(v.to_vec())
    }
}

impl From<Vec<u8>> for PeerText {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl fmt::Display for PeerText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_peer_bytes(&self.0))
    }
}

impl fmt::Debug for PeerText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", escape_peer_bytes(&self.0).replace('"', "\\\""))
    }
}

/// True for characters that are printed as an escape: C0 and C1 controls,
/// DEL, and the invisible format characters that reorder or hide text
/// (zero-width spaces and joiners, bidirectional embeddings, overrides and
/// isolates, the byte-order mark, interlinear annotation, tag characters).
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

/// The escape of one character, or `None` to print it as it is.
fn escape_char(c: char, out: &mut String) -> bool {
    use std::fmt::Write;
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        c if (c as u32) < 0x80 && needs_escape(c) => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        _ => return false,
    }
    true
}

/// Escape octets a peer sent so that they print on one line with no control
/// effect, and bound their length.
///
/// - Printable UTF-8 (other than `\`) is kept as it is.
/// - `\` becomes `\\`; newline, carriage return, tab and NUL become `\n`,
///   `\r`, `\t`, `\0`; other ASCII controls and DEL (ESC of ANSI / OSC
///   sequences included) become `\xNN`.
/// - Non-ASCII controls (C1, U+0080–U+009F) and invisible format characters
///   (bidirectional overrides, zero-width characters, byte-order mark…)
///   become `\u{NNNN}`.
/// - Octets that are not valid UTF-8 become `\xNN` each.
///
/// The output is at most [`PEER_TEXT_DISPLAY_MAX`] characters plus, when the
/// input did not fit, the marker `…[N octets]`, where N is the input's full
/// length in octets. An escape is never split.
pub fn escape_peer_bytes(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len().min(PEER_TEXT_DISPLAY_MAX) + 2);
    // Characters in `out` (escapes are ASCII, kept text may be wider).
    let mut chars = 0usize;
    let mut piece = String::new();
    let mut rest = raw;
    let mut cut = false;
    'outer: while !rest.is_empty() {
        let (valid, invalid) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (ok, bad) = rest.split_at(e.valid_up_to());
                // `ok` is valid UTF-8 by `valid_up_to`.
                let s = std::str::from_utf8(ok).unwrap_or_default();
                let bad_len = e.error_len().unwrap_or(bad.len());
                (s, &bad[..bad_len])
            }
        };
        for c in valid.chars() {
            piece.clear();
            if !escape_char(c, &mut piece) {
                piece.push(c);
            }
            let n = piece.chars().count();
            if chars + n > PEER_TEXT_DISPLAY_MAX {
                cut = true;
                break 'outer;
            }
            out.push_str(&piece);
            chars += n;
        }
        for b in invalid {
            if chars + 4 > PEER_TEXT_DISPLAY_MAX {
                cut = true;
                break 'outer;
            }
            use std::fmt::Write;
            let _ = write!(out, "\\x{b:02x}");
            chars += 4;
        }
        rest = &rest[valid.len() + invalid.len()..];
    }
    if cut {
        use std::fmt::Write;
        let _ = write!(out, "…[{} octets]", raw.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No character that has a control effect on a terminal or a log line.
    fn assert_inert(s: &str) {
        for c in s.chars() {
            assert!(!needs_escape(c), "raw {c:?} in {s:?}");
        }
    }

    #[test]
    fn printable_text_is_kept() {
        assert_eq!(escape_peer_bytes(b"lns-1.example"), "lns-1.example");
        assert_eq!(escape_peer_bytes("Zürich ök €".as_bytes()), "Zürich ök €");
        assert_eq!(escape_peer_bytes(b""), "");
        assert_eq!(escape_peer_bytes(b"a \"q\" b"), "a \"q\" b");
    }

    #[test]
    fn newlines_and_ascii_controls_are_escaped() {
        let s = escape_peer_bytes(b"evil\nINFO forged line\r\n\tx\0y\x07\x7f");
        assert_eq!(s, "evil\\nINFO forged line\\r\\n\\tx\\0y\\x07\\x7f");
        assert_inert(&s);
        assert!(!s.contains('\n'));
    }

    #[test]
    fn ansi_and_osc_sequences_are_escaped() {
        let csi = escape_peer_bytes(b"\x1b[31mred\x1b[0m");
        assert_eq!(csi, "\\x1b[31mred\\x1b[0m");
        let osc = escape_peer_bytes(b"\x1b]0;pwned\x07\x1b]8;;http://x\x1b\\link");
        assert_eq!(osc, "\\x1b]0;pwned\\x07\\x1b]8;;http://x\\x1b\\\\link");
        assert_inert(&csi);
        assert_inert(&osc);
        assert!(!osc.contains('\x1b'));
    }

    #[test]
    fn c1_controls_and_format_characters_are_escaped() {
        // U+009B is the one-character CSI; U+202E reverses the text after it.
        let s = escape_peer_bytes("a\u{9b}31m\u{85}b\u{202e}cba\u{200b}\u{feff}".as_bytes());
        assert_eq!(s, "a\\u{9b}31m\\u{85}b\\u{202e}cba\\u{200b}\\u{feff}");
        assert_inert(&s);
    }

    #[test]
    fn backslash_is_escaped_so_escapes_are_unambiguous() {
        assert_eq!(escape_peer_bytes(b"a\\nb"), "a\\\\nb");
        assert_ne!(escape_peer_bytes(b"a\\nb"), escape_peer_bytes(b"a\nb"));
    }

    #[test]
    fn invalid_utf8_is_shown_octet_by_octet() {
        assert_eq!(escape_peer_bytes(b"ok\xff\xfe!"), "ok\\xff\\xfe!");
        // A truncated multi-octet sequence at the end, and an overlong one.
        assert_eq!(escape_peer_bytes(b"x\xe2\x82"), "x\\xe2\\x82");
        assert_eq!(escape_peer_bytes(b"\xc0\xafz"), "\\xc0\\xafz");
        // A surrogate encoded in UTF-8 is invalid too.
        assert_eq!(escape_peer_bytes(b"\xed\xa0\x80"), "\\xed\\xa0\\x80");
    }

    #[test]
    fn long_values_are_cut_with_a_marker() {
        let raw = vec![b'a'; 1017];
        let s = escape_peer_bytes(&raw);
        assert!(s.starts_with(&"a".repeat(PEER_TEXT_DISPLAY_MAX)));
        assert!(s.ends_with("…[1017 octets]"), "{s}");
        assert_eq!(
            s.chars().count(),
            PEER_TEXT_DISPLAY_MAX + "…[1017 octets]".chars().count()
        );
        // Exactly the cap: no marker.
        let fits = vec![b'b'; PEER_TEXT_DISPLAY_MAX];
        assert_eq!(escape_peer_bytes(&fits), "b".repeat(PEER_TEXT_DISPLAY_MAX));
    }

    #[test]
    fn an_escape_is_never_split_by_the_cut() {
        let mut raw = vec![b'a'; PEER_TEXT_DISPLAY_MAX - 2];
        raw.extend_from_slice(b"\x1b\x1b");
        let s = escape_peer_bytes(&raw);
        let body = s.strip_suffix(&format!("…[{} octets]", raw.len())).unwrap();
        assert_eq!(body, "a".repeat(PEER_TEXT_DISPLAY_MAX - 2));
        let mut raw = vec![b'a'; PEER_TEXT_DISPLAY_MAX - 3];
        raw.push(0xff);
        let s = escape_peer_bytes(&raw);
        assert!(s.ends_with("…[254 octets]"), "{s}");
        assert!(!s.contains("\\xf"));
    }

    #[test]
    fn every_byte_value_comes_out_inert_and_on_one_line() {
        let raw: Vec<u8> = (0..=255u8).collect();
        let s = escape_peer_bytes(&raw);
        assert_inert(&s);
        let long: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
        assert_inert(&escape_peer_bytes(&long));
    }

    #[test]
    fn peer_text_keeps_raw_octets_and_prints_escaped() {
        let t = PeerText::new(&b"host\n\x1b[2J"[..]);
        assert_eq!(t.raw(), b"host\n\x1b[2J");
        assert_eq!(t.to_string(), "host\\n\\x1b[2J");
        assert_eq!(format!("{t:?}"), "\"host\\n\\x1b[2J\"");
        assert_eq!(format!("{:?}", PeerText::new(&b"a\"b"[..])), "\"a\\\"b\"");
        assert_eq!(t.len(), 9);
        assert!(!t.is_empty());
    }
}
