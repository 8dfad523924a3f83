//! The orders-service's typed settings: defaults in code, then `config/orders/*.yaml`, then
//! `.env`, then `ORDERS__...` environment variables (see `platform::config`).

use platform::db::DatabaseSettings;
use platform::http::HttpSettings;
use platform::kafka::{ConsumerSettings, KafkaSettings, Subscription};
use platform::shutdown::ShutdownSettings;
use platform::telemetry::TelemetrySettings;
use serde::Deserialize;

/// Everything the orders-service can be told.
#[derive(Debug, Clone, Default, Deserialize)]
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
    /// Logs, traces.
    pub telemetry: TelemetrySettings,
    /// Stop deadline.
    pub shutdown: ShutdownSettings,
}

/// Topic and consumer-group names.
#[derive(Debug, Clone, Deserialize)]
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
