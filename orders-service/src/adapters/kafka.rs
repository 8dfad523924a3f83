//! The Kafka inbound adapter: hands a batch of order messages to the ingest use case and
//! turns each outcome into what the platform's consumer runner needs (acknowledge, or
//! dead-letter with class and reasons). It owns no offsets and no retries: the runner does.

use chrono::Utc;
use platform::kafka::{BatchHandler, Outcome, Reason, Received, TransientError};

use crate::app::{Ingest, IngestOutcome, OrderCache, OrderStore};

/// The orders topic's handler.
#[derive(Debug)]
pub struct OrdersHandler<S, C> {
    ingest: Ingest<S, C>,
}

impl<S, C> OrdersHandler<S, C> {
    /// A handler over the ingest use case.
    pub fn new(ingest: Ingest<S, C>) -> Self {
        Self { ingest }
    }
}

impl<S: OrderStore, C: OrderCache> BatchHandler for OrdersHandler<S, C> {
    async fn handle(&self, batch: &[Received]) -> Result<Vec<Outcome>, TransientError> {
        let values: Vec<Option<&[u8]>> = batch.iter().map(|m| m.payload.as_deref()).collect();
        let outcomes = self
            .ingest
            .ingest(&values, Utc::now())
            .await
            .map_err(TransientError::new)?;
        Ok(outcomes.into_iter().map(to_outcome).collect())
    }
}

/// The runner's view of an ingest outcome.
pub fn to_outcome(outcome: IngestOutcome) -> Outcome {
    match outcome {
        IngestOutcome::Stored => Outcome::Done { label: "stored" },
        IngestOutcome::Duplicate => Outcome::Done { label: "duplicate" },
        IngestOutcome::Conflict { order_uid } => Outcome::DeadLetter {
            label: "conflict",
            class: "conflict".to_owned(),
            reasons: vec![Reason::new(
                "conflict",
                Some("order_uid"),
                format!(
                    "order {order_uid} was stored before with a different payload; orders are immutable and the first write wins"
                ),
            )],
        },
        IngestOutcome::Invalid { violations } => Outcome::DeadLetter {
            label: "invalid",
            class: "invalid".to_owned(),
            reasons: violations
                .into_iter()
                .map(|v| Reason::new(v.code.as_str(), v.field.as_deref(), v.message))
                .collect(),
        },
        IngestOutcome::Rejected { reason } => Outcome::DeadLetter {
            label: "invalid",
            class: "invalid".to_owned(),
            reasons: vec![Reason::new(
                "rejected_by_database",
                None,
                format!("the database refused the order: {reason}"),
            )],
        },
    }
}
