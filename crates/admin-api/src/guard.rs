//! What keeps a web browser away from the admin planes (the gateway's admin API, serve's admin
//! listener). Our clients (`factory deploy`, the loop, the server's deployments page, curl) are
//! not browsers: they send no `Origin` and no `Sec-Fetch-*` headers, and send their bodies as
//! `application/json`. A page the operator opens, though, can make the browser post to
//! `127.0.0.1` — a `text/plain` or form body needs no CORS preflight, and the answer need not be
//! readable for the switch to have happened — or rebind its own host name to `127.0.0.1` and
//! then call the plane as "same-origin". So every admin request is refused, before its token is
//! looked at or its body read, when:
//!
//! - it carries `Origin` (browsers send it on every cross-origin request and on every
//!   non-GET one), or `Sec-Fetch-Site` other than `none` (typed in the address bar) or
//!   `same-origin` (`same-site` includes every other port of `localhost`): 403;
//! - the plane has no token and its `Host` (or HTTP/2 `:authority`) is not an IP literal or
//!   `localhost` (DNS rebinding): 403. With tokens the host is not checked — a rebinding page
//!   does not know the token, and a Kubernetes Service name is a legitimate host there;
//! - it has a `Content-Type` other than `application/json`, or a body without one: 415 (no
//!   CORS-safelisted type — `text/plain`, forms, multipart — is taken).
//!
//! Each plane answers the refusal in its own error format ([`ErrorReply`]).

use reqwest::header::{HeaderMap, CONTENT_TYPE, HOST, ORIGIN};
use reqwest::StatusCode;
use std::net::IpAddr;

use crate::ErrorReply;

/// An admin request refused by [`check`]: the status and the plane's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub reply: ErrorReply,
}

/// What [`check`] needs to know of one request besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The request URI's authority (HTTP/2 `:authority`, or an absolute-form HTTP/1 target).
    pub authority: Option<&'a str>,
    /// Whether a body may follow the head (not known to be empty).
    pub has_body: bool,
    /// Whether the plane runs without tokens (then only a loopback-bound listener), which
    /// makes the Host check apply.
    pub tokenless: bool,
}

/// `None` when the request may go on to the plane's authentication; the refusal otherwise.
pub fn check(headers: &HeaderMap, req: Request<'_>) -> Option<Refusal> {
    let refuse = |status, error: String| Some(Refusal { status, reply: ErrorReply { error } });
    if let Some(origin) = headers.get(ORIGIN) {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "requests from web pages are refused (Origin: {}): the admin API takes calls from \
                 factory deploy, the loop or curl",
                shown(origin.as_bytes())
            ),
        );
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"none" | b"same-origin") {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("requests from web pages are refused (Sec-Fetch-Site: {})", shown(site.as_bytes())),
            );
        }
    }
    if req.tokenless {
        let hosts = headers.get_all(HOST).iter().map(|h| h.as_bytes()).chain(req.authority.map(str::as_bytes));
        for host in hosts {
            if !local_host(host) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    format!(
                        "host {} is refused: an admin API without a token answers only to an IP address or \
                         localhost (DNS rebinding)",
                        shown(host)
                    ),
                );
            }
        }
    }
    match headers.get(CONTENT_TYPE) {
        Some(ct) if !is_json(ct.as_bytes()) => refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {} is refused: send application/json", shown(ct.as_bytes())),
        ),
        None if req.has_body => {
            refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "a request body needs Content-Type: application/json".into())
        }
        _ => None,
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else { return false };
    let essence = text.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// An IP literal (IPv6 in brackets) or `localhost`, with or without a port.
fn local_host(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else { return false };
    let host = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.strip_prefix(':').is_some_and(valid_port) => {
                return ip.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        },
        None => match text.rsplit_once(':') {
            Some((h, port)) if valid_port(port) => h,
            Some(_) => return false,
            None => text,
        },
    };
    host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.") || host.parse::<IpAddr>().is_ok()
}

fn valid_port(p: &str) -> bool {
    p.parse::<u16>().is_ok()
}

/// A header value as it may appear in a message: lossy UTF-8, quoted, cut by [`crate::shown`].
fn shown(value: &[u8]) -> String {
    format!("{:?}", crate::shown(&String::from_utf8_lossy(value), 100))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_headers(headers: &[(&str, &str)], has_body: bool, tokenless: bool) -> Option<u16> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        check(&h, Request { authority: None, has_body, tokenless }).map(|r| r.status.as_u16())
    }

    #[test]
    fn our_clients_pass() {
        let json = [("host", "127.0.0.1:50049"), ("content-type", "application/json")];
        assert_eq!(check_headers(&json, true, true), None);
        assert_eq!(check_headers(&[("host", "localhost:8081")], false, true), None);
        assert_eq!(
            check_headers(&[("host", "[::1]:8081"), ("content-type", "application/json; charset=utf-8")], true, true),
            None
        );
        assert_eq!(check_headers(&[("host", "LOCALHOST")], false, true), None);
        assert_eq!(check_headers(&[], false, true), None);
        // With tokens, a Service name is a fine host.
        assert_eq!(check_headers(&[("host", "gateway-admin:50049")], false, false), None);
        // Typed in the address bar.
        assert_eq!(check_headers(&[("host", "127.0.0.1:50049"), ("sec-fetch-site", "none")], false, true), None);
    }

    #[test]
    fn browsers_are_refused() {
        let evil = [("host", "127.0.0.1:50049"), ("origin", "http://evil.example"), ("content-type", "text/plain")];
        assert_eq!(check_headers(&evil, true, true), Some(403));
        assert_eq!(check_headers(&evil, true, false), Some(403));
        assert_eq!(check_headers(&[("origin", "null")], false, false), Some(403));
        assert_eq!(check_headers(&[("sec-fetch-site", "cross-site")], false, false), Some(403));
        assert_eq!(check_headers(&[("sec-fetch-site", "same-site")], false, false), Some(403));
    }

    #[test]
    fn rebound_hosts_are_refused_without_tokens() {
        for host in
            ["evil.example", "evil.example:50049", "127.0.0.1.nip.io", "localhost.evil", "[::1", "[::1]80", "1.2.3.4:x"]
        {
            assert_eq!(check_headers(&[("host", host)], false, true), Some(403), "{host}");
            assert_eq!(check_headers(&[("host", host)], false, false), None, "{host}");
        }
        let h = HeaderMap::new();
        let r = check(&h, Request { authority: Some("evil.example:1"), has_body: false, tokenless: true });
        assert_eq!(r.map(|r| r.status.as_u16()), Some(403));
    }

    #[test]
    fn bodies_must_be_json() {
        for ct in
            ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"]
        {
            assert_eq!(check_headers(&[("content-type", ct)], true, false), Some(415), "{ct}");
            assert_eq!(check_headers(&[("content-type", ct)], false, false), Some(415), "{ct}");
        }
        assert_eq!(check_headers(&[], true, false), Some(415));
        assert_eq!(check_headers(&[], false, false), None);
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, "x".repeat(5000).parse().unwrap());
        let r = check(&h, Request { authority: None, has_body: false, tokenless: false }).unwrap();
        assert!(r.reply.error.len() < 300, "{}", r.reply.error);
    }
}
