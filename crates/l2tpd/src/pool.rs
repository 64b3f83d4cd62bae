//! IP address pools of ppp profiles: the LNS hands each session's peer an
//! address from a range and takes it back when the session ends.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An inclusive address range, both ends of the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Range {
    /// First address.
    pub start: IpAddr,
    /// Last address (inclusive).
    pub end: IpAddr,
}

impl From<&l2tp_config::IpPool> for Range {
    fn from(pool: &l2tp_config::IpPool) -> Self {
        Self {
            start: IpAddr::V4(pool.start()),
            end: IpAddr::V4(pool.end()),
        }
    }
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// Addresses in use, per range.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    used: HashMap<Range, BTreeSet<u128>>,
}

impl Pools {
    /// Lowest free address of `range`, marked in use; `None` when exhausted.
    pub(crate) fn allocate(&mut self, range: Range) -> Option<IpAddr> {
        let (lo, hi) = (to_u128(range.start), to_u128(range.end));
        let used = self.used.entry(range).or_default();
        let mut candidate = lo;
        for &u in used.range(lo..=hi) {
            if u != candidate {
                break;
            }
            candidate += 1;
        }
        if candidate > hi {
            return None;
        }
        used.insert(candidate);
        Some(from_u128(candidate, range.start))
    }

    /// True when every address of `range` is in use: [`Self::allocate`]
    /// would return `None`. O(1).
    pub(crate) fn is_exhausted(&self, range: Range) -> bool {
        let (lo, hi) = (to_u128(range.start), to_u128(range.end));
        let size = hi.saturating_sub(lo).saturating_add(1);
        // Only addresses of the range are ever marked in use.
        self.used
            .get(&range)
            .is_some_and(|u| u.len() as u128 >= size)
    }

    /// Return an address to its range.
    pub(crate) fn release(&mut self, range: Range, addr: IpAddr) {
        if let Some(used) = self.used.get_mut(&range) {
            used.remove(&to_u128(addr));
        }
    }

    /// Addresses of `range` in use.
    #[cfg(test)]
    pub(crate) fn in_use(&self, range: Range) -> usize {
        self.used.get(&range).map_or(0, BTreeSet::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: &str, b: &str) -> Range {
        Range {
            start: a.parse().unwrap(),
            end: b.parse().unwrap(),
        }
    }

    #[test]
    fn allocates_lowest_free_and_reuses_released() {
        let mut p = Pools::default();
        let range = r("198.51.100.10", "198.51.100.12");
        let a = p.allocate(range).unwrap();
        let b = p.allocate(range).unwrap();
        let c = p.allocate(range).unwrap();
        assert_eq!(
            [a, b, c].map(|x| x.to_string()),
            ["198.51.100.10", "198.51.100.11", "198.51.100.12"]
        );
        assert_eq!(p.allocate(range), None, "pool of three is exhausted");
        assert!(p.is_exhausted(range));
        p.release(range, b);
        assert!(!p.is_exhausted(range));
        assert_eq!(p.allocate(range), Some(b));
        assert_eq!(p.in_use(range), 3);
    }

    #[test]
    fn ipv6_ranges_work() {
        let mut p = Pools::default();
        let range = r("2001:db8::1", "2001:db8::2");
        assert_eq!(p.allocate(range).unwrap().to_string(), "2001:db8::1");
        assert_eq!(p.allocate(range).unwrap().to_string(), "2001:db8::2");
        assert_eq!(p.allocate(range), None);
    }
}
