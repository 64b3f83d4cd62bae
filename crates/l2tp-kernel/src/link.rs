//! Link queries over rtnetlink (async, tokio): which `pppN` came up, with which
//! addresses. Every function opens its own rtnetlink connection and must run inside a
//! tokio runtime.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::Handle;

use crate::error::Error;
use crate::uapi;

/// An interface address: (local address, prefix length in bits, point-to-point peer).
///
/// For a PPP link with IPv4 the kernel reports the local address in `IFA_LOCAL` and the
/// peer in `IFA_ADDRESS`; here that becomes `(local, 32, Some(peer))`. Addresses
/// without a distinct peer have `None`.
pub type LinkAddr = (IpAddr, u8, Option<IpAddr>);

/// A network interface as reported by `RTM_GETLINK` plus its addresses
/// (`RTM_GETADDR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index (`ifi_index`).
    pub index: u32,
    /// Interface name (`IFLA_IFNAME`), e.g. `ppp0`.
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Lower layer up (`IFF_LOWER_UP`); for PPP set once the unit is connected.
    pub lower_up: bool,
    /// Link type (`ifi_type`, `ARPHRD_*`): 512 = `ARPHRD_PPP`.
    pub link_type: u16,
    /// MTU in bytes (`IFLA_MTU`), 0 if not reported.
    pub mtu: u32,
    /// Addresses, IPv4 first in kernel order.
    pub addrs: Vec<LinkAddr>,
}

fn rt_error(op: &str, e: rtnetlink::Error) -> Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => Error::io(op, m.to_io()),
        other => Error::protocol(op, other.to_string()),
    }
}

fn connect() -> Result<Handle, Error> {
    let (conn, handle, _) = rtnetlink::new_connection()
        .map_err(|e| Error::io("socket(AF_NETLINK, NETLINK_ROUTE)", e))?;
    tokio::spawn(conn);
    Ok(handle)
}

fn addr_of(msg: &AddressMessage) -> Option<LinkAddr> {
    let mut address = None;
    let mut local = None;
    for a in &msg.attributes {
        match a {
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Local(ip) => local = Some(*ip),
            _ => {}
        }
    }
    let prefix = msg.header.prefix_len;
    match (local, address) {
        (Some(l), Some(a)) if l != a => Some((l, prefix, Some(a))),
        (Some(l), _) => Some((l, prefix, None)),
        (None, Some(a)) => Some((a, prefix, None)),
        (None, None) => None,
    }
}

async fn addresses_of(handle: &Handle, index: u32, op: &str) -> Result<Vec<LinkAddr>, Error> {
    let mut out: Vec<LinkAddr> = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_filter_map(|m| futures::future::ready(Ok(addr_of(&m))))
        .try_collect()
        .await
        .map_err(|e| rt_error(op, e))?;
    out.sort_by_key(|(ip, _, _)| ip.is_ipv6());
    Ok(out)
}

fn info_of(msg: &LinkMessage) -> LinkInfo {
    let mut name = String::new();
    let mut mtu = 0;
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Mtu(m) => mtu = *m,
            _ => {}
        }
    }
    LinkInfo {
        index: msg.header.index,
        name,
        up: msg.header.flags.contains(LinkFlags::Up),
        lower_up: msg.header.flags.contains(LinkFlags::LowerUp),
        link_type: u16::from(msg.header.link_layer_type),
        mtu,
        addrs: Vec::new(),
    }
}

/// `RTM_GETLINK` by name; `Ok(None)` if there is no such link.
async fn get_link(handle: &Handle, ifname: &str) -> Result<Option<LinkInfo>, Error> {
    let op = format!("RTM_GETLINK {ifname}");
    let mut s = handle.link().get().match_name(ifname).execute();
    match s.try_next().await {
        Ok(Some(msg)) => {
            let mut info = info_of(&msg);
            info.addrs = addresses_of(handle, info.index, &format!("RTM_GETADDR {ifname}")).await?;
            Ok(Some(info))
        }
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(m))
            if matches!(m.to_io().raw_os_error(), Some(libc::ENODEV)) =>
        {
            Ok(None)
        }
        Err(e) => Err(rt_error(&op, e)),
    }
}

/// The addresses of interface `ifname` (`RTM_GETADDR` filtered by its index).
/// A missing interface is [`Error::Kernel`] with `ENODEV`.
pub async fn link_addresses(ifname: &str) -> Result<Vec<LinkAddr>, Error> {
    let handle = connect()?;
    match get_link(&handle, ifname).await? {
        Some(info) => Ok(info.addrs),
        None => Err(Error::kernel(format!("RTM_GETLINK {ifname}"), libc::ENODEV)),
    }
}

/// Waits until interface `ifname` exists and is administratively up (`IFF_UP`), polling
/// every 100 ms for at most `timeout`; returns it with its addresses at that moment.
/// pppd sets `pppN` up when IPCP (or IPv6CP) completes and adds the addresses right
/// before, so they are normally present. Expiry is [`Error::Timeout`].
pub async fn wait_for_link(ifname: &str, timeout: Duration) -> Result<LinkInfo, Error> {
    let handle = connect()?;
    let start = Instant::now();
    loop {
        if let Some(info) = get_link(&handle, ifname).await?
            && info.up
        {
            return Ok(info);
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                op: format!("waiting for link {ifname} to be up"),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// All links of type PPP (`ARPHRD_PPP` = 512), with their addresses, in index order.
pub async fn list_ppp_links() -> Result<Vec<LinkInfo>, Error> {
    let handle = connect()?;
    let links: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| rt_error("RTM_GETLINK (dump)", e))?;
    let mut out = Vec::new();
    for msg in &links {
        let mut info = info_of(msg);
        if info.link_type != uapi::ARPHRD_PPP {
            continue;
        }
        info.addrs =
            addresses_of(&handle, info.index, &format!("RTM_GETADDR {}", info.name)).await?;
        out.push(info);
    }
    out.sort_by_key(|l| l.index);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[tokio::test]
    async fn loopback_addresses() {
        let addrs = link_addresses("lo").await.unwrap();
        assert!(
            addrs.contains(&(IpAddr::V4(Ipv4Addr::LOCALHOST), 8, None)),
            "{addrs:?}"
        );
    }

    #[tokio::test]
    async fn missing_link() {
        let e = link_addresses("nosuchlink0").await.unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENODEV), "{e}");
        let e = wait_for_link("nosuchlink0", Duration::from_millis(250))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
    }

    #[tokio::test]
    async fn lo_is_up_and_not_ppp() {
        let lo = wait_for_link("lo", Duration::from_secs(1)).await.unwrap();
        assert_eq!(lo.name, "lo");
        assert!(lo.up);
        assert_eq!(lo.link_type, 772); // ARPHRD_LOOPBACK
        // This host has no PPP; in a VM with pppd running there may be some.
        let ppp = list_ppp_links().await.unwrap();
        assert!(ppp.iter().all(|l| l.link_type == uapi::ARPHRD_PPP));
    }

    #[test]
    fn ptp_address_mapping() {
        use netlink_packet_route::address::AddressMessage;
        let mut m = AddressMessage::default();
        m.header.prefix_len = 32;
        let local: IpAddr = "198.51.100.1".parse().unwrap();
        let peer: IpAddr = "198.51.100.10".parse().unwrap();
        m.attributes.push(AddressAttribute::Address(peer));
        m.attributes.push(AddressAttribute::Local(local));
        assert_eq!(addr_of(&m), Some((local, 32, Some(peer))));
        let mut m2 = AddressMessage::default();
        m2.header.prefix_len = 8;
        m2.attributes.push(AddressAttribute::Address(local));
        m2.attributes.push(AddressAttribute::Local(local));
        assert_eq!(addr_of(&m2), Some((local, 8, None)));
    }
}
