//! The label-service's typed settings: defaults in code, then `config/label/*.yaml`, then
//! `.env`, then `LABEL__...` environment variables (see `platform::config`).

use std::time::Duration;

use platform::db::DatabaseSettings;
use platform::http::HttpSettings;
use platform::kafka::{ConsumerSettings, KafkaSettings, Subscription};
use platform::outbox::RelaySettings;
use platform::shutdown::ShutdownSettings;
use platform::telemetry::TelemetrySettings;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::adapters::http::auth::AuthSettings;
use crate::adapters::postgres::DeferredTopics;
use crate::adapters::web::WebSettings;
use crate::app::Rules;

/// Everything the label-service can be told.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listener and request timeout.
    pub http: HttpSettings,
    /// PostgreSQL connection (schema `label`).
    pub database: DatabaseSettings,
    /// Broker connection.
    pub kafka: KafkaSettings,
    /// Batching and retry of the deferred-action consumer.
    pub consumer: ConsumerSettings,
    /// Topic and group names.
    pub topics: TopicSettings,
    /// The outbox relay that publishes deferred actions.
    pub outbox: RelaySettings,
    /// Tokens and login limits.
    pub auth: AuthSettings,
    /// The web UI's cookies.
    pub web: WebSettings,
    /// The first admin, created at start when no admin exists.
    pub admin: AdminSettings,
    /// The request workflow's timing.
    pub requests: RequestSettings,
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
            kafka: KafkaSettings {
                // Deferred actions are few and someone waits for each: send at once.
                linger: Duration::ZERO,
                ..KafkaSettings::default()
            },
            consumer: ConsumerSettings {
                // One action at a time: a step that rescheduled itself is never run (and
                // rescheduled) twice because a later message of its batch hit a transient
                // error. Deferred actions are few; latency, not throughput, matters.
                batch_max_messages: 1,
                // A new action is seen within this even on a broker that holds fetches
                // for the whole wait (the local test broker does; Apache Kafka answers at
                // once). 50 idle fetches per second cost next to nothing.
                fetch_wait_max: Duration::from_millis(20),
                ..ConsumerSettings::default()
            },
            topics: TopicSettings::default(),
            outbox: RelaySettings::default(),
            auth: AuthSettings::default(),
            web: WebSettings::default(),
            admin: AdminSettings::default(),
            requests: RequestSettings::default(),
            telemetry: TelemetrySettings::default(),
            shutdown: ShutdownSettings::default(),
        }
    }
}

/// Topic and consumer-group names.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicSettings {
    /// Deferred actions of sign requests.
    pub sign_requests: String,
    /// Deferred actions of publish requests.
    pub publish_requests: String,
    /// Messages that cannot be decoded or point to no request, with the reason.
    pub dead_letter: String,
    /// The service's consumer group.
    pub group_id: String,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            sign_requests: "label.sign-requests".to_owned(),
            publish_requests: "label.publish-requests".to_owned(),
            dead_letter: "label.dead-letter".to_owned(),
            group_id: "label-service".to_owned(),
        }
    }
}

impl TopicSettings {
    /// The consumer's subscription: both action topics, dead letters on the third.
    pub fn subscription(&self) -> Subscription {
        Subscription {
            group_id: self.group_id.clone(),
            topics: vec![self.sign_requests.clone(), self.publish_requests.clone()],
            dead_letter_topic: Some(self.dead_letter.clone()),
        }
    }

    /// Where the outbox writes each type's actions.
    pub fn deferred(&self) -> DeferredTopics {
        DeferredTopics {
            sign: self.sign_requests.clone(),
            publish: self.publish_requests.clone(),
        }
    }
}

/// The first admin. Nothing is created unless both `email` and `password` are set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Display name.
    pub name: String,
    /// Login e-mail address.
    pub email: Option<String>,
    /// Initial password (8+ characters); change it after the first login.
    // Never serialized: the code-defaults layer of the configuration leaves it out, and
    // the struct's default fills it in.
    #[serde(skip_serializing)]
    pub password: Option<SecretString>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            name: "Label Admin".to_owned(),
            email: None,
            password: None,
        }
    }
}

/// Timing of the request workflow.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestSettings {
    /// An open request older than this is closed ("no longer relevant"). Default 90 days.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// First delay before a deferred step that could not proceed runs again.
    #[serde(with = "humantime_serde")]
    pub retry_min_delay: Duration,
    /// Longest such delay; the delay doubles up to it.
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
}

impl Default for RequestSettings {
    fn default() -> Self {
        let rules = Rules::default();
        Self {
            ttl: rules.request_ttl,
            retry_min_delay: rules.retry_min,
            retry_max_delay: rules.retry_max,
        }
    }
}

impl RequestSettings {
    /// The use cases' rules.
    pub fn rules(&self) -> Rules {
        Rules {
            request_ttl: self.ttl,
            retry_min: self.retry_min_delay,
            retry_max: self.retry_max_delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::config::ConfigLoader;

    fn load(vars: &[(&str, &str)]) -> Settings {
        let dir = std::env::temp_dir().join(format!("label-settings-{}", std::process::id()));
        ConfigLoader::new("label", "LABEL")
            .dir(&dir)
            .dotenv_file(dir.join(".env"))
            .env_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
            .load()
            .expect("settings load")
    }

    #[test]
    fn the_label_defaults_of_platform_sections_survive_overriding_one_key() {
        let settings = load(&[
            ("LABEL__CONSUMER__BATCH_LINGER", "5ms"),
            ("LABEL__KAFKA__BROKERS", "kafka:9092"),
        ]);
        assert_eq!(settings.consumer.batch_linger, Duration::from_millis(5));
        assert_eq!(settings.consumer.batch_max_messages, 1);
        assert_eq!(settings.consumer.fetch_wait_max, Duration::from_millis(20));
        assert_eq!(settings.kafka.brokers, "kafka:9092");
        assert_eq!(settings.kafka.linger, Duration::ZERO);
        assert_eq!(settings.topics.sign_requests, "label.sign-requests");
    }
}
