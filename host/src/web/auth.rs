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
    let a = authority.trim().to_ascii_lowercase();
    if a.starts_with('[') {
        return a.find(']').map_or(a.clone(), |end| a[..=end].to_string());
    }
    match a.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_string(),
        _ => a,
    }
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
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(host_name)
        .or_else(|| request.uri().host().map(host_name))
        .unwrap_or_default();
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
        let name = origin
            .split_once("://")
            .map(|(_, authority)| host_name(authority))
            .unwrap_or_default();
        if !allowed(&name) {
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
