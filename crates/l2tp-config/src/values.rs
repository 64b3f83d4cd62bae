//! Value types used by configuration keys: durations, secrets, address
//! ranges and prefixes, capability sets and the small enums.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Unexpected, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------

/// A duration as written in the configuration file.
///
/// Accepted forms: a string of one or more `<integer><unit>` groups with the
/// units `ms`, `s`, `m` (or `min`) and `h` (`"500ms"`, `"2s"`, `"1m30s"`,
/// `"1h 5m"`), the string `"0"`, or a bare non-negative integer meaning
/// **seconds** (the OpenL2TP unit: `hello_timeout = 60`).
///
/// The resolved parameter structs hold a plain [`std::time::Duration`]; this
/// wrapper only exists for (de)serialization.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigDuration(pub Duration);

impl From<ConfigDuration> for Duration {
    fn from(d: ConfigDuration) -> Self {
        d.0
    }
}

impl From<Duration> for ConfigDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

/// Longest `host_name` accepted, in octets. The Host Name AVP (RFC 2661
/// §4.4.3) could carry up to 1,017 octets (a 10-bit AVP length less the
/// 6-octet header), but RFC 1035 bounds a domain name at 255 octets and
/// peers print and store host names; 255 is the sane cap.
pub(crate) const HOST_NAME_MAX: usize = 255;

/// Checks a `host_name`: 1 to [`HOST_NAME_MAX`] octets of printable ASCII
/// (0x21–0x7e; no spaces, controls or non-ASCII, since peers print it and
/// match it octet by octet, case-insensitively). The error says what is wrong.
pub(crate) fn validate_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("host_name must not be empty".into());
    }
    if name.len() > HOST_NAME_MAX {
        return Err(format!(
            "host_name is {} octets long; at most {HOST_NAME_MAX} are allowed",
            name.len()
        ));
    }
    if let Some((i, c)) = name.char_indices().find(|(_, c)| !c.is_ascii_graphic()) {
        return Err(format!(
            "host_name must be printable ASCII without spaces; found {} at octet {}",
            c.escape_default(),
            i + 1
        ));
    }
    Ok(())
}

/// Parses a duration string (see [`ConfigDuration`] for the syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. \"500ms\", \"2s\", \"1m\"".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total = Duration::ZERO;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!(
                "invalid duration {text:?}: expected a number, e.g. \"500ms\", \"2s\", \"1m\""
            ));
        }
        let number: u64 = s[start..i]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let part = match unit {
            "ms" => Some(Duration::from_millis(number)),
            "s" | "sec" | "secs" => Some(Duration::from_secs(number)),
            "m" | "min" | "mins" => number.checked_mul(60).map(Duration::from_secs),
            "h" | "hr" | "hrs" => number.checked_mul(3600).map(Duration::from_secs),
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit (ms, s, m, h); \
                     a bare integer without quotes means seconds"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit `{other}` (use ms, s, m, h)"
                ));
            }
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
    }
    Ok(total)
}

/// Formats a duration the way the configuration accepts it back:
/// whole seconds as `"Ns"`, otherwise `"Nms"` (sub-millisecond parts are
/// not representable in the file and are truncated).
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"500ms\", \"2s\", \"1m\" or an integer (seconds)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ConfigDuration(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(|v| ConfigDuration(Duration::from_secs(v)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_duration(v).map(ConfigDuration).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

/// A shared secret or password. Its `Debug` output and its serialized form
/// (the effective-configuration dump) are `<redacted>`; call
/// [`Secret::expose`] where the real value is needed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// The text that replaces a secret in dumps and debug output.
    pub const REDACTED: &'static str = "<redacted>";

    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Do not log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret as bytes (the L2TP challenge/response and hidden-AVP
    /// computations use the octets of the configured string).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(Self::REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Wrong-typed values are rejected without echoing them: a secret
        // written as a bare number must not end up in an error message.
        struct V;
        impl Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(E::custom("a secret must be a quoted string"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(E::custom("a secret must be a quoted string"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Err(E::custom("a secret must be a quoted string"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Err(E::custom("a secret must be a quoted string"))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// IPv4 address pool
// ---------------------------------------------------------------------------

/// An inclusive range of IPv4 addresses an LNS hands out to peers
/// (`ip_pool = "198.51.100.10-198.51.100.20"`; a single address is a pool
/// of one). IPv4 only: IPCP assigns IPv4 addresses.
///
/// Allocation (which addresses are in use) is the daemon's business; this
/// type only describes the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPool {
    start: Ipv4Addr,
    end: Ipv4Addr,
}

impl IpPool {
    /// A pool from `start` to `end` inclusive; `start` must not be above `end`.
    pub fn new(start: Ipv4Addr, end: Ipv4Addr) -> Result<Self, String> {
        if start > end {
            return Err(format!(
                "ip_pool start {start} is above its end {end} (write start-end)"
            ));
        }
        Ok(Self { start, end })
    }

    /// First address of the pool.
    pub fn start(&self) -> Ipv4Addr {
        self.start
    }

    /// Last address of the pool (inclusive).
    pub fn end(&self) -> Ipv4Addr {
        self.end
    }

    /// Number of addresses in the pool (at least 1).
    pub fn size(&self) -> u64 {
        u64::from(u32::from(self.end)) - u64::from(u32::from(self.start)) + 1
    }

    /// Whether `addr` lies in the pool. IPv4-mapped IPv6 addresses count as
    /// their IPv4 address; other IPv6 addresses are never contained.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr.to_canonical() {
            IpAddr::V4(a) => self.start <= a && a <= self.end,
            IpAddr::V6(_) => false,
        }
    }

    /// The pool's addresses in ascending order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Ipv4Addr> + use<> {
        (u32::from(self.start)..=u32::from(self.end)).map(Ipv4Addr::from)
    }
}

impl fmt::Display for IpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl FromStr for IpPool {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (s.trim(), s.trim()),
        };
        let parse = |t: &str| -> Result<Ipv4Addr, String> {
            match t.parse::<IpAddr>() {
                Ok(IpAddr::V4(v4)) => Ok(v4),
                Ok(IpAddr::V6(_)) => Err(format!(
                    "ip_pool {s:?}: {t} is IPv6; pools are IPv4 ranges (IPCP assigns IPv4)"
                )),
                Err(_) => Err(format!(
                    "ip_pool {s:?}: {t:?} is not an IPv4 address (write start-end, \
                     e.g. \"198.51.100.10-198.51.100.20\")"
                )),
            }
        };
        Self::new(parse(a)?, parse(b)?)
    }
}

impl<'de> Deserialize<'de> for IpPool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for IpPool {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ---------------------------------------------------------------------------
// IP prefix
// ---------------------------------------------------------------------------

/// An IPv4 or IPv6 prefix (`"192.0.2.0/24"`, `"2001:db8::/32"`) or a single
/// address (a /32 or /128). Host bits below the prefix length are cleared
/// (`"192.0.2.7/24"` is `192.0.2.0/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// The prefix of `len` bits of `addr`; `len` is at most 32 (IPv4) or
    /// 128 (IPv6). IPv4-mapped IPv6 addresses are taken as IPv4.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, String> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(format!("prefix length {len} is above {max}"));
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len))
                };
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(len))
                };
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Ok(Self { addr, len })
    }

    /// The network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True for a zero-length prefix (`0.0.0.0/0` or `::/0`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `addr` is inside the prefix. IPv4-mapped IPv6 addresses
    /// (`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4 peers) match
    /// IPv4 prefixes.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr.to_canonical()) {
            (IpAddr::V4(_), a @ IpAddr::V4(_)) | (IpAddr::V6(_), a @ IpAddr::V6(_)) => {
                Self::new(a, self.len).is_ok_and(|p| p.addr == self.addr)
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IP address or prefix (e.g. \"192.0.2.0/24\")");
        let (a, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let len = len.unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
        Self::new(addr, len).map_err(|e| format!("{s:?}: {e}"))
    }
}

impl<'de> Deserialize<'de> for IpPrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for IpPrefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ---------------------------------------------------------------------------
// Capability sets
// ---------------------------------------------------------------------------

macro_rules! cap_set {
    ($(#[$m:meta])* $name:ident, $what:literal, $a:ident = $as:literal, $b:ident = $bs:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name {
            #[doc = concat!("`\"", $as, "\"` is in the set.")]
            pub $a: bool,
            #[doc = concat!("`\"", $bs, "\"` is in the set.")]
            pub $b: bool,
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $a: true, $b: true }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, concat!("a list of ", $what, ": [\"", $as, "\", \"", $bs, "\"]"))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<$name, A::Error> {
                        let mut set = $name { $a: false, $b: false };
                        while let Some(item) = seq.next_element::<String>()? {
                            match item.as_str() {
                                $as => set.$a = true,
                                $bs => set.$b = true,
                                other => {
                                    return Err(de::Error::invalid_value(
                                        Unexpected::Str(other),
                                        &concat!("\"", $as, "\" or \"", $bs, "\""),
                                    ))
                                }
                            }
                        }
                        Ok(set)
                    }
                }
                d.deserialize_seq(V)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(None)?;
                if self.$a {
                    seq.serialize_element($as)?;
                }
                if self.$b {
                    seq.serialize_element($bs)?;
                }
                seq.end()
            }
        }
    };
}

cap_set!(
    /// Framing Capabilities we advertise (`framing_caps = ["sync", "async"]`).
    FramingCaps, "framing types", sync = "sync", async_ = "async"
);
cap_set!(
    /// Bearer Capabilities we advertise (`bearer_caps = ["digital", "analog"]`).
    BearerCaps, "bearer types", digital = "digital", analog = "analog"
);

// ---------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------

/// Which kernel data plane the daemon programs (`system.data_plane`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataPlaneKind {
    /// The genetlink `l2tp` family (L2TP_CMD_TUNNEL_CREATE ...), the default.
    #[default]
    Netlink,
    /// PPPoL2TP sockets only (pre-netlink kernels).
    Legacy,
    /// No kernel programming and no pppd: control plane only (tests).
    Null,
}

/// Tunnel authentication (`auth_mode`, OpenL2TP names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No tunnel authentication.
    #[default]
    None,
    /// Check only the peer's Host Name.
    Simple,
    /// RFC 2661 §5.1.1 Challenge / Challenge Response with the tunnel secret.
    Challenge,
}

/// Framing Type a session requests or accepts (`framing_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FramingType {
    /// Synchronous framing.
    Sync,
    /// Asynchronous framing.
    Async,
    /// Either.
    #[default]
    Any,
}

/// Bearer Type a session requests or accepts (`bearer_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BearerType {
    /// Digital bearer.
    Digital,
    /// Analog bearer.
    Analog,
    /// Either.
    #[default]
    Any,
}

/// Roles we take with a peer (`lac_lns`, OpenL2TP `we_can_be_lac` /
/// `we_can_be_lns`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LacLns {
    /// We act only as LAC towards this peer.
    Lac,
    /// We act only as LNS towards this peer.
    Lns,
    /// Both roles (default).
    #[default]
    LacLns,
}

impl LacLns {
    /// We may act as LAC (place incoming calls / answer OCRQ).
    pub fn can_be_lac(self) -> bool {
        matches!(self, Self::Lac | Self::LacLns)
    }

    /// We may act as LNS (accept ICRQ / place OCRQ).
    pub fn can_be_lns(self) -> bool {
        matches!(self, Self::Lns | Self::LacLns)
    }
}

/// The kind of a configured session (`session_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionType {
    /// We are the LAC and place an incoming call (ICRQ). The default.
    #[default]
    LacIncoming,
    /// We are the LAC; an outgoing call the LNS asked for (OCRQ answered).
    LacOutgoing,
    /// We are the LNS for an incoming call.
    LnsIncoming,
    /// We are the LNS and ask the LAC to place an outgoing call (OCRQ).
    LnsOutgoing,
}

impl SessionType {
    /// True for the LNS side (`lns_incoming`, `lns_outgoing`); selects the
    /// `lns` argument of [`crate::PppParams::pppd_args`].
    pub fn is_lns(self) -> bool {
        matches!(self, Self::LnsIncoming | Self::LnsOutgoing)
    }
}

/// `as_str` (the configuration spelling) and `Display` for the enums.
macro_rules! enum_names {
    ($($ty:ident { $($variant:ident => $name:literal),* $(,)? })*) => {
        $(
            impl $ty {
                /// The value as written in the configuration file.
                pub fn as_str(self) -> &'static str {
                    match self {
                        $($ty::$variant => $name,)*
                    }
                }
            }

            impl fmt::Display for $ty {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str(self.as_str())
                }
            }
        )*
    };
}

enum_names! {
    DataPlaneKind { Netlink => "netlink", Legacy => "legacy", Null => "null" }
    AuthMode { None => "none", Simple => "simple", Challenge => "challenge" }
    FramingType { Sync => "sync", Async => "async", Any => "any" }
    BearerType { Digital => "digital", Analog => "analog", Any => "any" }
    LacLns { Lac => "lac", Lns => "lns", LacLns => "lac_lns" }
    SessionType {
        LacIncoming => "lac_incoming",
        LacOutgoing => "lac_outgoing",
        LnsIncoming => "lns_incoming",
        LnsOutgoing => "lns_outgoing",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h 5m"), Ok(Duration::from_secs(3900)));
        assert_eq!(parse_duration("10 s"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("1 5m").is_err());
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(60)), "60s");
    }

    #[test]
    fn enum_names_match_serde() {
        for v in [SessionType::LacIncoming, SessionType::LnsOutgoing] {
            let via_serde = toml::Value::try_from(v).unwrap();
            assert_eq!(via_serde.as_str(), Some(v.as_str()));
        }
        assert_eq!(DataPlaneKind::Null.to_string(), "null");
        assert_eq!(LacLns::LacLns.to_string(), "lac_lns");
    }

    #[test]
    fn pool() {
        let p: IpPool = "10.0.0.250-10.0.1.2".parse().unwrap();
        assert_eq!(p.size(), 9);
        assert!(p.contains("10.0.1.0".parse().unwrap()));
        assert!(p.contains("::ffff:10.0.1.0".parse().unwrap()));
        assert!(!p.contains("10.0.1.3".parse().unwrap()));
        assert_eq!(p.iter().count(), 9);
        assert_eq!(p.iter().next_back(), Some(Ipv4Addr::new(10, 0, 1, 2)));
        let one: IpPool = "10.0.0.1".parse().unwrap();
        assert_eq!(one.size(), 1);
        assert!("10.0.0.2-10.0.0.1".parse::<IpPool>().is_err());
        assert!("2001:db8::1-2001:db8::2".parse::<IpPool>().is_err());
        assert!("10.0.0.1-".parse::<IpPool>().is_err());
    }

    #[test]
    fn prefix() {
        let p: IpPrefix = "192.0.2.7/24".parse().unwrap();
        assert_eq!(p.to_string(), "192.0.2.0/24");
        assert!(p.contains("192.0.2.200".parse().unwrap()));
        assert!(p.contains("::ffff:192.0.2.200".parse().unwrap()));
        assert!(!p.contains("192.0.3.1".parse().unwrap()));
        let p6: IpPrefix = "2001:db8::/32".parse().unwrap();
        assert!(p6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!p6.contains("192.0.2.1".parse().unwrap()));
        let all: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!("192.0.2.0/33".parse::<IpPrefix>().is_err());
        assert_eq!("2001:db8::1".parse::<IpPrefix>().unwrap().len(), 128);
    }
}
