//! Whether the web UI's cookies carry the `Secure` attribute (setting `web.cookie_secure`).
//! A browser drops a `Secure` cookie sent over plain HTTP to any host but localhost, so
//! always marking them would make logging in impossible at `http://label.internal:8081`;
//! never marking them would let a cookie of a TLS site leak over plain HTTP. `auto` marks
//! them exactly when the visitor's connection is TLS, which this service (plain HTTP
//! itself) learns only from `X-Forwarded-Proto` sent by a proxy it trusts. This module
//! decides and marks; it must not set cookies of its own.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// `web.cookie_secure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CookieSecure {
    /// `Secure` when the visitor's connection is TLS: never for a direct connection (the
    /// service speaks plain HTTP), and for a trusted proxy's request when it says
    /// `X-Forwarded-Proto: https`.
    #[default]
    Auto,
    /// Always `Secure` (behind a TLS proxy that does not send `X-Forwarded-Proto`).
    Always,
    /// Never `Secure` (plain HTTP on a trusted network only).
    Never,
}

/// The web UI's settings (`web.*`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// When the session and form cookies are `Secure`.
    pub cookie_secure: CookieSecure,
    /// Addresses (`10.0.0.7`) or networks (`10.0.0.0/8`) of proxies whose
    /// `X-Forwarded-Proto` is believed: a list, or one comma-separated string (as an
    /// environment variable gives). Empty: the header is ignored, since any client can
    /// send it.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
}

/// A list of networks or addresses, or one string of them separated by commas.
fn networks<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        List(Vec<String>),
        Text(String),
    }
    let words: Vec<String> = match Given::deserialize(deserializer)? {
        Given::List(list) => list,
        Given::Text(text) => text.split(',').map(str::to_owned).collect(),
    };
    words
        .iter()
        .map(|word| word.trim())
        .filter(|word| !word.is_empty())
        .map(|word| {
            word.parse::<IpNet>()
                .or_else(|_| word.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{word}` is neither an IP address nor a network such as 10.0.0.0/8"
                    ))
                })
        })
        .collect()
}

impl WebSettings {
    /// Whether a request from `peer` with `headers` gets `Secure` cookies.
    pub fn secure(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> bool {
        match self.cookie_secure {
            CookieSecure::Always => true,
            CookieSecure::Never => false,
            CookieSecure::Auto => {
                let trusted = peer.is_some_and(|ip| {
                    let ip = ip.to_canonical();
                    self.trusted_proxies.iter().any(|net| net.contains(&ip))
                });
                trusted && forwarded_https(headers)
            }
        }
    }
}

/// Whether `X-Forwarded-Proto` says the client's connection was TLS. A proxy chain appends
/// to the header; the first value is the client's.
fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Middleware: adds `; Secure` to every `Set-Cookie` of the response when the request is
/// to get secure cookies.
pub async fn mark_secure(
    State(settings): State<std::sync::Arc<WebSettings>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let secure = settings.secure(peer, request.headers());
    let mut response = next.run(request).await;
    if secure {
        let headers = response.headers_mut();
        let marked: Vec<HeaderValue> = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| {
                let mut bytes = value.as_bytes().to_vec();
                bytes.extend_from_slice(b"; Secure");
                HeaderValue::from_bytes(&bytes).ok()
            })
            .collect();
        headers.remove(SET_COOKIE);
        for value in marked {
            headers.append(SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: CookieSecure, proxies: &[&str]) -> WebSettings {
        WebSettings {
            cookie_secure: mode,
            trusted_proxies: proxies
                .iter()
                .map(|p| p.parse().expect("a network"))
                .collect(),
        }
    }

    fn https() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers
    }

    #[test]
    fn auto_is_secure_only_for_https_said_by_a_trusted_proxy() {
        let auto = settings(CookieSecure::Auto, &["10.0.0.0/8", "192.168.1.5/32"]);
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let stranger: IpAddr = "203.0.113.9".parse().expect("ip");
        assert!(auto.secure(Some(proxy), &https()));
        assert!(auto.secure(Some("::ffff:192.168.1.5".parse().expect("ip")), &https()));
        assert!(!auto.secure(Some(proxy), &HeaderMap::new()), "plain HTTP");
        assert!(
            !auto.secure(Some(stranger), &https()),
            "anyone can send the header"
        );
        assert!(!auto.secure(None, &https()));
        let mut chain = HeaderMap::new();
        chain.insert("x-forwarded-proto", HeaderValue::from_static("http, https"));
        assert!(
            !auto.secure(Some(proxy), &chain),
            "the client's hop was plain"
        );
    }

    #[test]
    fn always_and_never_ignore_the_request() {
        assert!(settings(CookieSecure::Always, &[]).secure(None, &HeaderMap::new()));
        let never = settings(CookieSecure::Never, &["0.0.0.0/0"]);
        assert!(!never.secure(Some("10.0.0.1".parse().expect("ip")), &https()));
    }

    #[test]
    fn the_setting_reads_from_text() {
        let parsed: WebSettings = serde_json::from_value(serde_json::json!({
            "cookie_secure": "never",
            "trusted_proxies": ["10.0.0.0/8", "127.0.0.1/32"]
        }))
        .expect("parses");
        assert_eq!(parsed.cookie_secure, CookieSecure::Never);
        assert_eq!(parsed.trusted_proxies.len(), 2);
        let text: WebSettings = serde_json::from_value(serde_json::json!({
            "trusted_proxies": "10.0.0.7, fd00::/8"
        }))
        .expect("a comma-separated string parses");
        assert_eq!(text.cookie_secure, CookieSecure::Auto);
        assert!(text.secure(Some("10.0.0.7".parse().expect("ip")), &https()));
        assert!(!text.secure(Some("10.0.0.8".parse().expect("ip")), &https()));
        assert!(
            serde_json::from_value::<WebSettings>(serde_json::json!({"trusted_proxies": ["nope"]}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<WebSettings>(serde_json::json!({"cookie_secure": "yes"}))
                .is_err()
        );
    }
}
