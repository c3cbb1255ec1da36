//! Outbound webhooks (alert subscriptions and RA approval services): which addresses they may reach, the
//! one HTTP client they use, and how their signing secrets are kept.
//!
//! Against blind SSRF, [`TargetPolicy`] refuses every address that is not globally routable (loopback,
//! link-local with the cloud metadata address, private, CGNAT, unspecified, multicast, broadcast,
//! documentation and reserved ranges, and the IPv6 forms that embed one of them) unless an operator
//! allow-list (`--webhook-allow <CIDR>`) names it. The rule runs twice: when a webhook is configured
//! ([`TargetPolicy::check_url`], a precise refusal for the operator) and when it is called
//! ([`WebhookClient`]): the client resolves a name once through the policy and connects only to the
//! addresses that passed, so a name that changes its answer between the check and the connection
//! (DNS rebinding) cannot slip through; it follows no redirect and ignores proxy variables (a proxy would
//! resolve the name itself).
//!
//! Secrets: a subscription's HMAC key is sealed like a software key ([`Keystore::seal_secret`], AES-256-GCM
//! under the master key), bound to the subscription's id, and opened only in memory to sign a delivery.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use shedu_keys::{Keystore, MasterKey};
use zeroize::Zeroizing;

use crate::Error;

/// The stable reason code of a refused webhook target (REST: `urn:shedu:problem:webhook-target-refused`).
pub const TARGET_REFUSED: &str = "webhook-target-refused";

/// How long a webhook's host name may take to resolve when the webhook is configured.
const CHECK_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// An address block, `10.0.0.0/8` or `fd00::/8`; a bare address is a block of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in the block (an IPv4 block also covers the IPv4-mapped IPv6 form).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), _) => {
                let ip = match ip {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address block (e.g. 10.0.0.0/8)"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { net, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// Which addresses a webhook may reach: globally routable ones, plus the operator's allow-list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allow: Vec<Cidr>,
}

impl TargetPolicy {
    /// The default rule plus `allow` (blocks the operator vouches for, e.g. an internal approval service).
    pub fn new(allow: Vec<Cidr>) -> TargetPolicy {
        TargetPolicy { allow }
    }

    /// `Ok` when a webhook may connect to `ip`; otherwise why not (the kind of address), for messages.
    pub fn judge(&self, ip: IpAddr) -> Result<(), &'static str> {
        match non_global(ip) {
            Some(kind) if !self.allow.iter().any(|c| c.contains(ip)) => Err(kind),
            _ => Ok(()),
        }
    }

    /// Whether a webhook may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.judge(ip).is_ok()
    }

    /// Checks a webhook URL when it is configured: `http`/`https` with a host; a literal address must be
    /// permitted, and a name that resolves must resolve to at least one permitted address. A name that does
    /// not resolve (yet) is accepted: every call checks again. `field` names the input in messages.
    pub async fn check_url(&self, field: &str, url: &str) -> Result<(), Error> {
        let parsed = parse_url(url)
            .map_err(|m| Error::invalid("invalid-webhook", format!("{field}: {m}")))?;
        let refused = |ip: IpAddr, kind: &str| {
            Error::invalid(
                TARGET_REFUSED,
                format!(
                    "{field}: {ip} is a {kind} address, which webhooks may not reach unless the operator \
                     allows it (--webhook-allow)"
                ),
            )
        };
        match host_ip(&parsed) {
            Some(ip) => self.judge(ip).map_err(|kind| refused(ip, kind)),
            None => {
                let host = parsed.host_str().unwrap_or_default();
                let port = parsed.port_or_known_default().unwrap_or(443);
                let lookup = tokio::net::lookup_host((host, port));
                let Ok(Ok(addrs)) = tokio::time::timeout(CHECK_RESOLVE_TIMEOUT, lookup).await
                else {
                    return Ok(());
                };
                let mut first_refusal = None;
                for a in addrs {
                    match self.judge(a.ip()) {
                        Ok(()) => return Ok(()),
                        Err(kind) => {
                            first_refusal.get_or_insert((a.ip(), kind));
                        }
                    }
                }
                match first_refusal {
                    Some((ip, kind)) => Err(Error::invalid(
                        TARGET_REFUSED,
                        format!(
                            "{field}: {host} resolves to {ip}, a {kind} address, which webhooks may not \
                             reach unless the operator allows it (--webhook-allow)"
                        ),
                    )),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Everything about outbound webhooks the services share: the target policy and the secret sealing.
pub struct Webhooks {
    policy: Arc<TargetPolicy>,
    keystore: Keystore,
    /// Shared by approval webhooks (connection reuse); each request sets its own timeout.
    shared: WebhookClient,
}

impl fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhooks")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Webhooks under `policy`, sealing secrets under `master`.
    pub fn new(master: &MasterKey, policy: TargetPolicy) -> Result<Webhooks, Error> {
        let policy = Arc::new(policy);
        Ok(Webhooks {
            shared: WebhookClient::new(policy.clone(), None)?,
            policy,
            keystore: Keystore::new(master)?,
        })
    }

    /// A client without a default timeout, shared across callers: set a timeout on each request.
    pub fn shared_client(&self) -> &WebhookClient {
        &self.shared
    }

    /// The target policy.
    pub fn policy(&self) -> &TargetPolicy {
        &self.policy
    }

    /// An HTTP client for webhooks under the policy; `timeout` bounds each whole request (connect, send,
    /// answer).
    pub fn client(&self, timeout: Duration) -> Result<WebhookClient, Error> {
        WebhookClient::new(self.policy.clone(), Some(timeout))
    }

    /// Seals a subscription's signing secret, bound to its id.
    pub fn seal_secret(&self, subscription_id: &str, secret: &str) -> Result<Vec<u8>, Error> {
        Ok(self
            .keystore
            .seal_secret(&secret_context(subscription_id), secret.as_bytes())?)
    }

    /// Opens a secret sealed by [`Webhooks::seal_secret`] for the same subscription.
    pub fn open_secret(
        &self,
        subscription_id: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<String>, Error> {
        let plain = self
            .keystore
            .open_secret(&secret_context(subscription_id), sealed)?;
        let text = std::str::from_utf8(&plain).map_err(|_| {
            Error::Internal(format!(
                "subscription {subscription_id}: sealed secret is not text"
            ))
        })?;
        Ok(Zeroizing::new(text.to_string()))
    }
}

/// `sha256=<hex HMAC-SHA256(body, secret)>`: the `X-Shedu-Signature` header value of every signed request
/// shedu sends (event deliveries, rotation's `http` executor).
pub fn signature(secret: &str, body: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

/// The associated data a subscription's secret is sealed with: a sealed secret moved to another row does
/// not open.
pub(crate) fn secret_context(subscription_id: &str) -> Vec<u8> {
    format!("shedu-webhook-secret-v1:{subscription_id}").into_bytes()
}

/// The HTTP client of every webhook: connects only to addresses the policy permits, follows no redirect,
/// uses no proxy. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WebhookClient {
    http: reqwest::Client,
    policy: Arc<TargetPolicy>,
}

impl WebhookClient {
    pub(crate) fn new(
        policy: Arc<TargetPolicy>,
        timeout: Option<Duration>,
    ) -> Result<WebhookClient, Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver(policy.clone())))
            .user_agent(concat!("shedu/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Internal(format!("webhook HTTP client: {e}")))?;
        Ok(WebhookClient { http, policy })
    }

    /// A POST to `url`, or why the URL may not be called (not http(s), or a literal address the policy
    /// refuses; names are checked when they are resolved, at the connection).
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, String> {
        let parsed = parse_url(url)?;
        if let Some(ip) = host_ip(&parsed) {
            self.policy
                .judge(ip)
                .map_err(|kind| format!("target {ip} refused: a {kind} address"))?;
        }
        Ok(self.http.post(parsed))
    }
}

/// Why [`read_capped`] gave up.
#[derive(Debug)]
pub(crate) enum CappedRead {
    /// More than this many bytes, announced or received.
    TooLarge(usize),
    /// The connection failed while reading.
    Failed(String),
}

impl std::fmt::Display for CappedRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CappedRead::TooLarge(max) => write!(f, "larger than {max} bytes"),
            CappedRead::Failed(why) => f.write_str(why),
        }
    }
}

/// The body of an answer shedu asked for as a client (an approval webhook's reply, an OIDC provider's
/// JWKS, an ACME http-01 answer), read chunk by chunk and refused past `max` bytes, announced or received,
/// so that the other end cannot fill the server's memory.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, CappedRead> {
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Err(CappedRead::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| CappedRead::Failed(e.to_string()))?
    {
        if body.len() + chunk.len() > max {
            return Err(CappedRead::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} must be an http(s) URL"));
    }
    Ok(parsed)
}

/// The address a URL's host is written as, if it is one (the URL parser already normalised `0x7f.1` and
/// friends to dotted quads).
fn host_ip(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Resolves a name once and hands the connector only the addresses the policy permits.
struct PolicyResolver(Arc<TargetPolicy>);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                addrs.into_iter().partition(|a| policy.permits(a.ip()));
            if allowed.is_empty() {
                let why = match refused.first() {
                    Some(a) => format!(
                        "{host} resolves to {}, a {} address: target refused",
                        a.ip(),
                        policy.judge(a.ip()).err().unwrap_or("refused")
                    ),
                    None => format!("{host} has no address"),
                };
                return Err(why.into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(addrs)
        })
    }
}

/// The IPv4 address an IPv6 address stands for (IPv4-mapped `::ffff:a.b.c.d`), else the address itself.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Why `ip` is not a globally routable unicast address, or `None` when it is.
fn non_global(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => non_global_v4(v4),
        IpAddr::V6(v6) => non_global_v6(v6),
    }
}

fn non_global_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = if ip.is_unspecified() || a == 0 {
        "unspecified (0.0.0.0/8)"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_link_local() {
        "link-local (169.254/16, cloud metadata)"
    } else if ip.is_private() {
        "private"
    } else if a == 100 && (b & 0xc0) == 64 {
        "shared (CGNAT 100.64/10)"
    } else if ip.is_broadcast() {
        "broadcast"
    } else if ip.is_multicast() {
        "multicast"
    } else if a >= 240 {
        "reserved (240/4)"
    } else if ip.is_documentation() {
        "documentation"
    } else if a == 198 && (b & 0xfe) == 18 {
        "benchmarking (198.18/15)"
    } else if a == 192 && b == 0 && c == 0 {
        "IETF protocol assignment (192.0.0/24)"
    } else {
        return None;
    };
    Some(kind)
}

fn non_global_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let kind = if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_multicast() {
        "multicast"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "link-local (fe80::/10)"
    } else if (s[0] & 0xffc0) == 0xfec0 {
        "site-local (fec0::/10)"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "unique local (fc00::/7)"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation"
    } else if s[..6] == [0; 6] {
        // `::a.b.c.d`, the deprecated IPv4-compatible form.
        "IPv4-compatible"
    } else if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
        return non_global_v4(embedded_v4(s[6], s[7]));
    } else if s[0] == 0x2002 {
        // 6to4 (2002::/16) reaches the embedded IPv4 address.
        return non_global_v4(embedded_v4(s[1], s[2]));
    } else if s[0] == 0x2001 && s[1] == 0 {
        "Teredo (2001::/32)"
    } else if s[0] == 0x0100 && s[1..4] == [0; 3] {
        "discard-only (100::/64)"
    } else {
        return None;
    };
    Some(kind)
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_every_non_global_range() {
        let p = TargetPolicy::default();
        for bad in [
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "169.254.169.254",
            "fe80::1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "fc00::1",
            "fd12:3456::1",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "240.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.2.1",
            "198.18.0.1",
            "192.0.0.8",
            "2001:db8::1",
            // IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms of refused IPv4 addresses.
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2001:0:1::1",
        ] {
            assert!(p.judge(ip(bad)).is_err(), "{bad} must be refused");
        }
        for good in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(p.judge(ip(good)).is_ok(), "{good} must be permitted");
        }
        assert_eq!(
            p.judge(ip("169.254.169.254")),
            Err("link-local (169.254/16, cloud metadata)")
        );
    }

    #[test]
    fn the_allow_list_opens_exactly_its_blocks() {
        let p = TargetPolicy::new(vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.20.0.0/16".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
        ]);
        assert!(p.permits(ip("127.0.0.1")));
        assert!(
            p.permits(ip("::ffff:127.0.0.1")),
            "mapped form of an allowed address"
        );
        assert!(!p.permits(ip("127.0.0.2")));
        assert!(!p.permits(ip("::1")));
        assert!(p.permits(ip("10.20.255.1")));
        assert!(!p.permits(ip("10.21.0.1")));
        assert!(p.permits(ip("fd00::5")));
        assert!(!p.permits(ip("fc00::5")));
        assert!(!p.permits(ip("169.254.169.254")));
    }

    #[test]
    fn cidrs_parse_strictly() {
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains(ip("10.0.0.1"))
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "example.com",
            "10.0.0/8",
            "10.0.0.0/x",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_by_literal_address_and_by_resolved_name() {
        let p = TargetPolicy::default();
        for (url, needle) in [
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("http://127.0.0.1:5432/", "127.0.0.1"),
            ("http://[::1]/x", "::1"),
            ("http://0x7f.1/x", "127.0.0.1"),
            ("http://10.0.0.7/hook", "10.0.0.7"),
            ("http://localhost:8080/hook", "localhost resolves to"),
        ] {
            match p.check_url("url", url).await {
                Err(Error::Invalid { code, detail }) => {
                    assert_eq!(code, TARGET_REFUSED, "{url}");
                    assert!(detail.contains(needle), "{url}: {detail}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        assert!(matches!(
            p.check_url("url", "ftp://93.184.216.34/").await,
            Err(Error::Invalid {
                code: "invalid-webhook",
                ..
            })
        ));
        assert!(
            p.check_url("url", "https://93.184.216.34/hook")
                .await
                .is_ok()
        );
        let client = WebhookClient::new(Arc::new(p), None).unwrap();
        assert!(
            client
                .post("http://127.0.0.1:9/")
                .unwrap_err()
                .contains("loopback")
        );
        assert!(client.post("http://93.184.216.34/").is_ok());
    }

    #[test]
    fn sealed_secrets_are_bound_to_their_subscription() {
        let w = Webhooks::new(&MasterKey::generate(), TargetPolicy::default()).unwrap();
        let sealed = w.seal_secret("sub-1", "hunter2").unwrap();
        assert!(!sealed.windows(7).any(|x| x == b"hunter2"));
        assert_eq!(w.open_secret("sub-1", &sealed).unwrap().as_str(), "hunter2");
        assert!(w.open_secret("sub-2", &sealed).is_err());
    }
}
