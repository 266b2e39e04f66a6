//! The web edge's checks, before any handler runs: who may ask ([`guard`]: the token), where
//! a request is addressed and which page sent it ([`addressed`]: DNS rebinding, other sites),
//! and what every response tells the browser ([`secure_headers`]).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;

use cookie::{Cookie, SameSite};

use super::error::ApiError;
use super::extract::App;

/// What every response says about how a browser may use it: only this origin's scripts,
/// styles and connections; never inside another site's frame; types as declared.
pub async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}

/// The host name in a `Host` header or an origin's authority, lowercased, without its port.
fn host_name(authority: &str) -> String {
    split_authority(authority).0
}

/// A `Host` header's or an origin's authority as its host name (lowercased) and its port,
/// if it gives one.
fn split_authority(authority: &str) -> (String, Option<u16>) {
    let a = authority.trim().to_ascii_lowercase();
    let (name, port) = if a.starts_with('[') {
        match a.find(']') {
            Some(end) => (a[..=end].to_string(), a[end + 1..].strip_prefix(':')),
            None => (a.clone(), None),
        }
    } else {
        match a.rsplit_once(':') {
            Some((name, port)) => (name.to_string(), Some(port)),
            None => (a.clone(), None),
        }
    };
    match port.map(str::parse::<u16>) {
        Some(Ok(port)) => (name, Some(port)),
        Some(Err(_)) => (a, None),
        None => (name, None),
    }
}

/// Whether a page at `origin` is one this daemon served, to a browser that addressed this
/// request to `host`: a name the daemon answers to (`allowed`), over HTTP at the port the
/// request came to (a port left out is 80), or over HTTPS through a proxy on its default port
/// (the daemon itself speaks HTTP: an `https` origin with a port of its own is another site).
/// Another port or scheme of the same machine is another site.
fn same_origin(origin: &str, host: &str, allowed: impl Fn(&str) -> bool) -> bool {
    let Some((scheme, authority)) = origin.trim().split_once("://") else {
        return false;
    };
    let (origin_name, origin_port) = split_authority(authority);
    let (_, host_port) = split_authority(host);
    let port_matches = match scheme.to_ascii_lowercase().as_str() {
        "http" => origin_port.unwrap_or(80) == host_port.unwrap_or(80),
        "https" => host_port.is_none() && origin_port.is_none_or(|p| p == 443),
        _ => false,
    };
    port_matches && allowed(&origin_name)
}

/// Requests must be addressed to one of the daemon's names, and come from a page of one
/// (when the browser says where from): a web page elsewhere cannot rebind its own name to
/// 127.0.0.1 and drive the daemon, nor open its WebSocket.
pub(super) async fn addressed(
    State(app): State<App>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(hosts) = &app.hosts else {
        return Ok(next.run(request).await);
    };
    let allowed = |name: &str| hosts.iter().any(|h| h == name);
    let authority = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let host = host_name(&authority);
    let refuse = |what: String| ApiError::Misaddressed {
        what,
        names: hosts.join(", "),
    };
    if !allowed(&host) {
        return Err(refuse(format!(
            "a request addressed to '{host}' is refused"
        )));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        if !same_origin(origin, &authority, allowed) {
            return Err(refuse(format!(
                "a request from a page at '{origin}' is refused"
            )));
        }
    }
    Ok(next.run(request).await)
}

/// Name of the cookie that carries the token for a browser.
const TOKEN_COOKIE: &str = "zscope_token";

/// Writes need the token whenever one is set; reads need it from anywhere but loopback.
///
/// The token comes as `Authorization: Bearer T`, or (for a browser, which cannot set headers on
/// its script, fetch and WebSocket requests) once as `?token=T` in the page's URL, after which
/// an HttpOnly, SameSite=Strict cookie carries it.
pub(super) async fn guard(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = &app.token else {
        return Ok(next.run(request).await);
    };
    let write = request.method() != Method::GET && request.method() != Method::HEAD;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .find(|c| c.name() == TOKEN_COOKIE)
        .map(|c| c.value().to_string());
    // As a browser's address bar encodes it (`+` is a space, `%2B` a plus).
    let query = request.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    // Compared in constant time: how long a wrong guess takes says nothing about the token.
    let matches = |given: Option<&str>| {
        given.is_some_and(|g| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                g.as_bytes(),
                token.as_bytes(),
            ))
        })
    };
    let from_query = matches(query.as_deref());
    if !(matches(bearer) || matches(cookie.as_deref()) || from_query)
        && (write || !peer.ip().is_loopback())
    {
        return Err(ApiError::Unauthorized);
    }
    let mut response = next.run(request).await;
    let set = Cookie::build((TOKEN_COOKIE, token.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .build();
    if from_query && let Ok(value) = header::HeaderValue::from_str(&set.encoded().to_string()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_daemons_own_origin_is_its_page() {
        let names = [
            "127.0.0.1",
            "localhost",
            "[::1]",
            "zscope.lan",
            "zscope.example",
        ];
        let allowed = |n: &str| names.contains(&n);
        for (origin, host) in [
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
            ("http://127.0.0.1:8080", "localhost:8080"), // another of its names
            ("http://LOCALHOST:8080", "localhost:8080"),
            ("http://[::1]:8080", "[::1]:8080"),
            ("http://zscope.lan", "zscope.lan"),
            ("http://zscope.lan:80", "zscope.lan"),
            ("https://zscope.example", "zscope.example"), // through a TLS proxy
            ("https://zscope.example:443", "zscope.example"),
        ] {
            assert!(same_origin(origin, host, allowed), "{origin} at {host}");
        }
        for (origin, host) in [
            ("http://localhost:9999", "localhost:8080"),
            ("http://127.0.0.1:9999", "127.0.0.1:8080"),
            ("http://localhost", "localhost:8080"),
            ("https://zscope.lan", "zscope.lan:8080"),
            ("https://127.0.0.1:8080", "127.0.0.1:8080"),
            ("https://zscope.example:8443", "zscope.example"),
            ("http://evil.example:8080", "127.0.0.1:8080"),
            ("null", "127.0.0.1:8080"),
            ("file://", "127.0.0.1:8080"),
            ("ws://127.0.0.1:8080", "127.0.0.1:8080"),
            ("http://[::1]:9999", "[::1]:8080"),
        ] {
            assert!(!same_origin(origin, host, allowed), "{origin} at {host}");
        }
        assert_eq!(split_authority("[::1]:8080"), ("[::1]".into(), Some(8080)));
        assert_eq!(split_authority("Example.COM"), ("example.com".into(), None));
        assert_eq!(host_name("a:b"), "a:b");
    }
}
