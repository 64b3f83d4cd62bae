//! One management API connection, served by a task of its own: Varlink
//! framing with bounded buffers, per-connection deadlines, and the checks
//! every call passes before it is dispatched.
//!
//! Varlink messages are JSON objects each ended by a NUL byte. What a client
//! can make the server hold is bounded:
//!
//! - a call is at most [`MAX_REQUEST`] bytes (JSON plus NUL). A longer one
//!   is read to its NUL without being kept (at most [`MAX_DISCARD`] bytes,
//!   else the connection is closed) and answered `io.l2tpd.RequestTooLarge`;
//! - a reply is at most [`MAX_REPLY`] bytes; a longer one is not sent, the
//!   error `io.l2tpd.ReplyTooLarge` is sent instead;
//! - a call must arrive whole within [`REQUEST_TIMEOUT`] of its first byte,
//!   and each reply must be written within [`REPLY_TIMEOUT`], or the
//!   connection is closed (a client that stalls mid-call or stops reading);
//! - string parameters are at most [`MAX_STRING`] bytes, names
//!   ([`NAME_PARAMS`]) at most [`MAX_NAME`] bytes.
//!
//! A connection handles its calls one after the other, in order; every
//! connection has its own task, so one that does not read its replies delays
//! no other.

use std::time::Duration;

use l2tp_api::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest call read, in bytes (64 KiB): its JSON text plus the NUL byte.
pub(crate) const MAX_REQUEST: usize = 64 * 1024;
/// The longest reply sent, in bytes (32 MiB): its JSON text plus the NUL byte.
pub(crate) const MAX_REPLY: usize = 32 * 1024 * 1024;
/// The most bytes of an over-long call read (and thrown away) while looking
/// for its end (16 MiB); past that the connection is closed.
pub(crate) const MAX_DISCARD: usize = 16 * 1024 * 1024;
/// The most time from the first byte of a call to its NUL byte: 10 s.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most time to write one reply (or one `Monitor` event) to the socket: 10 s.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest string parameter (or settings key), in bytes (UTF-8).
pub(crate) const MAX_STRING: usize = 4096;
/// The longest name parameter (see [`NAME_PARAMS`]), in bytes (UTF-8).
pub(crate) const MAX_NAME: usize = 255;
/// Top-level parameters that name a tunnel, session or profile.
pub(crate) const NAME_PARAMS: &[&str] = &["name", "tunnel", "session"];
/// Bytes read from the socket at a time (16 KiB).
pub(crate) const READ_CHUNK: usize = 16 * 1024;

/// What [`Framer::next`] found in the bytes read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole message, without its NUL byte.
    Message(Vec<u8>),
    /// A message longer than the limit, thrown away; its length with the NUL.
    TooLarge(usize),
}

/// The bytes read from a connection, cut into NUL-terminated messages,
/// never holding more than `cap` bytes.
#[derive(Debug)]
pub(crate) struct Framer {
    buf: Vec<u8>,
    /// `buf[..scanned]` holds no NUL.
    scanned: usize,
    cap: usize,
    /// Bytes of an over-long message thrown away so far, while its end is sought.
    discarding: Option<usize>,
    /// An over-long message ended: its length, reported by the next [`Framer::next`].
    dropped: Option<usize>,
}

/// More than [`MAX_DISCARD`] bytes of one over-long message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Endless;

impl Framer {
    /// A framer keeping at most `cap` bytes (the longest message plus its NUL).
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            buf: Vec::new(),
            scanned: 0,
            cap,
            discarding: None,
            dropped: None,
        }
    }

    /// The next whole message (or over-long one), if the bytes pushed hold one.
    pub(crate) fn next(&mut self) -> Option<Frame> {
        if let Some(n) = self.dropped.take() {
            return Some(Frame::TooLarge(n));
        }
        if self.discarding.is_some() {
            return None;
        }
        match self.buf[self.scanned..].iter().position(|b| *b == 0) {
            Some(i) => {
                let end = self.scanned + i;
                let msg = self.buf[..end].to_vec();
                self.buf.drain(..=end);
                self.scanned = 0;
                Some(Frame::Message(msg))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() >= self.cap {
                    self.discarding = Some(self.buf.len());
                    self.buf = Vec::new();
                    self.scanned = 0;
                }
                None
            }
        }
    }

    /// How many bytes the next read may bring (call [`Framer::next`] until
    /// it returns `None` first): never enough to hold more than the cap.
    pub(crate) fn room(&self) -> usize {
        if self.discarding.is_some() {
            READ_CHUNK
        } else {
            self.cap.saturating_sub(self.buf.len()).min(READ_CHUNK)
        }
    }

    /// Add bytes read (at most [`Framer::room`]).
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<(), Endless> {
        let Some(n) = self.discarding else {
            self.buf.extend_from_slice(data);
            return Ok(());
        };
        match data.iter().position(|b| *b == 0) {
            Some(i) => {
                self.discarding = None;
                self.dropped = Some(n + i + 1);
                self.buf.extend_from_slice(&data[i + 1..]);
                Ok(())
            }
            None if n + data.len() > MAX_DISCARD => Err(Endless),
            None => {
                self.discarding = Some(n + data.len());
                Ok(())
            }
        }
    }

    /// Whether part of a message was read and its end not yet.
    pub(crate) fn is_partial(&self) -> bool {
        !self.buf.is_empty() || self.discarding.is_some()
    }

    /// Bytes held.
    pub(crate) fn held(&self) -> usize {
        self.buf.len()
    }
}

/// A Varlink method call.
#[derive(Debug, Deserialize)]
pub(crate) struct CallMsg {
    /// `interface.Method`.
    pub method: String,
    /// The parameters (an object), if any.
    #[serde(default)]
    pub parameters: Option<Value>,
    /// No reply wanted.
    #[serde(default)]
    pub oneway: bool,
    /// More than one reply wanted (`Monitor`).
    #[serde(default)]
    pub more: bool,
    /// A protocol upgrade asked for (not offered).
    #[serde(default)]
    pub upgrade: bool,
}

/// Why a message is not a call, without quoting it (it may hold a secret).
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "not a Varlink call object",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{what} (line {} column {})", e.line(), e.column())
}

/// A `Vec` that refuses to grow past a limit.
struct Capped {
    buf: Vec<u8>,
    cap: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.cap {
            return Err(std::io::Error::other("reply too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `msg` as JSON plus the NUL byte, if that is at most `cap` bytes; the
/// serialization stops as soon as it would be longer (nothing larger is
/// ever allocated).
pub(crate) fn encode_capped<T: Serialize>(msg: &T, cap: usize) -> Option<Vec<u8>> {
    let mut w = Capped {
        buf: Vec::new(),
        cap: cap.saturating_sub(1),
    };
    serde_json::to_writer(&mut w, msg).ok()?;
    w.buf.push(0);
    Some(w.buf)
}

/// A successful reply.
#[derive(Serialize)]
struct ReplyMsg<'a> {
    parameters: &'a Value,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    continues: bool,
}

/// A reply (`continues` for each `Monitor` reply but the last) as bytes to
/// send: `io.l2tpd.ReplyTooLarge` in its place when longer than `cap`.
pub(crate) fn encode_reply(parameters: &Value, continues: bool, cap: usize) -> Vec<u8> {
    encode_capped(
        &ReplyMsg {
            parameters,
            continues,
        },
        cap,
    )
    .unwrap_or_else(|| encode_error(&reply_too_large(cap)))
}

/// An error reply as bytes to send.
pub(crate) fn encode_error(e: &ApiError) -> Vec<u8> {
    // Error replies are small: their strings are bounded by the parameter
    // checks, and a `ConfigInvalid` lists configuration errors.
    encode_capped(e, MAX_REPLY).unwrap_or_else(|| {
        encode_capped(&reply_too_large(MAX_REPLY), MAX_REPLY).unwrap_or_default()
    })
}

fn reply_too_large(cap: usize) -> ApiError {
    ApiError::ReplyTooLarge {
        limit: cap as u64,
        description: format!(
            "the reply would be longer than {cap} bytes; ask for less (e.g. the sessions \
             of one tunnel)"
        ),
    }
}

/// The error for a call of `len` bytes (or more).
pub(crate) fn request_too_large(len: usize) -> ApiError {
    ApiError::RequestTooLarge {
        limit: MAX_REQUEST as u64,
        description: format!(
            "the call was {len} bytes long; l2tpd reads calls of at most {MAX_REQUEST} bytes"
        ),
    }
}

/// Check the sizes of a call's parameters: every string (and object key) at
/// most [`MAX_STRING`] bytes, the top-level names of [`NAME_PARAMS`] at most
/// [`MAX_NAME`]. The error names the parameter as a dotted path.
pub(crate) fn check_params(params: &Value) -> Result<(), ApiError> {
    if let Value::Object(o) = params {
        for name in NAME_PARAMS {
            if let Some(Value::String(s)) = o.get(*name)
                && s.len() > MAX_NAME
            {
                return Err(ApiError::invalid(
                    *name,
                    format!("{} bytes long: names are at most {MAX_NAME} bytes", s.len()),
                ));
            }
        }
    }
    check_strings(params, &mut String::from("parameters"))
}

fn check_strings(v: &Value, path: &mut String) -> Result<(), ApiError> {
    let too_long = |path: &str, len: usize| {
        ApiError::invalid(
            path.strip_prefix("parameters.").unwrap_or(path),
            format!("{len} bytes long: strings are at most {MAX_STRING} bytes"),
        )
    };
    match v {
        Value::String(s) if s.len() > MAX_STRING => Err(too_long(path, s.len())),
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_strings(v, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(o) => {
            for (k, v) in o {
                if k.len() > MAX_STRING {
                    return Err(too_long(path, k.len()));
                }
                let len = path.len();
                path.push('.');
                path.push_str(k);
                check_strings(v, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `s` with its control characters (newlines, escape sequences) escaped
/// (`\n`, `\u{1b}`), for a log line: API errors quote names the client chose.
pub(crate) fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Keys whose values are secrets, wherever they appear in parameters.
pub(crate) const SECRET_KEYS: &[&str] = &["secret", "user_password", "password"];

/// A copy of `v` with every value under a [`SECRET_KEYS`] key replaced by
/// `"<redacted>"`, for logs.
pub(crate) fn redacted(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = if SECRET_KEYS.contains(&k.as_str()) {
                        Value::String("<redacted>".into())
                    } else {
                        redacted(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(f: &mut Framer) -> Vec<Frame> {
        std::iter::from_fn(|| f.next()).collect()
    }

    #[test]
    fn framer_cuts_messages_at_nul() {
        let mut f = Framer::new(64);
        f.push(b"{\"a\":1}\0{\"b\"").unwrap();
        assert_eq!(drain(&mut f), vec![Frame::Message(b"{\"a\":1}".to_vec())]);
        assert!(f.is_partial());
        f.push(b":2}\0").unwrap();
        assert_eq!(drain(&mut f), vec![Frame::Message(b"{\"b\":2}".to_vec())]);
        assert!(!f.is_partial());
    }

    #[test]
    fn framer_never_holds_more_than_its_cap_and_drops_long_messages() {
        let mut f = Framer::new(16);
        let mut long = vec![b'x'; 100];
        long.push(0);
        long.extend_from_slice(b"ok\0");
        let mut frames = Vec::new();
        let mut rest = &long[..];
        while !rest.is_empty() {
            frames.extend(drain(&mut f));
            let n = f.room().min(rest.len());
            assert!(n > 0);
            f.push(&rest[..n]).unwrap();
            assert!(f.held() <= 16, "{}", f.held());
            rest = &rest[n..];
        }
        frames.extend(drain(&mut f));
        assert_eq!(
            frames,
            vec![Frame::TooLarge(101), Frame::Message(b"ok".to_vec())]
        );
    }

    #[test]
    fn framer_gives_up_on_an_endless_message() {
        let mut f = Framer::new(16);
        f.push(&[b'x'; 16]).unwrap();
        assert_eq!(f.next(), None);
        let chunk = vec![b'y'; READ_CHUNK];
        let mut result = Ok(());
        for _ in 0..=(MAX_DISCARD / READ_CHUNK) + 1 {
            result = f.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(Endless));
    }

    #[test]
    fn replies_are_capped_without_building_the_whole_text() {
        let v = serde_json::json!({"s": "x".repeat(1000)});
        let ok = encode_reply(&v, false, 2000);
        assert_eq!(ok.last(), Some(&0));
        let back: Value = serde_json::from_slice(&ok[..ok.len() - 1]).unwrap();
        assert_eq!(back["parameters"], v);
        assert!(back.get("continues").is_none());
        let err = encode_reply(&v, true, 100);
        let back: Value = serde_json::from_slice(&err[..err.len() - 1]).unwrap();
        assert_eq!(back["error"], "io.l2tpd.ReplyTooLarge");
        assert_eq!(back["parameters"]["limit"], 100);
    }

    #[test]
    fn long_strings_and_names_are_refused_naming_the_parameter() {
        let ok = serde_json::json!({"name": "n".repeat(MAX_NAME), "settings": {"a": "x"}});
        assert!(check_params(&ok).is_ok());
        let long_name = serde_json::json!({"name": "n".repeat(MAX_NAME + 1)});
        match check_params(&long_name) {
            Err(ApiError::InvalidParameter { parameter, .. }) => assert_eq!(parameter, "name"),
            other => panic!("{other:?}"),
        }
        let deep = serde_json::json!({"settings": {"ppp": ["a", "x".repeat(MAX_STRING + 1)]}});
        match check_params(&deep) {
            Err(ApiError::InvalidParameter { parameter, .. }) => {
                assert_eq!(parameter, "settings.ppp[1]")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn control_characters_are_escaped_for_logs() {
        assert_eq!(printable("no tunnel `a`"), "no tunnel `a`");
        assert_eq!(printable("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
    }

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let v = serde_json::json!({"name": "t", "secret": "s3", "settings":
            {"secret": "s1", "ppp": {"user_password": "s2"}}, "list": [{"password": "s4"}]});
        let text = redacted(&v).to_string();
        for s in ["s1", "s2", "s3", "s4"] {
            assert!(!text.contains(&format!("\"{s}\"")), "{text}");
        }
        assert!(text.contains("\"name\":\"t\""), "{text}");
    }
}
