//! Readiness of the Kafka connection: a broker answers a metadata request.

use std::time::Duration;

use futures::future::BoxFuture;

use super::KafkaProducer;
use crate::http::ReadinessCheck;

/// Ready when a broker answers a metadata request within `timeout`.
#[derive(Debug, Clone)]
pub struct KafkaReady {
    producer: KafkaProducer,
    timeout: Duration,
}

impl KafkaReady {
    /// A check through `producer`'s connection.
    pub fn new(producer: KafkaProducer, timeout: Duration) -> Self {
        Self { producer, timeout }
    }
}

impl ReadinessCheck for KafkaReady {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.producer
                .ping(self.timeout)
                .await
                .map_err(|err| format!("no broker answers: {err}"))
        })
    }
}
