//! Pod IP addresses from the node's pod CIDR: the first host address is the bridge's
//! (the pods' gateway), the rest go to pods, handed out round-robin so that a freed address
//! is not reused at once (a stale endpoint would otherwise reach a new pod). Each address
//! in use is held by one pod (its uid): a pod can only claim an address no other pod holds,
//! so an address recovered after a restart is never handed out twice.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network, e.g. `10.244.0.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    fn base(&self) -> u32 {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        u32::from(self.addr) & mask
    }

    fn size(&self) -> u32 {
        1u32.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0)
    }

    /// The gateway (bridge) address: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let v = u32::from(ip);
        v >= self.base() && v - self.base() < self.size()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base()), self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("invalid CIDR address: {s}"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("invalid CIDR address: {s}"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!(
                "pod CIDR {s}: the prefix must be between /8 and /30"
            ));
        }
        Ok(Cidr { addr, prefix })
    }
}

/// The addresses in use (offset in the CIDR → the pod holding it) and where the next search
/// starts.
#[derive(Debug)]
pub struct Ipam {
    cidr: Cidr,
    used: BTreeMap<u32, String>,
    next: u32,
}

impl Ipam {
    pub fn new(cidr: Cidr) -> Self {
        Ipam {
            cidr,
            used: BTreeMap::new(),
            next: 2,
        }
    }

    /// Claims `ip` for the pod `owner` (an address recovered from its saved state or its
    /// network namespace). False when another pod holds it. Addresses outside the CIDR are
    /// not managed here: true.
    pub fn reserve(&mut self, ip: Ipv4Addr, owner: &str) -> bool {
        if !self.cidr.contains(ip) {
            return true;
        }
        let off = u32::from(ip) - self.cidr.base();
        self.used.entry(off).or_insert_with(|| owner.to_string()) == owner
    }

    /// The pod holding `ip`, if any.
    pub fn holder(&self, ip: Ipv4Addr) -> Option<&str> {
        if !self.cidr.contains(ip) {
            return None;
        }
        self.used
            .get(&(u32::from(ip) - self.cidr.base()))
            .map(String::as_str)
    }

    /// Whether `ip` is one this allocator hands out (in the CIDR; not the network, gateway or
    /// broadcast address).
    pub fn assignable(&self, ip: Ipv4Addr) -> bool {
        if !self.cidr.contains(ip) {
            return false;
        }
        let off = u32::from(ip) - self.cidr.base();
        off >= 2 && off + 1 < self.cidr.size()
    }

    /// The next free pod address, now held by `owner`; None when the CIDR is full.
    pub fn allocate(&mut self, owner: &str) -> Option<Ipv4Addr> {
        let size = self.cidr.size();
        // Offsets 0 (network), 1 (gateway) and size-1 (broadcast) are never handed out.
        let hosts = size.saturating_sub(3);
        for i in 0..hosts {
            let off = 2 + (self.next - 2 + i) % hosts;
            if let std::collections::btree_map::Entry::Vacant(slot) = self.used.entry(off) {
                slot.insert(owner.to_string());
                self.next = 2 + (off - 2 + 1) % hosts;
                return Some(Ipv4Addr::from(self.cidr.base() + off));
            }
        }
        None
    }

    /// Frees every address `owner` holds (a pod never frees another's address).
    pub fn release(&mut self, owner: &str) {
        self.used.retain(|_, holder| holder != owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_round_robin_and_skips_reserved() {
        let cidr: Cidr = "10.244.0.0/29".parse().expect("valid");
        assert_eq!(cidr.gateway(), Ipv4Addr::new(10, 244, 0, 1));
        let mut ipam = Ipam::new(cidr);
        assert!(ipam.reserve(Ipv4Addr::new(10, 244, 0, 3), "old"));
        let a = ipam.allocate("a").expect("free");
        assert_eq!(a, Ipv4Addr::new(10, 244, 0, 2));
        let b = ipam.allocate("b").expect("free");
        assert_eq!(b, Ipv4Addr::new(10, 244, 0, 4));
        ipam.release("a");
        // .5 and .6 come before the freed .2 is reused.
        assert_eq!(ipam.allocate("c"), Some(Ipv4Addr::new(10, 244, 0, 5)));
        assert_eq!(ipam.allocate("d"), Some(Ipv4Addr::new(10, 244, 0, 6)));
        assert_eq!(ipam.allocate("e"), Some(Ipv4Addr::new(10, 244, 0, 2)));
        assert_eq!(ipam.allocate("f"), None);
    }

    #[test]
    fn an_address_has_one_holder() {
        let mut ipam = Ipam::new("10.244.0.0/24".parse().expect("valid"));
        let ip = Ipv4Addr::new(10, 244, 0, 9);
        assert!(ipam.reserve(ip, "a"));
        assert!(ipam.reserve(ip, "a"), "the holder may claim it again");
        assert!(!ipam.reserve(ip, "b"));
        ipam.release("b");
        assert_eq!(ipam.holder(ip), Some("a"), "only the holder frees it");
        ipam.release("a");
        assert!(ipam.reserve(ip, "b"));
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            "10.244.0.7/24".parse::<Cidr>().map(|c| c.to_string()),
            Ok("10.244.0.0/24".to_string())
        );
        assert!("10.244.0.0".parse::<Cidr>().is_err());
        assert!("10.244.0.0/31".parse::<Cidr>().is_err());
    }
}
