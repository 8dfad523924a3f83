//! The producer wrapper: idempotent delivery, a `kafka.produce` span per record whose W3C
//! context travels in the record's headers, and an explicit flush for shutdown.
//!
//! It never retries on its own beyond librdkafka's delivery timeout: callers (the consumer
//! runner, the outbox relay) own their retry policy. An idempotent producer that hits a
//! fatal error (fenced after an epoch bump the broker refused, an unrecoverable sequence
//! gap) can never deliver again; librdkafka's advice is a new instance, so the wrapper
//! replaces it and the caller's next attempt goes through.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use tracing::Instrument;

use super::{Header, KafkaSettings, headers_from_slice};
use crate::telemetry::propagation;

/// A record to publish.
#[derive(Debug, Clone, Default)]
pub struct OutgoingRecord {
    /// Destination topic.
    pub topic: String,
    /// Partitioning key.
    pub key: Option<Vec<u8>>,
    /// The value; `None` for a tombstone (a record without a value).
    pub payload: Option<Vec<u8>>,
    /// Headers. When they already hold a `traceparent` (a record relayed on someone else's
    /// behalf) it is kept; otherwise the produce span's context is added.
    pub headers: Vec<Header>,
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
}

/// Delivery failed.
#[derive(Debug, thiserror::Error)]
#[error("delivery to {topic} failed: {source}")]
pub struct ProduceError {
    /// The destination.
    pub topic: String,
    /// librdkafka's error.
    #[source]
    pub source: KafkaError,
}

/// An idempotent producer. Cheap to clone: clones share one librdkafka client (and its
/// replacement, when a fatal error forced one).
#[derive(Clone)]
pub struct KafkaProducer {
    inner: Arc<RwLock<Generation>>,
    config: Arc<ClientConfig>,
}

/// The librdkafka client in use and how many were replaced before it.
struct Generation {
    number: u64,
    producer: Producer,
}

/// The librdkafka producer, its messages rate-limited.
type Producer = FutureProducer<super::QuietContext>;

fn create(config: &ClientConfig) -> Result<Producer, KafkaError> {
    config.create_with_context(super::QuietContext::new("producer"))
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer").finish_non_exhaustive()
    }
}

impl KafkaProducer {
    /// Creates the producer. It connects lazily: a broker outage shows up as delivery
    /// failures, not here.
    pub fn new(settings: &KafkaSettings, client_id: &str) -> Result<Self, KafkaError> {
        let mut config = settings.client_config(client_id);
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", settings.linger.as_millis().to_string())
            .set(
                "message.timeout.ms",
                settings.delivery_timeout.as_millis().to_string(),
            );
        settings.apply_properties(&mut config);
        let producer = create(&config)?;
        Ok(Self {
            inner: Arc::new(RwLock::new(Generation {
                number: 0,
                producer,
            })),
            config: Arc::new(config),
        })
    }

    /// The client in use and its generation.
    fn current(&self) -> (u64, Producer) {
        let guard = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (guard.number, guard.producer.clone())
    }

    /// Replaces generation `number` when it has a fatal error or was fenced (a broker that
    /// refused its epoch bump answers every later record with `ProducerFenced`); clones that
    /// saw the same error at the same time replace it once.
    fn replace_if_fatal(&self, number: u64, producer: &Producer, error: &KafkaError) {
        let fenced = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch)
        );
        let Some((code, reason)) = producer.client().fatal_error().or_else(|| {
            fenced.then(|| {
                (
                    RDKafkaErrorCode::ProducerFenced,
                    "the broker fenced this producer".to_owned(),
                )
            })
        }) else {
            return;
        };
        let mut guard = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.number != number {
            return;
        }
        match create(&self.config) {
            Ok(fresh) => {
                tracing::error!(?code, %reason, generation = number + 1, "the producer hit a fatal error; replaced it with a new one");
                metrics::counter!("kafka_producer_replacements_total").increment(1);
                *guard = Generation {
                    number: number + 1,
                    producer: fresh,
                };
            }
            Err(err) => {
                tracing::error!(?code, %reason, error = %err, "the producer hit a fatal error and could not be replaced; trying again on the next failure");
            }
        }
    }

    /// Publishes one record and waits for the broker's acknowledgement.
    pub async fn send(&self, record: &OutgoingRecord) -> Result<Delivered, ProduceError> {
        let span = tracing::info_span!(
            "kafka.produce",
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.destination.name = %record.topic,
        );
        self.send_in(record, span.clone()).instrument(span).await
    }

    async fn send_in(
        &self,
        record: &OutgoingRecord,
        span: tracing::Span,
    ) -> Result<Delivered, ProduceError> {
        let has_context = record
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(propagation::TRACEPARENT));
        let mut headers = record.headers.clone();
        if !has_context {
            headers.extend(
                propagation::inject(&span)
                    .into_iter()
                    .map(|(name, value)| (name, Some(value.into_bytes()))),
            );
        }
        let mut future_record =
            FutureRecord::<[u8], [u8]>::to(&record.topic).headers(headers_from_slice(&headers));
        if let Some(payload) = &record.payload {
            future_record = future_record.payload(payload.as_slice());
        }
        if let Some(key) = &record.key {
            future_record = future_record.key(key.as_slice());
        }
        let (generation, producer) = self.current();
        // Wait for room in the local queue for as long as a delivery may take anyway.
        match producer.send(future_record, Timeout::Never).await {
            Ok(delivery) => Ok(Delivered {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((source, _)) => {
                tracing::warn!(topic = %record.topic, error = %source, "delivery failed");
                self.replace_if_fatal(generation, &producer, &source);
                Err(ProduceError {
                    topic: record.topic.clone(),
                    source,
                })
            }
        }
    }

    /// Waits until every queued record is delivered or `timeout` passes. Call it on
    /// shutdown, before the process exits.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.current().1.flush(Timeout::After(timeout))
    }

    /// Asks the cluster for metadata: a cheap check that a broker answers.
    pub async fn ping(&self, timeout: Duration) -> Result<(), KafkaError> {
        let producer = self.current().1;
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Timeout::After(timeout))
                .map(|_| ())
        })
        .await
        .map_err(|_| KafkaError::Canceled)?
    }
}
