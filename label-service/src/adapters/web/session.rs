//! The browser session and the CSRF tokens of the web UI. The session cookie holds the
//! API's JWT; a form's token is an HMAC-SHA256 of that JWT (or, before logging in, of a
//! random nonce kept in its own cookie) under a key derived from the JWT secret, so a page
//! of another site can neither read nor forge it. It must not log a token or a cookie.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use rand::Rng as _;
use sha2::Sha256;

use super::WebState;
use crate::app::{Actor, AppError, PasswordHasher, Store};

/// The cookie of the session (the JWT).
pub const SESSION_COOKIE: &str = "label_session";
/// The cookie of a visitor who has not logged in yet (a random nonce for the CSRF token).
pub const GUEST_COOKIE: &str = "label_guest";
/// The hidden field of every state-changing form.
pub const CSRF_FIELD: &str = "csrf";

/// A logged-in visitor: the acting user, read from the store now, and their form token.
#[derive(Debug, Clone)]
pub struct Session {
    pub actor: Actor,
    pub csrf: String,
}

/// The session of a page that needs one, as an extractor: a visitor without one is sent to
/// the log-in page before the handler runs. (Forms check their token with
/// `WebState::require_form`, which needs the body.)
#[derive(Debug)]
pub struct LoggedIn(pub Session);

impl<S: Store, P: PasswordHasher> FromRequestParts<WebState<S, P>> for LoggedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState<S, P>,
    ) -> Result<Self, Self::Rejection> {
        state.require(&parts.headers).await.map(LoggedIn)
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value: HTTP-only, same-site strict, for the whole site. `Secure` is added
/// by `cookies::mark_secure` when the request's connection calls for it.
pub fn set_cookie(name: &str, value: &str, max_age_seconds: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age_seconds}; HttpOnly; SameSite=Strict"
    ))
    .expect("cookie values are URL-safe text")
}

/// A response with the session cookie removed.
pub fn clear_session(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(SESSION_COOKIE, "gone", 0));
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl<S: Store, P: PasswordHasher> WebState<S, P> {
    fn mac(&self, purpose: &str, subject: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.csrf_key).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"|");
        mac.update(subject.as_bytes());
        mac
    }

    /// The form token of `subject` (a JWT or a guest nonce).
    pub(super) fn csrf_token(&self, purpose: &str, subject: &str) -> String {
        hex(&self.mac(purpose, subject).finalize().into_bytes())
    }

    /// Whether `token` is the form token of `subject`, compared in constant time.
    pub(super) fn csrf_matches(&self, purpose: &str, subject: &str, token: &str) -> bool {
        unhex(token).is_some_and(|bytes| self.mac(purpose, subject).verify_slice(&bytes).is_ok())
    }

    /// The visitor's session, or `None` without a good session cookie.
    pub(super) async fn session(&self, headers: &HeaderMap) -> Result<Option<Session>, AppError> {
        let Some(token) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let Ok(user) = self.tokens.verify(token) else {
            return Ok(None);
        };
        match self.label.actor(user).await {
            Ok(actor) => Ok(Some(Session {
                actor,
                csrf: self.csrf_token("session", token),
            })),
            Err(AppError::Unauthenticated { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The visitor's session, or the response to send instead: the log-in page for a
    /// visitor without one, the error page when the store cannot be read.
    pub(super) async fn require(&self, headers: &HeaderMap) -> Result<Session, Response> {
        match self.session(headers).await {
            Ok(Some(session)) => Ok(session),
            Ok(None) => Err(clear_session(Redirect::to("/login"))),
            Err(err) => Err(self.fail(&err, None)),
        }
    }

    /// The session of a state-changing form: logged in, from this site, with the right
    /// token. Anything else is refused before anything changes.
    pub(super) async fn require_form(
        &self,
        headers: &HeaderMap,
        form: &[(String, String)],
    ) -> Result<Session, Response> {
        let session = self.require(headers).await?;
        let token = cookie(headers, SESSION_COOKIE).unwrap_or_default();
        let sent = field(form, CSRF_FIELD).unwrap_or_default();
        if !same_origin(headers) || !self.csrf_matches("session", token, sent) {
            tracing::warn!(
                user_id = session.actor.user.id.get(),
                "a form without a good CSRF token"
            );
            return Err(self.csrf_refused(Some(&session)));
        }
        Ok(session)
    }

    /// The guest nonce of this visitor, and the cookie to set when it is new.
    pub(super) fn guest_nonce(&self, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
        match cookie(headers, GUEST_COOKIE) {
            Some(nonce) if nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit()) => {
                (nonce.to_owned(), None)
            }
            _ => {
                let nonce = hex(&rand::rng().random::<[u8; 16]>());
                let set = set_cookie(GUEST_COOKIE, &nonce, 24 * 3600);
                (nonce, Some(set))
            }
        }
    }

    /// The refusal of a guest form (log in, register) that did not come from this site with
    /// its token; `None` when it did. A browser that sent no cookie at all is told why, not
    /// that the form expired.
    pub(super) fn guest_form_refusal(
        &self,
        headers: &HeaderMap,
        form: &[(String, String)],
    ) -> Option<Response> {
        let Some(nonce) = cookie(headers, GUEST_COOKIE) else {
            if same_origin(headers) && cookie(headers, SESSION_COOKIE).is_none() {
                tracing::warn!("a guest form without the guest cookie: the browser refused it");
                return Some(self.cookie_refused());
            }
            return Some(self.csrf_refused(None));
        };
        let sent = field(form, CSRF_FIELD).unwrap_or_default();
        if same_origin(headers) && self.csrf_matches("guest", nonce, sent) {
            None
        } else {
            Some(self.csrf_refused(None))
        }
    }
}

/// The first value of form field `name`.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// False when the browser says the form came from another origin. Browsers send `Origin`
/// on every cross-site POST; a request without one (curl, old clients) still needs the
/// token.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = [0_u8, 1, 171, 255];
        assert_eq!(hex(&bytes), "0001abff");
        assert_eq!(unhex("0001abff"), Some(bytes.to_vec()));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; label_session=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, GUEST_COOKIE), None);
    }

    #[test]
    fn a_foreign_origin_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&headers));
    }
}
