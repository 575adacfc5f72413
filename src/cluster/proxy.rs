//! Which proxy, if any, carries the connection to the API server, decided as kubectl decides.
//!
//! client-go uses the kubeconfig's `proxy-url` when set (NO_PROXY does not apply to it), else
//! `http.ProxyFromEnvironment`: `HTTPS_PROXY` for an https server (`HTTP_PROXY` for http, no
//! fallback between them), never for `localhost` or a loopback address, and not for hosts
//! that `NO_PROXY` matches (golang.org/x/net/http/httpproxy `config.useProxy`: `*`, IPs, CIDRs,
//! domain suffixes with an optional port). kube carries the chosen URL (its `http-proxy` and
//! `socks5` features do the CONNECT / SOCKS5 handshake).

use std::net::IpAddr;

/// The proxy URL for `server`, or `None` for a direct connection.
///
/// # Errors
/// A message when the chosen proxy URL cannot be parsed or has a scheme kubectl refuses.
pub fn choose(
    server: &http::Uri,
    kubeconfig_proxy: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<http::Uri>, String> {
    if let Some(raw) = kubeconfig_proxy.map(str::trim).filter(|p| !p.is_empty()) {
        let uri: http::Uri = raw.parse().map_err(|_| {
            format!(
                "the kubeconfig's proxy-url {} is not a URL",
                super::redact::url(raw)
            )
        })?;
        return match uri.scheme_str() {
            Some("http" | "https" | "socks5") => Ok(Some(uri)),
            _ => Err(format!(
                "the kubeconfig's proxy-url {} must use http, https or socks5",
                super::redact::url(raw)
            )),
        };
    }
    let get = |upper: &str, lower: &str| {
        env(upper)
            .filter(|v| !v.is_empty())
            .or_else(|| env(lower))
            .filter(|v| !v.is_empty())
    };
    let raw = match server.scheme_str() {
        Some("https") => get("HTTPS_PROXY", "https_proxy"),
        Some("http") => get("HTTP_PROXY", "http_proxy"),
        _ => None,
    };
    let Some(raw) = raw else { return Ok(None) };
    let host = server
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = server
        .port_u16()
        .unwrap_or(if server.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    let no_proxy = get("NO_PROXY", "no_proxy").unwrap_or_default();
    if !use_proxy(host, port, &no_proxy) {
        return Ok(None);
    }
    // Go accepts a proxy without a scheme as http://.
    let with_scheme = if raw.contains("://") {
        raw.clone()
    } else {
        format!("http://{raw}")
    };
    let uri: http::Uri = with_scheme.parse().map_err(|_| {
        format!(
            "the proxy in $HTTPS_PROXY/$HTTP_PROXY ({}) is not a URL",
            super::redact::url(&raw)
        )
    })?;
    match uri.scheme_str() {
        Some("http" | "https" | "socks5") => Ok(Some(uri)),
        Some("socks5h") => {
            // kube's SOCKS5 connector already lets the proxy resolve names.
            let fixed = with_scheme.replacen("socks5h://", "socks5://", 1);
            fixed
                .parse()
                .map(Some)
                .map_err(|_| "invalid socks5h proxy URL".to_string())
        }
        _ => Err(format!(
            "the proxy in $HTTPS_PROXY/$HTTP_PROXY ({}) must use http, https or socks5",
            super::redact::url(&raw)
        )),
    }
}

/// httpproxy's `useProxy`: whether a request to `host:port` goes through the env proxy.
pub fn use_proxy(host: &str, port: u16, no_proxy: &str) -> bool {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host == "localhost" {
        return false;
    }
    let ip: Option<IpAddr> = host.parse().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    let port = port.to_string();
    for entry in no_proxy.split(',').map(|e| e.trim().to_ascii_lowercase()) {
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return false;
        }
        if let Some((net, bits)) = entry.split_once('/') {
            if let (Ok(net), Ok(bits), Some(ip)) = (net.parse::<IpAddr>(), bits.parse::<u8>(), ip)
                && cidr_contains(net, bits, ip)
            {
                return false;
            }
            continue;
        }
        if let Ok(entry_ip) = entry
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            if ip == Some(entry_ip) {
                return false;
            }
            continue;
        }
        let (entry_host, entry_port) = split_host_port(&entry);
        if let Ok(entry_ip) = entry_host.parse::<IpAddr>() {
            if ip == Some(entry_ip) && entry_port.is_none_or(|p| p == port) {
                return false;
            }
            continue;
        }
        let entry_host = entry_host.strip_prefix('*').unwrap_or(entry_host);
        let (suffix, match_host) = match entry_host.strip_prefix('.') {
            Some(_) => (entry_host.to_string(), false),
            None => (format!(".{entry_host}"), true),
        };
        let matches = host.ends_with(&suffix) || (match_host && host == suffix[1..]);
        if matches && entry_port.is_none_or(|p| p == port) {
            return false;
        }
    }
    true
}

fn split_host_port(entry: &str) -> (&str, Option<&str>) {
    match entry.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => {
            (h, Some(p))
        }
        _ => (entry, None),
    }
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    fn uri(s: &str) -> http::Uri {
        s.parse().unwrap()
    }

    #[test]
    fn kubeconfig_proxy_url_wins_and_ignores_no_proxy() {
        let e = env(&[("HTTPS_PROXY", "http://env:3128"), ("NO_PROXY", "*")]);
        let p = choose(&uri("https://127.0.0.1:6443"), Some("socks5://s:1080"), &e).unwrap();
        assert_eq!(p.unwrap().to_string(), "socks5://s:1080/");
        assert!(choose(&uri("https://a"), Some("ftp://x"), &e).is_err());
    }

    #[test]
    fn env_proxy_by_server_scheme() {
        let e = env(&[("https_proxy", "proxy:3128"), ("HTTP_PROXY", "http://plain:80")]);
        let p = choose(&uri("https://api.example.com"), None, &e).unwrap();
        assert_eq!(p.unwrap().to_string(), "http://proxy:3128/");
        let p = choose(&uri("http://api.example.com"), None, &e).unwrap();
        assert_eq!(p.unwrap().to_string(), "http://plain:80/");
        let only_http = env(&[("HTTP_PROXY", "http://plain:80")]);
        assert!(
            choose(&uri("https://api.example.com"), None, &only_http)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn loopback_and_localhost_are_never_proxied() {
        assert!(!use_proxy("127.0.0.1", 6443, ""));
        assert!(!use_proxy("::1", 6443, ""));
        assert!(!use_proxy("localhost", 6443, ""));
        assert!(use_proxy("10.0.0.1", 6443, ""));
    }

    #[test]
    fn no_proxy_rules_as_go() {
        assert!(!use_proxy("api.example.com", 443, "*"));
        assert!(!use_proxy("api.example.com", 443, "example.com"));
        assert!(!use_proxy("example.com", 443, "example.com"));
        assert!(!use_proxy("api.example.com", 443, ".example.com"));
        assert!(use_proxy("example.com", 443, ".example.com"));
        assert!(!use_proxy("api.example.com", 443, "*.example.com"));
        assert!(use_proxy("notexample.com", 443, "example.com"));
        assert!(!use_proxy("api.example.com", 6443, "example.com:6443"));
        assert!(use_proxy("api.example.com", 443, "example.com:6443"));
        assert!(!use_proxy("10.1.2.3", 443, "10.0.0.0/8"));
        assert!(use_proxy("11.1.2.3", 443, "10.0.0.0/8"));
        assert!(!use_proxy("10.1.2.3", 443, "a.com, 10.1.2.3"));
        assert!(!use_proxy("10.1.2.3", 443, ",,10.1.2.3:443"));
        assert!(use_proxy("10.1.2.3", 443, "10.1.2.3:80"));
        assert!(!use_proxy("API.Example.COM", 443, "example.com"));
    }
}
