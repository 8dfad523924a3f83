//! Layered configuration: each layer overrides the one below, unknown keys and bad values
//! fail naming the key, secrets stay out of `Debug`, durations parse from humantime strings.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use platform::config::{ConfigError, ConfigLoader};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    name: String,
    database: Database,
    kafka: Kafka,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Database {
    #[serde(skip_serializing)]
    url: SecretString,
    max_connections: u32,
    #[serde(with = "humantime_serde")]
    acquire_timeout: Duration,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://localhost/default"),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Kafka {
    brokers: String,
    #[serde(with = "humantime_serde")]
    poll_interval: Duration,
}

impl Default for Kafka {
    fn default() -> Self {
        Self {
            brokers: "localhost:9092".to_owned(),
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// A config dir with `orders/base.yaml` and optional `orders/<env>.yaml`, and no `.env`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("orders")).unwrap();
        Self { dir }
    }

    fn write(&self, relative: &str, contents: &str) {
        std::fs::write(self.dir.path().join(relative), contents).unwrap();
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A loader that sees only this fixture and the given variables, never the real
    /// process environment or the working directory's `.env`.
    fn loader(&self, vars: &[(&str, &str)]) -> ConfigLoader {
        ConfigLoader::new("orders", "ORDERS")
            .dir(self.path())
            .dotenv_file(self.path().join(".env"))
            .env_vars(
                vars.iter()
                    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
            )
    }
}

#[test]
fn code_defaults_apply_when_nothing_is_configured() {
    let fixture = Fixture::new();
    let settings: Settings = fixture.loader(&[]).load().unwrap();
    assert_eq!(settings.name, "");
    assert_eq!(settings.database.max_connections, 10);
    assert_eq!(settings.kafka.brokers, "localhost:9092");
}

#[test]
fn each_layer_overrides_the_one_below() {
    let fixture = Fixture::new();
    fixture.write(
        "orders/base.yaml",
        "name: base\ndatabase:\n  max_connections: 1\n  url: postgres://base\nkafka:\n  brokers: base:9092\n",
    );
    fixture.write(
        "orders/staging.yaml",
        "database:\n  max_connections: 2\n  url: postgres://staging\nkafka:\n  brokers: staging:9092\n",
    );
    fixture.write(
        ".env",
        "ORDERS__DATABASE__MAX_CONNECTIONS=3\nORDERS__KAFKA__BROKERS=dotenv:9092\nOTHER__NAME=ignored\n",
    );

    let settings: Settings = fixture
        .loader(&[
            ("APP_ENV", "staging"),
            ("ORDERS__KAFKA__BROKERS", "env:9092"),
        ])
        .load()
        .unwrap();

    // base.yaml only
    assert_eq!(settings.name, "base");
    // staging.yaml over base.yaml
    assert_eq!(settings.database.url.expose_secret(), "postgres://staging");
    // .env over staging.yaml
    assert_eq!(settings.database.max_connections, 3);
    // process environment over .env
    assert_eq!(settings.kafka.brokers, "env:9092");
    // untouched by every layer
    assert_eq!(settings.kafka.poll_interval, Duration::from_millis(100));
}

#[test]
fn environment_method_overrides_app_env_and_development_is_the_default() {
    let fixture = Fixture::new();
    fixture.write("orders/development.yaml", "name: dev\n");
    fixture.write("orders/production.yaml", "name: prod\n");

    let default: Settings = fixture.loader(&[]).load().unwrap();
    assert_eq!(default.name, "dev");

    let chosen: Settings = fixture
        .loader(&[("APP_ENV", "development")])
        .environment("production")
        .load()
        .unwrap();
    assert_eq!(chosen.name, "prod");
}

#[test]
fn unknown_key_in_yaml_fails_naming_the_key() {
    let fixture = Fixture::new();
    fixture.write("orders/base.yaml", "kafka:\n  brokrs: x:9092\n");

    let error = fixture.loader(&[]).load::<Settings>().unwrap_err();
    assert!(
        matches!(&error, ConfigError::UnknownKey { key, .. } if key == "kafka.brokrs"),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("unknown key kafka.brokrs"),
        "{error}"
    );
}

#[test]
fn unknown_key_in_environment_fails_naming_the_key() {
    let fixture = Fixture::new();
    let error = fixture
        .loader(&[("ORDERS__DATABASE__PASSWORD", "x")])
        .load::<Settings>()
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("unknown key database.password"),
        "{error}"
    );
}

#[test]
fn bad_value_fails_naming_the_key() {
    let fixture = Fixture::new();
    let error = fixture
        .loader(&[("ORDERS__DATABASE__MAX_CONNECTIONS", "many")])
        .load::<Settings>()
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("database.max_connections: "),
        "{message}"
    );
    assert!(message.contains("many"), "{message}");
}

#[test]
fn bad_duration_in_yaml_fails_naming_the_key() {
    let fixture = Fixture::new();
    fixture.write("orders/base.yaml", "kafka:\n  poll_interval: soon\n");
    let error = fixture.loader(&[]).load::<Settings>().unwrap_err();
    assert!(
        error.to_string().starts_with("kafka.poll_interval: "),
        "{error}"
    );
}

#[test]
fn malformed_yaml_fails_naming_the_file() {
    let fixture = Fixture::new();
    fixture.write("orders/base.yaml", "database: [unclosed\n");
    let error = fixture.loader(&[]).load::<Settings>().unwrap_err();
    assert!(error.to_string().contains("base.yaml"), "{error}");
}

#[test]
fn secrets_do_not_appear_in_debug_output() {
    let fixture = Fixture::new();
    let secret = "postgres://user:hunter2@db/orders";
    let settings: Settings = fixture
        .loader(&[("ORDERS__DATABASE__URL", secret)])
        .load()
        .unwrap();
    assert_eq!(settings.database.url.expose_secret(), secret);
    let debug = format!("{settings:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
}

#[test]
fn durations_parse_from_humantime_strings() {
    let fixture = Fixture::new();
    fixture.write("orders/base.yaml", "kafka:\n  poll_interval: 20ms\n");
    let settings: Settings = fixture
        .loader(&[("ORDERS__DATABASE__ACQUIRE_TIMEOUT", "25s")])
        .load()
        .unwrap();
    assert_eq!(settings.kafka.poll_interval, Duration::from_millis(20));
    assert_eq!(settings.database.acquire_timeout, Duration::from_secs(25));
}

/// A service whose default of a shared section differs from the section's own default.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Service {
    kafka: Kafka,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            kafka: Kafka {
                brokers: "service-default:9092".to_owned(),
                poll_interval: Duration::from_millis(100),
            },
        }
    }
}

#[test]
fn overriding_one_key_keeps_the_services_defaults_of_the_others() {
    let fixture = Fixture::new();
    let settings: Service = fixture
        .loader(&[("ORDERS__KAFKA__POLL_INTERVAL", "2s")])
        .load()
        .unwrap();
    assert_eq!(settings.kafka.poll_interval, Duration::from_secs(2));
    assert_eq!(
        settings.kafka.brokers, "service-default:9092",
        "the section's own default replaced the service's"
    );
    fixture.write("orders/base.yaml", "kafka:\n  brokers: yaml:9092\n");
    let settings: Service = fixture.loader(&[]).load().unwrap();
    assert_eq!(settings.kafka.brokers, "yaml:9092");
    assert_eq!(settings.kafka.poll_interval, Duration::from_millis(100));
}
