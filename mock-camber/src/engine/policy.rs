//! Where webhooks may go (`--webhook-allow`, `--webhook-deny`), so a
//! tenant of a shared mock cannot aim its webhooks at the mock's own
//! network (server-side request forgery).
//!
//! A destination is refused when it matches a deny entry and no allow
//! entry names it; when any allow entry is given, only the destinations an
//! allow entry names pass. An allow entry is a CIDR range (or one address)
//! or a host name (matched whole, without case); a deny entry is a CIDR
//! range. At submit, a literal address is checked, and a host name against
//! the allow list's names, without DNS (when the allow list has only names,
//! an unnamed host is refused there). At send time every address the host
//! resolves to is checked (a name that later resolves somewhere denied,
//! DNS rebinding, is refused then), and the attempt fails with the reason.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use actix_tls::connect::Resolve;
use futures_util::future::LocalBoxFuture;

/// A CIDR range: an address and how many leading bits of it match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// `10.0.0.0/8`, `fd00::/8`, or one address (`127.0.0.1`, `::1`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr =
            (ip.trim().parse()).map_err(|_| format!("`{s}` is not an IP address or CIDR range"))?;
        let addr = addr.to_canonical();
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= bits => p,
                _ => return Err(format!("`{s}`: the prefix length must be 0 to {bits}")),
            },
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let keep = |bits: u32| {
            if self.prefix == 0 {
                0
            } else {
                u128::MAX << (bits - u32::from(self.prefix))
            }
        };
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = keep(32) as u32;
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = keep(128);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An `--webhook-allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    Net(Net),
    /// A host name, lower case, without a trailing dot.
    Host(String),
}

impl Allow {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(net) = Net::parse(s) {
            return Ok(Self::Net(net));
        }
        let host = s.trim_end_matches('.').to_ascii_lowercase();
        let valid = !host.is_empty()
            && (host.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if valid {
            Ok(Self::Host(host))
        } else {
            Err(format!("`{s}` is neither a CIDR range nor a host name"))
        }
    }
}

/// The two lists (part of `Settings`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Policy {
    /// Webhook destinations allowed: a CIDR range (or one address) or a
    /// host name; repeat, or comma-separate the variable. When any is
    /// given, only the destinations they name pass (checked at submit,
    /// and on every resolved address at send time).
    #[arg(
        long = "webhook-allow",
        env = "MOCK_CAMBER_WEBHOOK_ALLOW",
        value_delimiter = ',',
        value_parser = Allow::parse
    )]
    pub allow: Vec<Allow>,

    /// Webhook destinations refused (CIDR ranges, e.g. 127.0.0.0/8,
    /// 10.0.0.0/8, 169.254.0.0/16) unless an --webhook-allow entry names
    /// them; repeat, or comma-separate the variable.
    #[arg(
        long = "webhook-deny",
        env = "MOCK_CAMBER_WEBHOOK_DENY",
        value_delimiter = ',',
        value_parser = Net::parse
    )]
    pub deny: Vec<Net>,
}

/// `host` as a URL spells it (`[::1]`), as an address when it is one.
fn literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

impl Policy {
    /// No list given: every destination passes (and nothing is checked).
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    fn names(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        (self.allow.iter()).any(|a| matches!(a, Allow::Host(h) if h.eq_ignore_ascii_case(host)))
    }

    /// One address, by the rule in the module docs.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        let ip = ip.to_canonical();
        let allowed = (self.allow.iter()).any(|a| matches!(a, Allow::Net(n) if n.contains(ip)));
        if allowed {
            return Ok(());
        }
        if !self.allow.is_empty() {
            return Err(format!("destination {ip} is not in --webhook-allow"));
        }
        match self.deny.iter().find(|n| n.contains(ip)) {
            Some(net) => Err(format!("destination {ip} denied by --webhook-deny {net}")),
            None => Ok(()),
        }
    }

    /// At submit, without DNS: a literal address, or a host name against
    /// the allow list's names. A name no entry can decide yet passes here
    /// and is checked on its addresses at send time.
    pub fn check_host(&self, host: &str) -> Result<(), String> {
        if self.is_open() {
            return Ok(());
        }
        if let Some(ip) = literal(host) {
            return self.check_ip(ip);
        }
        if self.names(host) {
            return Ok(());
        }
        let ranges = (self.allow.iter()).any(|a| matches!(a, Allow::Net(_)));
        if !self.allow.is_empty() && !ranges {
            return Err(format!("destination {host} is not in --webhook-allow"));
        }
        Ok(())
    }

    /// At send time: every address `host` resolved to.
    pub fn check_resolved(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), String> {
        if self.names(host) {
            return Ok(());
        }
        addrs.iter().try_for_each(|a| self.check_ip(a.ip()))
    }
}

/// Why an attempt was not made: the policy refused its destination.
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The webhook client's DNS resolver when a policy is set: the system's
/// lookup, then every address checked, so the connection goes only to an
/// address the policy lets through (a literal address in the URL skips
/// the resolver; `sender::send` checks it itself).
pub(super) struct Guarded(pub Rc<Policy>);

impl Resolve for Guarded {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            self.0
                .check_resolved(host, &addrs)
                .map_err(|e| Box::new(Refused(e)) as Box<dyn std::error::Error>)?;
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> Policy {
        Policy {
            allow: allow.iter().map(|a| Allow::parse(a).unwrap()).collect(),
            deny: deny.iter().map(|d| Net::parse(d).unwrap()).collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_ranges_parse_and_match_their_family_only() {
        let n = Net::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.255.0.1")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6");
        assert!(!n.contains(ip("::1")));
        let one = Net::parse("::1").unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        assert!(Net::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Net::parse("fe80::/10").unwrap().contains(ip("fe80::1")));
        assert_eq!(
            Net::parse("127.0.0.0/8").unwrap().to_string(),
            "127.0.0.0/8"
        );
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(Net::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Allow::parse("Hooks.Example.COM.").unwrap(),
            Allow::Host("hooks.example.com".into())
        );
        assert!(Allow::parse("a b").is_err());
    }

    #[test]
    fn deny_refuses_unless_allowed_and_any_allow_entry_makes_a_whitelist() {
        let open = policy(&[], &[]);
        assert!(open.is_open() && open.check_host("127.0.0.1").is_ok());

        let deny = policy(&[], &["127.0.0.0/8", "::1"]);
        assert_eq!(
            deny.check_host("127.0.0.1"),
            Err("destination 127.0.0.1 denied by --webhook-deny 127.0.0.0/8".into())
        );
        assert!(deny.check_host("[::1]").is_err());
        assert!(deny.check_host("10.0.0.1").is_ok());
        // A name is not resolved at submit; its addresses are at send.
        assert!(deny.check_host("localhost").is_ok());
        let local = [SocketAddr::new(ip("127.0.0.1"), 80)];
        assert!(deny.check_resolved("localhost", &local).is_err());
        let mixed = [SocketAddr::new(ip("10.0.0.1"), 80), local[0]];
        assert!(deny.check_resolved("rebound.example", &mixed).is_err());

        // An allow entry that names the destination wins over deny.
        let both = policy(&["localhost", "127.0.0.2"], &["127.0.0.0/8"]);
        assert!(both.check_host("LOCALHOST").is_ok());
        assert!(both.check_resolved("localhost", &local).is_ok());
        assert!(both.check_host("127.0.0.2").is_ok());
        assert_eq!(
            both.check_host("127.0.0.1"),
            Err("destination 127.0.0.1 is not in --webhook-allow".into())
        );
        // With a range allowed, an unnamed host may resolve into it: it
        // passes submit. With names only, it is refused at submit already.
        assert!(both.check_host("elsewhere.example").is_ok());
        let names = policy(&["localhost"], &[]);
        assert_eq!(
            names.check_host("elsewhere.example"),
            Err("destination elsewhere.example is not in --webhook-allow".into())
        );
        assert!(names.check_host("localhost.").is_ok());
        let ranges = policy(&["192.0.2.0/24"], &[]);
        assert!(ranges.check_host("hooks.example").is_ok());
        assert!(ranges.check_resolved("hooks.example", &local).is_err());
        let inside = [SocketAddr::new(ip("192.0.2.7"), 443)];
        assert!(ranges.check_resolved("hooks.example", &inside).is_ok());
        assert!(ranges.check_host("198.51.100.1").is_err());
    }
}
