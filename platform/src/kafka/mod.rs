//! Kafka plumbing over rdkafka: settings, an idempotent producer that carries the W3C trace
//! context, a consumer runner that owns batching, retry, dead-lettering and offset storage,
//! and topic administration.
//!
//! Services implement [`BatchHandler`] and decide what a message means; they never store an
//! offset or talk to the dead-letter topic themselves. Nothing here knows a domain type.

mod admin;
mod consumer;
mod logs;
mod producer;
mod readiness;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::{Headers, OwnedHeaders};
use serde::{Deserialize, Serialize};

pub use admin::{TopicSpec, ensure_topics};
pub use consumer::{BatchHandler, ConsumerRunner, Outcome, Received, TransientError};
pub use logs::{ClientLog, QuietContext};
pub use producer::{Delivered, KafkaProducer, OutgoingRecord, ProduceError};
pub use readiness::KafkaReady;

/// Connection settings shared by every Kafka client of a service.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list (`bootstrap.servers`).
    pub brokers: String,
    /// Client id reported to the brokers; the service name when empty.
    pub client_id: String,
    /// Consumer group session timeout: how soon a crashed member's partitions move on.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Consumer heartbeat interval; at most a third of the session timeout.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How long the producer keeps trying to deliver one message before reporting failure.
    #[serde(with = "humantime_serde")]
    pub delivery_timeout: Duration,
    /// How long the producer waits to fill a batch before sending (`linger.ms`): longer
    /// batches more under load, shorter answers sooner.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Extra librdkafka properties, passed as they are (security, tuning). They win over
    /// everything this crate sets.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".to_owned(),
            client_id: String::new(),
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            delivery_timeout: Duration::from_secs(30),
            linger: Duration::from_millis(5),
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaSettings {
    /// The base client configuration: brokers, client id, then the extra properties.
    pub fn client_config(&self, default_client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        let client_id = if self.client_id.is_empty() {
            default_client_id
        } else {
            &self.client_id
        };
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", client_id);
        config
    }

    fn apply_properties(&self, config: &mut ClientConfig) {
        for (key, value) in &self.properties {
            config.set(key, value);
        }
    }
}

/// What a consumer runner reads and where refused messages go. Services build it from their
/// own settings, whose defaults name their topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Consumer group id.
    pub group_id: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Where messages the handler refuses permanently are sent. Without it, a refused
    /// message is a fatal error: nothing is ever dropped silently.
    pub dead_letter_topic: Option<String>,
}

/// How one consumer runner batches and retries.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerSettings {
    /// Largest batch handed to the handler.
    pub batch_max_messages: usize,
    /// How long to wait for more messages once a batch has its first.
    #[serde(with = "humantime_serde")]
    pub batch_linger: Duration,
    /// First delay after a transient failure; doubles up to `retry_max_delay`, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_initial_delay: Duration,
    /// Largest delay between two attempts at the same batch.
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// Where a new group starts reading: `earliest` or `latest`.
    pub auto_offset_reset: String,
    /// Hand each partition's share of a batch to the handler separately and at the same
    /// time, so that the partitions' writes overlap. Order within a partition is kept (one
    /// call holds its messages in offset order, and the next batch waits for every call);
    /// a call that fails transiently is retried alone, the others' outcomes are kept.
    pub parallel_partitions: bool,
    /// How long the broker may hold a fetch that finds no data (`fetch.wait.max.ms`).
    /// Apache Kafka answers as soon as data arrives, so this only sets how often an idle
    /// consumer asks again; the local test broker answers only when it passes, so there it
    /// is also the delay before a new message is seen.
    #[serde(with = "humantime_serde")]
    pub fetch_wait_max: Duration,
    /// Static group membership (`group.instance.id`): unique per running instance and
    /// stable across its restarts (a host or pod name). A restarted instance then gets its
    /// partitions back without waiting for its old session to expire; a stopped one keeps
    /// them until the session timeout. None: dynamic membership.
    pub group_instance_id: Option<String>,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            batch_max_messages: 500,
            batch_linger: Duration::from_millis(20),
            retry_initial_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(30),
            auto_offset_reset: "earliest".to_owned(),
            parallel_partitions: false,
            fetch_wait_max: Duration::from_millis(500),
            group_instance_id: None,
        }
    }
}

/// Why a message was refused: one entry per violated rule, carried in the dead-letter
/// record's `x-error-reasons` header as a JSON array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable machine code, snake_case.
    pub code: String,
    /// The offending field's path, when there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    /// A sentence for people.
    pub message: String,
}

impl Reason {
    /// A reason with a field.
    pub fn new(code: impl Into<String>, field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Dead-letter header names.
pub mod dlq_headers {
    /// `invalid`, `conflict`, or another class the handler chose.
    pub const ERROR_CLASS: &str = "x-error-class";
    /// JSON array of `{code, field, message}`.
    pub const ERROR_REASONS: &str = "x-error-reasons";
    /// Topic the refused message was read from.
    pub const ORIGINAL_TOPIC: &str = "x-original-topic";
    /// Its partition, as decimal text.
    pub const ORIGINAL_PARTITION: &str = "x-original-partition";
    /// Its offset, as decimal text.
    pub const ORIGINAL_OFFSET: &str = "x-original-offset";
    /// When it was refused, RFC 3339.
    pub const FAILED_AT: &str = "x-failed-at";
}

/// A record header as received: a name and a value that may be null.
pub type Header = (String, Option<Vec<u8>>);

/// Copies rdkafka headers into owned pairs.
pub fn headers_to_vec(headers: Option<&impl Headers>) -> Vec<Header> {
    let Some(headers) = headers else {
        return Vec::new();
    };
    headers
        .iter()
        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
        .collect()
}

/// Builds rdkafka headers from owned pairs.
pub fn headers_from_slice(headers: &[Header]) -> OwnedHeaders {
    headers.iter().fold(
        OwnedHeaders::new_with_capacity(headers.len()),
        |acc, (key, value)| {
            acc.insert(rdkafka::message::Header {
                key,
                value: value.as_deref(),
            })
        },
    )
}

/// The `(name, value)` pairs of headers whose value is UTF-8 text, for trace extraction.
pub fn text_headers(headers: &[Header]) -> impl Iterator<Item = (&str, &str)> {
    headers.iter().filter_map(|(name, value)| {
        let value = std::str::from_utf8(value.as_deref()?).ok()?;
        Some((name.as_str(), value))
    })
}

/// The first header of that name, as text.
pub fn header_text<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    text_headers(headers).find_map(|(n, v)| (n == name).then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_with_null_values_and_duplicates() {
        let original: Vec<Header> = vec![
            ("a".into(), Some(b"1".to_vec())),
            ("a".into(), Some(b"2".to_vec())),
            ("empty".into(), Some(Vec::new())),
            ("null".into(), None),
        ];
        let owned = headers_from_slice(&original);
        assert_eq!(headers_to_vec(Some(&owned)), original);
    }

    #[test]
    fn text_headers_skip_binary_and_null() {
        let headers: Vec<Header> = vec![
            ("bin".into(), Some(vec![0xff, 0xfe])),
            ("null".into(), None),
            ("traceparent".into(), Some(b"00-x".to_vec())),
        ];
        assert_eq!(
            text_headers(&headers).collect::<Vec<_>>(),
            vec![("traceparent", "00-x")]
        );
        assert_eq!(header_text(&headers, "traceparent"), Some("00-x"));
    }

    #[test]
    fn reasons_serialize_without_empty_fields() {
        let reasons = vec![
            Reason::new("no_items", Some("items"), "items is empty"),
            Reason::new("conflict", None, "different payload"),
        ];
        assert_eq!(
            serde_json::to_string(&reasons).expect("serializes"),
            r#"[{"code":"no_items","field":"items","message":"items is empty"},{"code":"conflict","message":"different payload"}]"#
        );
    }

    #[test]
    fn extra_properties_win() {
        let mut settings = KafkaSettings::default();
        settings
            .properties
            .insert("bootstrap.servers".into(), "other:9092".into());
        let mut config = settings.client_config("svc");
        settings.apply_properties(&mut config);
        assert_eq!(config.get("bootstrap.servers"), Some("other:9092"));
        assert_eq!(config.get("client.id"), Some("svc"));
    }
}
