//! The orders-service's typed settings: defaults in code, then `config/orders/*.yaml`, then
//! `.env`, then `ORDERS__...` environment variables (see `platform::config`).

use platform::db::DatabaseSettings;
use platform::http::HttpSettings;
use platform::kafka::{ConsumerSettings, KafkaSettings, Subscription};
use platform::shutdown::ShutdownSettings;
use platform::telemetry::TelemetrySettings;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::Rules;

/// Everything the orders-service can be told.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listener and request timeout.
    pub http: HttpSettings,
    /// PostgreSQL connection (schema `orders`).
    pub database: DatabaseSettings,
    /// Broker connection.
    pub kafka: KafkaSettings,
    /// Batching and retry of the orders consumer.
    pub consumer: ConsumerSettings,
    /// Topic and group names.
    pub topics: TopicSettings,
    /// The in-memory cache.
    pub cache: CacheSettings,
    /// The message rules.
    pub validation: ValidationSettings,
    /// Logs, traces.
    pub telemetry: TelemetrySettings,
    /// Stop deadline.
    pub shutdown: ShutdownSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings::default(),
            database: DatabaseSettings::default(),
            kafka: KafkaSettings::default(),
            consumer: ConsumerSettings {
                // Each partition's orders are written in a transaction of their own, at the
                // same time as the other partitions': PostgreSQL gets to use more than one
                // core, and each partition's order is kept.
                parallel_partitions: true,
                ..ConsumerSettings::default()
            },
            topics: TopicSettings::default(),
            cache: CacheSettings::default(),
            validation: ValidationSettings::default(),
            telemetry: TelemetrySettings::default(),
            shutdown: ShutdownSettings::default(),
        }
    }
}

/// Topic and consumer-group names.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicSettings {
    /// Where orders arrive.
    pub orders: String,
    /// Where refused orders go, with the reasons in headers.
    pub dead_letter: String,
    /// The service's consumer group.
    pub group_id: String,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            orders: "orders".to_owned(),
            dead_letter: "orders.dlq".to_owned(),
            group_id: "orders-service".to_owned(),
        }
    }
}

impl TopicSettings {
    /// The consumer runner's subscription.
    pub fn subscription(&self) -> Subscription {
        Subscription {
            group_id: self.group_id.clone(),
            topics: vec![self.orders.clone()],
            dead_letter_topic: Some(self.dead_letter.clone()),
        }
    }
}

/// The in-memory cache of ready-to-send orders.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Budget in bytes of cached orders (JSON plus per-entry overhead).
    pub max_bytes: u64,
    /// At most this many of the newest orders are loaded at start.
    pub warmup_limit: u64,
    /// How long an unknown id is remembered as unknown.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024 * 1024,
            warmup_limit: 1_000_000,
            negative_ttl: Duration::from_secs(5),
        }
    }
}

/// The message rules' knobs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationSettings {
    /// `false` turns the sum rules and `track_mismatch` into warnings.
    pub strict: bool,
    /// Largest accepted message value in bytes.
    pub max_message_bytes: usize,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            strict: true,
            max_message_bytes: 1024 * 1024,
        }
    }
}

impl ValidationSettings {
    /// The domain's rules.
    pub fn rules(&self) -> Rules {
        Rules {
            strict: self.strict,
            max_bytes: self.max_message_bytes,
            ..Rules::default()
        }
    }
}
