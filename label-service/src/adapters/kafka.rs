//! The Kafka inbound adapter of the deferred actions: decodes each message of the sign and
//! publish topics into a `DeferredAction` and runs its step. It owns no offsets and no
//! retries of its own: transient trouble goes back to the platform's consumer runner (which
//! pauses and tries the batch again), a step that must wait reschedules itself through the
//! outbox, and a message that cannot be decoded or points to no request is dead-lettered
//! with the reason.

use chrono::Utc;
use platform::kafka::{BatchHandler, Outcome, Reason, Received, TransientError};
use tracing::Instrument as _;

use crate::app::deferred::StepOutcome;
use crate::app::ports::DeferredAction;
use crate::app::{Label, PasswordHasher, Store};

/// The handler of the deferred-action topics.
#[derive(Debug)]
pub struct DeferredActionsHandler<S, P> {
    label: Label<S, P>,
}

impl<S, P> DeferredActionsHandler<S, P> {
    /// A handler running steps through these use cases.
    pub fn new(label: Label<S, P>) -> Self {
        Self { label }
    }
}

/// Decodes a message value; the reason when it cannot be.
pub fn decode(payload: Option<&[u8]>) -> Result<DeferredAction, Reason> {
    let Some(bytes) = payload else {
        return Err(Reason::new(
            "empty",
            None,
            "the message has no value; a deferred action is a JSON object",
        ));
    };
    serde_json::from_slice(bytes).map_err(|err| {
        Reason::new(
            "undecodable",
            None,
            format!("not a deferred action {{request_id, type, attempt, enqueued_at}}: {err}"),
        )
    })
}

impl<S: Store, P: PasswordHasher> BatchHandler for DeferredActionsHandler<S, P> {
    async fn handle(&self, batch: &[Received]) -> Result<Vec<Outcome>, TransientError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for message in batch {
            let outcome = match decode(message.payload.as_deref()) {
                Err(reason) => {
                    tracing::warn!(
                        parent: &message.span,
                        topic = %message.topic,
                        offset = message.offset,
                        reason = %reason.message,
                        "undecodable deferred action"
                    );
                    Outcome::DeadLetter {
                        label: "undecodable",
                        class: "undecodable".to_owned(),
                        reasons: vec![reason],
                    }
                }
                Ok(action) => {
                    let span = tracing::info_span!(
                        parent: &message.span,
                        "label.deferred_step",
                        request_id = action.request_id.get(),
                        step = action.step.as_str(),
                        attempt = action.attempt,
                    );
                    let result = self
                        .label
                        .run_step(&action, Utc::now())
                        .instrument(span)
                        .await;
                    match result {
                        Ok(StepOutcome::UnknownRequest) => Outcome::DeadLetter {
                            label: "unknown_request",
                            class: "unknown_request".to_owned(),
                            reasons: vec![Reason::new(
                                "unknown_request",
                                Some("request_id"),
                                format!("no request has id {}", action.request_id),
                            )],
                        },
                        Ok(outcome) => Outcome::Done {
                            label: outcome.label(),
                        },
                        Err(err) if err.is_transient() => {
                            return Err(TransientError::new(anyhow::anyhow!(
                                "deferred step {} of request {}: {err}",
                                action.step.as_str(),
                                action.request_id
                            )));
                        }
                        Err(err) => {
                            tracing::error!(
                                request_id = action.request_id.get(),
                                step = action.step.as_str(),
                                error = ?err,
                                "deferred step failed"
                            );
                            Outcome::DeadLetter {
                                label: "failed",
                                class: "step_failed".to_owned(),
                                reasons: vec![Reason::new(err.code(), None, format!("{err:?}"))],
                            }
                        }
                    }
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}
