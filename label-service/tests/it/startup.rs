//! Start-up checks of the binary: it refuses to run in production with an empty or default
//! JWT secret, and says which key is at fault.

use crate::stack::run_binary;

#[test]
fn the_service_refuses_to_start_in_production_without_a_real_jwt_secret() {
    for secret in [None, Some(""), Some("change-me-development-only")] {
        let mut env = vec![
            ("APP_ENV", "production"),
            ("LABEL__HTTP__BIND", "127.0.0.1:0"),
        ];
        if let Some(secret) = secret {
            env.push(("LABEL__AUTH__JWT_SECRET", secret));
        }
        let output = run_binary(&env, &["serve"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{secret:?}: must not start");
        assert!(
            stderr.contains("refusing to start") && stderr.contains("jwt_secret"),
            "{secret:?}: the error names the key: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_fills_a_fresh_database_with_the_demo_cast_once() {
    let db = crate::db::TestDb::new().await;
    let url = crate::db::with_database(&crate::db::server_url(), &db.name);
    let env = [("APP_ENV", "test"), ("LABEL__DATABASE__URL", url.as_str())];
    let output = run_binary(&env, &["seed"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<&str> = stdout.lines().filter(|line| line.contains("@")).collect();
    let count = |role: &str| rows.iter().filter(|r| r.starts_with(role)).count();
    assert_eq!(
        (
            count("admin"),
            count("manager"),
            count("artist"),
            count("nonmember")
        ),
        (1, 4, 2, 2),
        "{stdout}"
    );
    // Passwords are printed once, and only their hashes are stored.
    let hashes: Vec<String> = sqlx::query_scalar("SELECT password_hash FROM label.users")
        .fetch_all(&db.pool)
        .await
        .expect("hashes");
    assert_eq!(hashes.len(), 9);
    assert!(
        hashes
            .iter()
            .all(|h| h.starts_with("$argon2id$") && !stdout.contains(h.as_str()))
    );
    let (artists, managers_of_artists): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT manager_id) FROM label.artists")
            .fetch_one(&db.pool)
            .await
            .expect("artists");
    assert_eq!(
        (artists, managers_of_artists),
        (2, 1),
        "two artists with one manager"
    );
    let tracks: Vec<(String, String)> = sqlx::query_as(
        "SELECT r.status, t.genre FROM label.releases r JOIN label.tracks t ON t.release_id = r.id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("tracks");
    assert_eq!(
        tracks,
        vec![
            ("Unpublished".to_owned(), "rock".to_owned()),
            ("Unpublished".to_owned(), "rock".to_owned())
        ]
    );

    let again = run_binary(&env, &["seed"]);
    assert!(
        !again.status.success(),
        "a seeded database is not seeded twice"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("seeded only once"));
}
