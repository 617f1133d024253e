//! Which addresses callbacks may reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The networks, beyond the public internet, that callbacks may reach.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// `allowed`: CIDR strings (a bare IP means /32 or /128); Err names the bad entry. Empty strings are ignored.
    pub fn new(allowed: &[String]) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in allowed {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let net = IpNet::from_str(entry)
                .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                .map_err(|_| {
                    format!("invalid network {entry:?}: expected a CIDR such as 10.0.0.0/8 or an IP address")
                })?;
            nets.push(net);
        }
        Ok(Self { allowed: nets })
    }

    /// Public addresses always; any other (loopback, private 10/8 172.16/12 192.168/16, link-local 169.254/16 and fe80::/10, unspecified, broadcast, multicast, shared 100.64/10, unique-local fc00::/7, documentation ranges, IPv4-mapped IPv6 judged by its IPv4) only if inside an allowed network.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let judged = embedded_ipv4(ip).map_or(ip, IpAddr::V4);
        is_public(judged)
            || self
                .allowed
                .iter()
                .any(|net| net.contains(&ip) || net.contains(&judged))
    }

    /// A callback URL is acceptable: http or https, a host, no username or password, and an IP literal or `localhost` host the policy permits.
    ///
    /// Other host names are not resolved here; [`GuardedResolver`] checks what they resolve to.
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(format!("callback URL must use http or https, not {scheme}"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("callback URL must not contain a username or password".into());
        }
        let (shown, candidates): (String, Vec<IpAddr>) = match url.host() {
            None => return Err("callback URL must have a host".into()),
            Some(Host::Ipv4(v4)) => (v4.to_string(), vec![IpAddr::V4(v4)]),
            Some(Host::Ipv6(v6)) => (v6.to_string(), vec![IpAddr::V6(v6)]),
            Some(Host::Domain(domain)) => {
                let name = domain.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    let loopback = vec![
                        IpAddr::V4(Ipv4Addr::LOCALHOST),
                        IpAddr::V6(Ipv6Addr::LOCALHOST),
                    ];
                    (domain.to_owned(), loopback)
                } else {
                    return Ok(());
                }
            }
        };
        // `localhost` is fine if either loopback address is allowed: the resolver drops the other.
        if candidates.iter().any(|ip| self.permits(*ip)) {
            Ok(())
        } else {
            Err(format!(
                "callbacks to private, loopback or link-local addresses are not allowed ({shown})"
            ))
        }
    }
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`).
fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [_, _, _, _, _, _, hi, lo] = s;
        return Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    None
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", 0.0.0.0/8 (includes unspecified)
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_documentation()
        || (a == 100 && (b & 0xc0) == 64) // shared address space, 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0.0/24
        || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18.0.0/15
        || a >= 240) // reserved 240.0.0.0/4, including broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(s[..6] == [0; 6] // unspecified, loopback and deprecated IPv4-compatible, ::/96
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (s[0] & 0xffc0) == 0xfec0 // deprecated site-local, fec0::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation, 2001:db8::/32
        || (s[0] == 0x3fff && s[1] < 0x1000) // documentation, 3fff::/20
        || s[..4] == [0x0100, 0, 0, 0] // discard-only, 100::/64
        || (s[0] == 0x64 && s[1] == 0xff9b)) // rest of 64:ff9b::/32, local-use NAT64
}

/// Where host names are looked up; the system resolver in service, a fixed table in tests of
/// what happens when a name's answer changes (DNS rebinding).
pub trait Lookup: Send + Sync + std::fmt::Debug {
    fn lookup(&self, host: String) -> BoxFuture<std::io::Result<Vec<IpAddr>>>;
}

/// A boxed future, as [`Lookup`] returns.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// The operating system's resolver (getaddrinfo, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> BoxFuture<std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A reqwest DNS resolver that drops every address the policy does not permit.
///
/// Checking the addresses actually connected to closes the DNS-rebinding gap a check of the URL
/// alone leaves: every new connection resolves again and is judged again. (IP literals in URLs
/// never reach a resolver; [`AddressPolicy::check_url`] judges those before each request.)
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: AddressPolicy,
    lookup: Arc<dyn Lookup>,
}

impl GuardedResolver {
    /// A resolver that only yields addresses `policy` permits, from the system resolver.
    pub fn new(policy: AddressPolicy) -> Self {
        Self::with_lookup(policy, Arc::new(SystemLookup))
    }

    /// The same, with the answers from `lookup`.
    pub fn with_lookup(policy: AddressPolicy, lookup: Arc<dyn Lookup>) -> Self {
        Self { policy, lookup }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let lookup = self.lookup.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = lookup.lookup(host.clone()).await?;
            if resolved.is_empty() {
                return Err(format!("{host} does not resolve to any address").into());
            }
            let (permitted, refused): (Vec<IpAddr>, Vec<IpAddr>) =
                resolved.into_iter().partition(|ip| policy.permits(*ip));
            if permitted.is_empty() {
                let refused: Vec<String> = refused.iter().map(IpAddr::to_string).collect();
                return Err(format!(
                    "{host} resolves only to disallowed (private, loopback or link-local) addresses: {}",
                    refused.join(", ")
                )
                .into());
            }
            let addrs = permitted.into_iter().map(|ip| SocketAddr::new(ip, 0));
            Ok(Box::new(addrs) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(nets: &[&str]) -> AddressPolicy {
        let nets: Vec<String> = nets.iter().map(|s| s.to_string()).collect();
        AddressPolicy::new(&nets).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const PUBLIC: &[&str] = &[
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.167.255.255",
        "192.169.0.0",
        "169.253.255.255",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2001:db9::1",
    ];

    const NOT_PUBLIC: &[&str] = &[
        "127.0.0.1",
        "127.255.255.254",
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "0.1.2.3",
        "255.255.255.255",
        "224.0.0.1",
        "239.255.255.250",
        "100.64.0.1",
        "100.127.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
        "198.18.0.1",
        "240.0.0.1",
        "::",
        "::1",
        "::127.0.0.1",
        "fe80::1",
        "febf::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "3fff::1",
        "100::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
    ];

    #[test]
    fn default_policy_permits_only_public_addresses() {
        let p = AddressPolicy::default();
        for a in PUBLIC {
            assert!(p.permits(ip(a)), "{a} should be permitted");
        }
        for a in NOT_PUBLIC {
            assert!(!p.permits(ip(a)), "{a} should be refused");
        }
    }

    #[test]
    fn allow_everything() {
        let p = policy(&["0.0.0.0/0", "::/0"]);
        for a in PUBLIC.iter().chain(NOT_PUBLIC) {
            assert!(p.permits(ip(a)), "{a} should be permitted");
        }
    }

    #[test]
    fn loopback_v4_allowance_does_not_cover_v6_loopback() {
        let p = policy(&["127.0.0.0/8"]);
        assert!(p.permits(ip("127.0.0.1")));
        assert!(p.permits(ip("127.1.2.3")));
        assert!(p.permits(ip("::ffff:127.0.0.1")), "judged by its IPv4");
        assert!(!p.permits(ip("::1")));
        assert!(!p.permits(ip("10.0.0.1")));
        assert!(!p.permits(ip("169.254.169.254")));
        assert!(p.permits(ip("8.8.8.8")));
    }

    #[test]
    fn allowed_networks_table() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["10.0.0.0/8"], "10.1.2.3", true),
            (&["10.0.0.0/8"], "172.16.0.1", false),
            (&["10.1.0.0/16"], "10.2.0.1", false),
            (&["192.168.1.10"], "192.168.1.10", true),
            (&["192.168.1.10"], "192.168.1.11", false),
            (&["::1"], "::1", true),
            (&["::1"], "127.0.0.1", false),
            (&["fc00::/7"], "fd00::5", true),
            (&["fe80::/10"], "fe80::1", true),
            (&["fe80::/10"], "169.254.0.1", false),
            (&["::ffff:0:0/96"], "::ffff:10.0.0.1", true),
            (&["172.16.0.0/12", "::1"], "172.20.0.1", true),
            (&["172.16.0.0/12", "::1"], "::1", true),
            (&["172.16.0.0/12", "::1"], "192.168.0.1", false),
        ];
        for (nets, addr, expected) in cases {
            assert_eq!(policy(nets).permits(ip(addr)), *expected, "{nets:?} {addr}");
        }
    }

    #[test]
    fn new_ignores_empty_and_names_bad_entries() {
        let ok = AddressPolicy::new(&["".into(), "  ".into(), " 10.0.0.0/8 ".into()]).unwrap();
        assert!(ok.permits(ip("10.9.9.9")));
        for bad in ["10.0.0.0/33", "not-a-net", "10.0.0", "::1/129", "*"] {
            let err = AddressPolicy::new(&["10.0.0.0/8".into(), bad.into()]).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    fn check(p: &AddressPolicy, url: &str) -> Result<(), String> {
        p.check_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn check_url_cases() {
        let p = AddressPolicy::default();
        let ok = [
            "https://example.com/hook",
            "http://example.com:8080/hook?x=1",
            "https://8.8.8.8/hook",
            "https://[2606:4700:4700::1111]/hook",
            "https://10.example.com/",
            "https://internal.corp/",
        ];
        for url in ok {
            assert_eq!(check(&p, url), Ok(()), "{url}");
        }
        let refused = [
            "ftp://example.com/file",
            "file:///etc/passwd",
            "mailto:someone@example.com",
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "https://:pass@example.com/",
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://10.0.0.1:8000/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fe80::1]/",
            "http://0.0.0.0/",
            "http://localhost/",
            "http://LOCALHOST:8080/",
            "http://localhost./",
            "http://api.localhost/",
        ];
        for url in refused {
            assert!(check(&p, url).is_err(), "{url} accepted");
        }
    }

    #[test]
    fn check_url_messages() {
        let p = AddressPolicy::default();
        assert_eq!(
            check(&p, "http://127.0.0.1/").unwrap_err(),
            "callbacks to private, loopback or link-local addresses are not allowed (127.0.0.1)"
        );
        assert!(check(&p, "http://[::1]/").unwrap_err().ends_with("(::1)"));
        assert!(check(&p, "http://localhost/")
            .unwrap_err()
            .ends_with("(localhost)"));
        assert!(check(&p, "ftp://example.com/")
            .unwrap_err()
            .contains("http or https"));
        assert!(check(&p, "https://u:p@example.com/")
            .unwrap_err()
            .contains("username or password"));
    }

    #[test]
    fn check_url_without_host_is_refused() {
        // http(s) URLs always have a host in the url crate; a host-less URL is refused either way.
        let p = policy(&["0.0.0.0/0", "::/0"]);
        assert!(check(&p, "data:text/plain,hi").is_err());
        let url = Url::parse("unix:/run/hook.sock").unwrap();
        assert!(url.host().is_none());
        assert!(p.check_url(&url).is_err());
    }

    #[test]
    fn check_url_localhost_allowed_with_loopback() {
        for nets in [
            &["127.0.0.0/8"][..],
            &["::1"][..],
            &["0.0.0.0/0", "::/0"][..],
        ] {
            let p = policy(nets);
            assert_eq!(check(&p, "http://localhost:8080/hook"), Ok(()), "{nets:?}");
            assert_eq!(check(&p, "http://app.localhost/hook"), Ok(()), "{nets:?}");
        }
        let p = policy(&["127.0.0.0/8"]);
        assert_eq!(check(&p, "http://127.0.0.1:9000/"), Ok(()));
        assert!(check(&p, "http://[::1]/").is_err());
        assert!(check(&p, "http://10.0.0.1/").is_err());
        assert!(check(&p, "https://u@localhost/").is_err());
    }

    async fn resolve(p: AddressPolicy, host: &str) -> Result<Vec<SocketAddr>, String> {
        let name: Name = host.parse().unwrap();
        GuardedResolver::new(p)
            .resolve(name)
            .await
            .map(|addrs| addrs.collect())
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn resolver_refuses_localhost_without_allowance() {
        let err = resolve(AddressPolicy::default(), "localhost")
            .await
            .unwrap_err();
        assert!(err.contains("resolves only to disallowed"), "{err}");
        assert!(err.contains("localhost"), "{err}");
    }

    #[tokio::test]
    async fn resolver_keeps_only_permitted_addresses() {
        let addrs = resolve(policy(&["127.0.0.0/8"]), "localhost")
            .await
            .unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_ipv4() && a.ip().is_loopback()),
            "{addrs:?}"
        );
    }

    #[test]
    fn every_spelling_of_a_refused_address_is_refused() {
        let p = AddressPolicy::default();
        let spellings = [
            "http://127.0.0.1/",
            "http://2130706433/",   // decimal
            "http://017700000001/", // octal, one part
            "http://0177.0.0.1/",   // octal parts
            "http://0177.0.0.01/",
            "http://0x7f.0.0.1/", // hex parts
            "http://0x7f000001/", // hex, one part
            "http://0x7F.1/",     // two parts
            "http://127.0.0.1./", // trailing dot
            "http://0x7f.0.0.1./",
            "http://[::ffff:127.0.0.1]/", // IPv4-mapped IPv6
            "http://[::ffff:7f00:1]/",
            "http://[0:0:0:0:0:ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",  // 169.254.169.254
            "http://[64:ff9b::7f00:1]/",   // NAT64
            "http://0xa9.0xfe.0xa9.0xfe/", // 169.254.169.254 in hex
            "http://3232235777/",          // 192.168.1.1
            "http://012.1/",               // 10.0.0.1
            "http://localhost./",
            "http://LocalHost../",
            "http://api.localhost./",
        ];
        for url in spellings {
            // The url crate (WHATWG) normalises every IPv4 spelling to its dotted form, so the
            // policy judges the address, not the spelling.
            let parsed = Url::parse(url).unwrap();
            assert!(p.check_url(&parsed).is_err(), "{url} ({parsed}) accepted");
        }
        assert_eq!(
            Url::parse("http://0177.0.0.1/").unwrap().host_str(),
            Some("127.0.0.1")
        );
    }

    /// A lookup with fixed answers, as a rebinding DNS server gives.
    #[derive(Debug)]
    struct Fixed(Vec<IpAddr>);

    impl Lookup for Fixed {
        fn lookup(&self, _host: String) -> BoxFuture<std::io::Result<Vec<IpAddr>>> {
            let answer = self.0.clone();
            Box::pin(async move { Ok(answer) })
        }
    }

    async fn resolve_fixed(p: AddressPolicy, answer: &[&str]) -> Result<Vec<IpAddr>, String> {
        let lookup = Arc::new(Fixed(answer.iter().map(|a| ip(a)).collect()));
        GuardedResolver::with_lookup(p, lookup)
            .resolve("rebind.example.com".parse().unwrap())
            .await
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn resolver_judges_every_answer_including_mapped_and_nat64_forms() {
        for refused in [
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::1",
            "fe80::1",
        ] {
            let err = resolve_fixed(AddressPolicy::default(), &[refused])
                .await
                .unwrap_err();
            assert!(err.contains("disallowed"), "{refused}: {err}");
        }
        let mixed = resolve_fixed(AddressPolicy::default(), &["10.0.0.1", "8.8.8.8", "::1"])
            .await
            .unwrap();
        assert_eq!(mixed, vec![ip("8.8.8.8")]);
    }

    #[tokio::test]
    async fn a_client_with_the_resolver_never_connects_to_a_refused_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let client = |p: AddressPolicy| {
            let lookup = Arc::new(Fixed(vec![ip("127.0.0.1")]));
            reqwest::Client::builder()
                .dns_resolver(Arc::new(GuardedResolver::with_lookup(p, lookup)))
                .timeout(std::time::Duration::from_millis(300))
                .build()
                .unwrap()
        };
        let url = format!("http://rebind.example.com:{port}/hook");
        let err = client(AddressPolicy::default())
            .post(&url)
            .send()
            .await
            .unwrap_err();
        assert!(format!("{err:#?}").contains("disallowed"), "{err:#?}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
        // The same client allowed loopback does connect: the refusal above was the resolver's.
        let _ = client(policy(&["127.0.0.0/8"])).post(&url).send().await;
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn resolver_passes_ip_literals_through_the_policy() {
        let addrs = resolve(AddressPolicy::default(), "8.8.8.8").await.unwrap();
        assert_eq!(addrs, vec![SocketAddr::from(([8, 8, 8, 8], 0))]);
        assert!(resolve(AddressPolicy::default(), "10.0.0.1").await.is_err());
    }
}
