//! Where a webhook may be sent (SSRF): `https` only in production; an address is checked at
//! registration when the URL holds one, and every resolved address at every delivery (a name
//! may point elsewhere later). Loopback, private, shared (CGNAT) and unique-local ranges only
//! with `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`; link-local (cloud metadata lives there),
//! unspecified, broadcast, multicast and documentation addresses never.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

use crate::config::WebhooksConfig;
use crate::domain::Invalid;

/// The longest endpoint URL.
pub const URL_MAX: usize = 2048;

/// Why an address is refused, or `None` when a webhook may go there.
pub fn refused(ip: IpAddr, cfg: &WebhooksConfig) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let (never, private) = match ip {
        IpAddr::V4(v4) => (never_v4(v4), private_v4(v4)),
        IpAddr::V6(v6) => (never_v6(v6), private_v6(v6)),
    };
    if never {
        Some("link-local, metadata, unspecified, broadcast, multicast or reserved addresses are never webhook targets")
    } else if private && !cfg.allow_private_targets {
        Some("loopback and private addresses are not webhook targets (WEBHOOK_ALLOW_PRIVATE_TARGETS)")
    } else {
        None
    }
}

fn never_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || o[0] >= 240
        // Alibaba Cloud's metadata address sits outside link-local.
        || ip == Ipv4Addr::new(100, 100, 100, 200)
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback() || ip.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64)
}

fn never_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xffc0) == 0xfe80
        // AWS's IPv6 metadata address (fd00:ec2::254).
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        || (s[0] == 0x2001 && s[1] == 0xdb8)
}

fn private_v6(ip: Ipv6Addr) -> bool {
    ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00
}

/// A URL as registered: absolute `https` (or `http` outside production), a host, no
/// credentials, and no refused address when it holds one.
pub fn check_url(field: &str, raw: &str, cfg: &WebhooksConfig) -> Result<Url, Invalid> {
    let raw = raw.trim();
    if raw.len() > URL_MAX {
        return Err(Invalid::new(
            field,
            "too_long",
            "The URL is longer than 2048 characters",
        ));
    }
    let url = Url::parse(raw)
        .map_err(|_| Invalid::new(field, "invalid_format", "Not an absolute URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if !cfg.https_only => {}
        _ => {
            return Err(Invalid::new(
                field,
                "insecure_scheme",
                if cfg.https_only {
                    "Webhook URLs must be https"
                } else {
                    "Webhook URLs must be http or https"
                },
            ))
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::new(
            field,
            "credentials_in_url",
            "A webhook URL may not hold credentials",
        ));
    }
    let literal = match url.host() {
        None => return Err(Invalid::new(field, "invalid_format", "The URL has no host")),
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(Host::Domain(_)) => None,
    };
    if let Some(reason) = literal.and_then(|ip| refused(ip, cfg)) {
        return Err(Invalid::new(field, "address_not_allowed", reason));
    }
    Ok(url)
}

/// The address a delivery connects to: the first resolved one, each of them checked (a name
/// with any refused address is refused: a rebinding name would pick it later).
pub async fn resolve(url: &Url, cfg: &WebhooksConfig) -> Result<SocketAddr, String> {
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(v4)) => vec![SocketAddr::new(IpAddr::V4(v4), port)],
        Some(Host::Ipv6(v6)) => vec![SocketAddr::new(IpAddr::V6(v6), port)],
        Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| format!("{name} did not resolve: {e}"))?
            .collect(),
        None => return Err("the URL has no host".into()),
    };
    let first = *addrs.first().ok_or("the name resolved to no address")?;
    for a in &addrs {
        if let Some(reason) = refused(a.ip(), cfg) {
            return Err(format!("refused {}: {reason}", a.ip()));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(allow_private: bool, https_only: bool) -> WebhooksConfig {
        WebhooksConfig {
            allow_private_targets: allow_private,
            https_only,
        }
    }

    #[test]
    fn metadata_and_link_local_are_never_targets_private_only_when_allowed() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for never in [
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "100.100.100.200",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "224.0.0.1",
        ] {
            assert!(refused(ip(never), &cfg(true, false)).is_some(), "{never}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.10",
            "172.16.5.4",
            "100.64.0.1",
            "::1",
            "fd12::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                refused(ip(private), &cfg(false, false)).is_some(),
                "{private}"
            );
            assert!(
                refused(ip(private), &cfg(true, false)).is_none(),
                "{private}"
            );
        }
        assert!(refused(ip("93.184.216.34"), &cfg(false, true)).is_none());
        assert!(refused(ip("2606:4700::1111"), &cfg(false, true)).is_none());
    }

    #[test]
    fn urls_are_https_in_production_without_credentials_or_refused_literals() {
        assert!(check_url("url", "https://erp.example.cl/hooks", &cfg(false, true)).is_ok());
        let e = check_url("url", "http://erp.example.cl/hooks", &cfg(false, true)).unwrap_err();
        assert_eq!(e.details[0].issue, "insecure_scheme");
        assert!(check_url("url", "http://erp.example.cl/hooks", &cfg(false, false)).is_ok());
        let e = check_url("url", "https://u:p@erp.example.cl/", &cfg(false, false)).unwrap_err();
        assert_eq!(e.details[0].issue, "credentials_in_url");
        let e = check_url(
            "url",
            "http://169.254.169.254/latest/meta-data",
            &cfg(true, false),
        )
        .unwrap_err();
        assert_eq!(e.details[0].issue, "address_not_allowed");
        let e = check_url("url", "http://[::1]:8080/", &cfg(false, false)).unwrap_err();
        assert_eq!(e.details[0].issue, "address_not_allowed");
        assert!(check_url("url", "ftp://erp.example.cl/", &cfg(false, false)).is_err());
    }
}
