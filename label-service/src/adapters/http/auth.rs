//! Authentication of the HTTP API: the settings (`auth` section), JSON Web Tokens (HS256,
//! claims `sub`, `iat`, `exp`) issued at registration and login, and the [`CurrentActor`]
//! extractor that turns `Authorization: Bearer <jwt>` into the acting user, read from the
//! store on every request so that a role change takes effect at once.
//!
//! It must not accept any algorithm but HS256, log a token or a secret, or decide what the
//! actor may do (the use cases decide).

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::errors::ApiError;
use crate::app::{Actor, AppError, PasswordHasher, Store};
use crate::domain::UserId;

/// The secret of development set-ups. Outside development and tests the service refuses to
/// start with it.
pub const DEFAULT_JWT_SECRET: &str = "change-me-development-only";

/// Shortest secret accepted outside development: RFC 7518 (section 3.2) wants an HS256 key
/// of at least the hash's size, 256 bits.
pub const JWT_SECRET_MIN_BYTES: usize = 32;

/// The environments where a weak secret is tolerated.
const RELAXED_ENVIRONMENTS: [&str; 2] = ["development", "test"];

/// The `auth` section of the settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// The HS256 key of the tokens. Never printed.
    // Never serialized: the code-defaults layer of the configuration leaves it out, and
    // the struct's default fills it in.
    #[serde(skip_serializing)]
    pub jwt_secret: SecretString,
    /// How long a token is good for, such as `24h`.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// Login attempts allowed per minute for one e-mail address (0: no limit).
    pub login_per_minute_per_email: u32,
    /// Login attempts allowed per minute from one client address (0: no limit).
    pub login_per_minute_per_address: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: SecretString::from(DEFAULT_JWT_SECRET),
            token_ttl: Duration::from_secs(24 * 3600),
            login_per_minute_per_email: 5,
            login_per_minute_per_address: 20,
        }
    }
}

impl AuthSettings {
    /// Refuses settings that must not run in `environment`: outside `development` and
    /// `test`, an empty secret, the default one, or one shorter than 256 bits; anywhere, a
    /// token time to live of zero. The message names the key at fault.
    pub fn check_for_environment(&self, environment: &str) -> Result<(), String> {
        if self.token_ttl.is_zero() {
            return Err("auth.token_ttl must be longer than 0s".to_owned());
        }
        if RELAXED_ENVIRONMENTS
            .iter()
            .any(|relaxed| environment.eq_ignore_ascii_case(relaxed))
        {
            return Ok(());
        }
        let secret = self.jwt_secret.expose_secret();
        if secret.trim().is_empty() {
            return Err(format!(
                "auth.jwt_secret is empty in environment {environment:?}; set a long random \
                 secret (LABEL__AUTH__JWT_SECRET)"
            ));
        }
        if secret == DEFAULT_JWT_SECRET {
            return Err(format!(
                "auth.jwt_secret is the development default in environment {environment:?}; \
                 set a long random secret (LABEL__AUTH__JWT_SECRET)"
            ));
        }
        if secret.len() < JWT_SECRET_MIN_BYTES {
            return Err(format!(
                "auth.jwt_secret is shorter than {JWT_SECRET_MIN_BYTES} bytes in environment \
                 {environment:?}; HS256 needs a key of 256 bits or more"
            ));
        }
        Ok(())
    }
}

/// The claims of a token: the user id as a string (`sub`, as RFC 7519 wants), and the
/// issue and expiry times in seconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why a token was refused. Kept for the log; the client only hears 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// Issues and verifies the service's tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are the secret: never printed.
        f.debug_struct("Tokens").field("ttl", &self.ttl).finish()
    }
}

impl Tokens {
    /// Keys from the settings' secret, HS256 only, expiry checked to the second.
    pub fn new(settings: &AuthSettings) -> Self {
        let secret = settings.jwt_secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl: settings.token_ttl,
        }
    }

    /// A token for `user`, issued at `now` and good for the configured time to live.
    pub fn issue(&self, user: UserId, now: DateTime<Utc>) -> Result<String, AppError> {
        let ttl = chrono::Duration::from_std(self.ttl)
            .map_err(|err| AppError::Internal(format!("auth.token_ttl: {err}")))?;
        let expires = now
            .checked_add_signed(ttl)
            .ok_or_else(|| AppError::Internal("auth.token_ttl is too long".to_owned()))?;
        let claims = Claims {
            sub: user.to_string(),
            iat: now.timestamp(),
            exp: expires.timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|err| AppError::Internal(format!("signing a token: {err}")))
    }

    /// The user of a good token: signed with our key, HS256, not expired.
    pub fn verify(&self, token: &str) -> Result<UserId, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(err.to_string()),
            })?;
        data.claims
            .sub
            .parse()
            .map_err(|_| TokenError::Invalid("sub is not a user id".to_owned()))
    }

    /// How long a token is good for.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// The acting user of an authenticated request, with their artist or manager record as the
/// store knows them now. A request without a good token is answered 401 `unauthenticated`
/// with `WWW-Authenticate: Bearer`.
#[derive(Debug, Clone)]
pub struct CurrentActor(pub Actor);

impl<S: Store, P: PasswordHasher> FromRequestParts<ApiState<S, P>> for CurrentActor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState<S, P>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        let user = state.tokens.verify(token).map_err(|err| {
            tracing::debug!(reason = %err, "token refused");
            match err {
                TokenError::Expired => {
                    ApiError::unauthenticated("the token has expired; log in again", true)
                }
                TokenError::Invalid(_) => ApiError::unauthenticated("the token is not valid", true),
            }
        })?;
        let actor = state.label.actor(user).await?;
        Ok(Self(actor))
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::unauthenticated(
            "log in and send the token as Authorization: Bearer <token>",
            false,
        )
    };
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secret: &str) -> AuthSettings {
        AuthSettings {
            jwt_secret: SecretString::from(secret),
            ..AuthSettings::default()
        }
    }

    #[test]
    fn a_token_names_its_user_until_it_expires() {
        let tokens = Tokens::new(&settings("a-secret-long-enough-for-hs256-keys!!"));
        let token = tokens.issue(UserId(42), Utc::now()).expect("token");
        assert_eq!(tokens.verify(&token), Ok(UserId(42)));
        let old = tokens
            .issue(UserId(42), Utc::now() - chrono::Duration::hours(25))
            .expect("token");
        assert_eq!(tokens.verify(&old), Err(TokenError::Expired));
    }

    #[test]
    fn another_key_or_another_algorithm_is_refused() {
        let ours = Tokens::new(&settings("a-secret-long-enough-for-hs256-keys!!"));
        let theirs = Tokens::new(&settings("another-secret-long-enough-for-hs256"));
        let token = theirs.issue(UserId(1), Utc::now()).expect("token");
        assert!(matches!(ours.verify(&token), Err(TokenError::Invalid(_))));
        let claims = Claims {
            sub: "1".into(),
            iat: Utc::now().timestamp(),
            exp: Utc::now().timestamp() + 3600,
        };
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(b"a-secret-long-enough-for-hs256-keys!!"),
        )
        .expect("token");
        assert!(matches!(ours.verify(&hs512), Err(TokenError::Invalid(_))));
        // `alg: none` with no signature.
        let unsigned = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            token.split('.').nth(1).expect("payload")
        );
        assert!(matches!(
            ours.verify(&unsigned),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn weak_secrets_are_refused_outside_development() {
        for secret in ["", "   ", DEFAULT_JWT_SECRET, "short-secret"] {
            let settings = settings(secret);
            let refused = settings
                .check_for_environment("production")
                .expect_err(secret);
            assert!(refused.contains("auth.jwt_secret"), "{refused}");
            assert_eq!(settings.check_for_environment("development"), Ok(()));
            assert_eq!(settings.check_for_environment("test"), Ok(()));
        }
        let strong = settings("f3c1d8a0b7e94c2aa6d5e0b1c2d3e4f5a6b7c8d9");
        assert_eq!(strong.check_for_environment("production"), Ok(()));
    }

    #[test]
    fn the_secret_is_not_printed() {
        let printed = format!("{:?}", settings("hunter2-hunter2-hunter2-hunter2-x"));
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
