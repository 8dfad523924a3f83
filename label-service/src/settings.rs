//! The label-service's typed settings: defaults in code, then `config/label/*.yaml`, then
//! `.env`, then `LABEL__...` environment variables (see `platform::config`).

use platform::db::DatabaseSettings;
use platform::http::HttpSettings;
use platform::kafka::KafkaSettings;
use platform::outbox::RelaySettings;
use platform::shutdown::ShutdownSettings;
use platform::telemetry::TelemetrySettings;
use serde::Deserialize;

/// Everything the label-service can be told.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listener and request timeout.
    pub http: HttpSettings,
    /// PostgreSQL connection (schema `label`).
    pub database: DatabaseSettings,
    /// Broker connection.
    pub kafka: KafkaSettings,
    /// The outbox relay that publishes deferred actions.
    pub outbox: RelaySettings,
    /// Logs, traces.
    pub telemetry: TelemetrySettings,
    /// Stop deadline.
    pub shutdown: ShutdownSettings,
}
