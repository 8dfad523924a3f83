//! Security of the HTTP API: passwords stored as argon2id only, tokens that are not ours
//! (another secret, expired, tampered with, unsigned, another algorithm, an unknown user)
//! refused with 401, the role read on every request, the production check of the JWT
//! secret, and the login rate limit per e-mail address and per client address.

use std::net::SocketAddr;

use axum::http::header::RETRY_AFTER;
use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use label_service::adapters::http::auth::Claims;
use label_service::adapters::http::{AuthSettings, DEFAULT_JWT_SECRET, Tokens};
use label_service::domain::UserId;
use secrecy::SecretString;
use serde_json::json;

use crate::api::harness::{Api, PASSWORD, SECRET, auth_settings};

#[tokio::test(flavor = "multi_thread")]
async fn passwords_are_stored_as_argon2id_hashes_only() {
    let api = Api::new().await;
    api.register("Ann Lee").await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM label.users WHERE email = $1")
        .bind(Api::email("Ann Lee"))
        .fetch_one(&api.db.pool)
        .await
        .expect("the user's row");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_that_are_not_good_are_refused() {
    let api = Api::new().await;
    let ann = api.register("Ann Lee").await;
    let bo = api.register("Bo Diddley").await;
    let me = |token: String| {
        let api = &api;
        async move { api.get("/me", Some(&token)).await }
    };
    assert_eq!(me(ann.token.clone()).await.status, StatusCode::OK);

    let other_secret = Tokens::new(&AuthSettings {
        jwt_secret: SecretString::from("another-secret-that-is-long-enough-0123456"),
        ..AuthSettings::default()
    })
    .issue(UserId(ann.user_id), Utc::now())
    .expect("token");
    let expired = Tokens::new(&auth_settings())
        .issue(UserId(ann.user_id), Utc::now() - Duration::hours(25))
        .expect("token");
    // Ann's header and signature around Bo's claims: the payload was changed.
    let ann_parts: Vec<&str> = ann.token.split('.').collect();
    let bo_parts: Vec<&str> = bo.token.split('.').collect();
    let tampered = format!("{}.{}.{}", ann_parts[0], bo_parts[1], ann_parts[2]);
    // {"alg":"none","typ":"JWT"}, no signature.
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", ann_parts[1]);
    let claims = Claims {
        sub: ann.user_id.to_string(),
        iat: Utc::now().timestamp(),
        exp: (Utc::now() + Duration::hours(1)).timestamp(),
    };
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("token");
    let for_nobody = Tokens::new(&auth_settings())
        .issue(UserId(987_654), Utc::now())
        .expect("token");

    for (what, token, code) in [
        ("another secret", other_secret, "unauthenticated"),
        ("expired", expired, "unauthenticated"),
        ("tampered payload", tampered, "unauthenticated"),
        ("alg none", unsigned, "unauthenticated"),
        ("HS512", hs512, "unauthenticated"),
        ("garbage", "abc.def.ghi".to_owned(), "unauthenticated"),
        ("an unknown user", for_nobody, "unknown_user"),
    ] {
        let reply = me(token).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            reply.text
        );
        assert_eq!(reply.code(), code, "{what}");
    }

    for header in ["", "Basic YW5uOnB3", "Bearer", "Bearer   ", "Token abc"] {
        let request = axum::http::Request::get("/api/v1/me");
        let request = if header.is_empty() {
            request
        } else {
            request.header("authorization", header)
        };
        let reply = api
            .send(request.body(axum::body::Body::empty()).expect("request"))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(reply.code(), "unauthenticated");
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_role_is_read_on_every_request() {
    let api = Api::new().await;
    let admin = api.admin().await;
    let maria = api.manager(&admin, "Maria Manager").await;
    let ann = api.register("Ann Lee").await;
    let upload = json!({"title": "Demo", "tracks": [{"title": "Take 1", "duration_seconds": 60, "genre": "rock", "type": "song"}]});
    let before = api.post("/releases", Some(&ann.token), &upload).await;
    assert_eq!(before.status, StatusCode::FORBIDDEN);
    let (request, _) = api.assigned_sign(&ann, "Nova").await;
    let accepted = api
        .post(
            &format!("/requests/{request}/accept"),
            Some(&maria.session.token),
            &json!({}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK);
    // The same token, issued when Ann was a non-member.
    let after = api.post("/releases", Some(&ann.token), &upload).await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.text);
}

#[test]
fn weak_jwt_secrets_are_refused_outside_development() {
    let with = |secret: &str| AuthSettings {
        jwt_secret: SecretString::from(secret),
        ..AuthSettings::default()
    };
    for secret in ["", DEFAULT_JWT_SECRET] {
        let refused = with(secret)
            .check_for_environment("production")
            .expect_err("refused");
        assert!(refused.contains("auth.jwt_secret"), "{refused}");
        assert_eq!(with(secret).check_for_environment("development"), Ok(()));
        assert_eq!(with(secret).check_for_environment("test"), Ok(()));
    }
    assert!(
        AuthSettings::default()
            .check_for_environment("staging")
            .is_err(),
        "the default settings carry the default secret"
    );
    assert_eq!(
        with("7d1f0c5e9a8b4d3c2b1a0f9e8d7c6b5a4f3e2d1c").check_for_environment("production"),
        Ok(())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_is_rate_limited_per_email_address_and_per_client_address() {
    let api = Api::new().await;
    api.register("Ann Lee").await;
    let login = |email: &str, password: &str, client: Option<SocketAddr>| {
        let api = &api;
        let body = json!({"email": email, "password": password});
        async move {
            api.call_from(client, Method::POST, "/auth/login", None, Some(&body))
                .await
        }
    };

    // Five attempts a minute for one address, whatever its case; then even the right
    // password waits.
    for _ in 0..4 {
        let reply = login("ann.lee@example.com", "wrong-password", None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let fifth = login("ANN.LEE@example.com", PASSWORD, None).await;
    assert_eq!(fifth.status, StatusCode::OK);
    let limited = login("ann.lee@example.com", PASSWORD, None).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.text
    );
    assert_eq!(limited.code(), "rate_limited");
    let retry_after: u64 = limited.headers[RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let other = login("bo@example.com", "whatever-password", None).await;
    assert_eq!(
        other.status,
        StatusCode::UNAUTHORIZED,
        "another address is not limited"
    );

    // Twenty attempts a minute from one client, across e-mail addresses.
    let client = SocketAddr::from(([192, 0, 2, 7], 50_000));
    for n in 0..20 {
        let reply = login(
            &format!("user{n}@example.com"),
            "wrong-password",
            Some(client),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let limited = login("user20@example.com", "wrong-password", Some(client)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let another_port = SocketAddr::from(([192, 0, 2, 7], 50_001));
    let same_host = login("user21@example.com", "wrong-password", Some(another_port)).await;
    assert_eq!(
        same_host.status,
        StatusCode::TOO_MANY_REQUESTS,
        "keyed by IP, not port"
    );
    let elsewhere = SocketAddr::from(([192, 0, 2, 8], 50_000));
    let reply = login("user20@example.com", "wrong-password", Some(elsewhere)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}
