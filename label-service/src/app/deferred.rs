//! The deferred steps of the workflow, run by the Kafka consumer for each action message:
//! assign a manager to a sign request, evaluate a publish request, expire a stale request.
//!
//! Each step loads the request (the message is a pointer, not a snapshot), locks it, and
//! moves it only from the status it expects; a step that finds it moved on is a no-op, so a
//! message delivered twice does no harm. A step that cannot proceed yet (no manager) is
//! rescheduled through the outbox with a growing delay; a step that fails for good closes
//! the request with the reason.

use super::ports::{Catalog, Managers, Requests};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};

use crate::domain::evaluation::{CANNOT_APPLY, Facts, evaluate};
use crate::domain::request::{Event, Status, transition};
use crate::domain::{Request, RequestId};

use super::Label;
use super::error::AppError;
use super::ports::{
    DeferredAction, PasswordHasher, RequestChange, Step, Store, StoreError, UnitOfWork,
};

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The request moved on: `assigned`, `processing`, `evaluated`, `expired`, `failed`.
    Done(&'static str),
    /// Nothing to do: the request had moved on already, or its time has not come.
    Skipped(&'static str),
    /// The step could not proceed and was scheduled again.
    Retried {
        /// The attempt that will run next.
        next_attempt: u32,
        delay: Duration,
    },
    /// The message points to no request: it goes to the dead-letter topic.
    UnknownRequest,
}

impl StepOutcome {
    /// The label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            StepOutcome::Done(label) | StepOutcome::Skipped(label) => label,
            StepOutcome::Retried { .. } => "retried",
            StepOutcome::UnknownRequest => "unknown_request",
        }
    }
}

/// The delay before attempt `attempt + 1` of a step: 1 s doubling to 10 min by default.
pub fn retry_delay(min: Duration, max: Duration, attempt: u32) -> Duration {
    // 64 doublings pass any sane cap (2^64 ns is 584 years): never walk further.
    let index = usize::try_from(attempt.saturating_sub(1)).map_or(64, |i| i.min(64));
    ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_factor(2.0)
        .without_max_times()
        .build()
        .nth(index)
        .unwrap_or(max)
}

impl<S: Store, P: PasswordHasher> Label<S, P> {
    /// Runs one deferred action. `Err` only for transient trouble (the store is down): the
    /// caller runs the same action again later. A step that fails for good closes the
    /// request with the reason in its description (spec section 3).
    pub async fn run_step(
        &self,
        action: &DeferredAction,
        now: DateTime<Utc>,
    ) -> Result<StepOutcome, AppError> {
        let result = match action.step {
            Step::AssignManager => self.assign_manager(action, now).await,
            Step::Evaluate => self.evaluate(action, now).await,
            Step::Expire => self.expire(action, now).await,
        };
        let outcome = match result {
            Err(err) if !err.is_transient() => self.close_after_failure(action, &err).await?,
            other => other?,
        };
        metrics::counter!(
            "label_deferred_steps_total",
            "step" => action.step.as_str(),
            "outcome" => outcome.label(),
        )
        .increment(1);
        Ok(outcome)
    }

    async fn locked(
        &self,
        uow: &mut S::Uow,
        action: &DeferredAction,
    ) -> Result<Option<Request>, AppError> {
        Ok(uow.request(action.request_id, true).await?)
    }

    async fn assign_manager(
        &self,
        action: &DeferredAction,
        now: DateTime<Utc>,
    ) -> Result<StepOutcome, AppError> {
        let mut uow = self.store.begin().await?;
        let Some(request) = self.locked(&mut uow, action).await? else {
            return Ok(StepOutcome::UnknownRequest);
        };
        if transition(request.kind, request.status, &Event::AssignManager).is_err() {
            return Ok(StepOutcome::Skipped("moved_on"));
        }
        let Some(manager) = uow.least_loaded_manager().await? else {
            let outcome = self.retry_later(uow, &request, action, now).await?;
            if let StepOutcome::Retried {
                next_attempt,
                delay,
            } = &outcome
            {
                tracing::warn!(
                    request_id = request.id.get(),
                    attempt = action.attempt,
                    next_attempt,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "no manager to assign; retrying later"
                );
            }
            return Ok(outcome);
        };
        let change = RequestChange {
            status: Some(Status::OnApproval),
            manager_id: Some(manager),
            ..RequestChange::default()
        };
        if !move_and_commit(uow, request.id, Status::New, &change).await? {
            return Ok(StepOutcome::Skipped("moved_on"));
        }
        tracing::info!(
            request_id = request.id.get(),
            manager_id = manager.get(),
            "manager assigned"
        );
        Ok(StepOutcome::Done("assigned"))
    }

    async fn retry_later(
        &self,
        mut uow: S::Uow,
        request: &Request,
        action: &DeferredAction,
        now: DateTime<Utc>,
    ) -> Result<StepOutcome, AppError> {
        let delay = retry_delay(self.rules.retry_min, self.rules.retry_max, action.attempt);
        let next = DeferredAction {
            request_id: request.id,
            step: action.step,
            attempt: action.attempt.saturating_add(1),
            enqueued_at: now,
        };
        let not_before = chrono::Duration::from_std(delay)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(now);
        uow.count_attempt(request.id).await?;
        uow.schedule(request.kind, &next, not_before).await?;
        uow.commit().await?;
        metrics::counter!("label_deferred_retries_total", "step" => action.step.as_str())
            .increment(1);
        metrics::histogram!("label_deferred_retry_delay_seconds", "step" => action.step.as_str())
            .record(delay.as_secs_f64());
        Ok(StepOutcome::Retried {
            next_attempt: next.attempt,
            delay,
        })
    }

    async fn evaluate(
        &self,
        action: &DeferredAction,
        now: DateTime<Utc>,
    ) -> Result<StepOutcome, AppError> {
        // First unit of work: New -> Processing, visible to the people involved.
        let mut uow = self.store.begin().await?;
        let Some(request) = self.locked(&mut uow, action).await? else {
            return Ok(StepOutcome::UnknownRequest);
        };
        match request.status {
            Status::New => {
                transition(request.kind, request.status, &Event::StartEvaluation)
                    .map_err(|err| AppError::Internal(err.to_string()))?;
                uow.update_request(
                    request.id,
                    Status::New,
                    &RequestChange {
                        status: Some(Status::Processing),
                        ..RequestChange::default()
                    },
                )
                .await?;
                uow.commit().await?;
            }
            // A crash after the first unit of work: carry on.
            Status::Processing => drop(uow),
            Status::OnApproval | Status::Closed => return Ok(StepOutcome::Skipped("moved_on")),
        }

        // Second unit of work: gather the facts, run the criteria, store the evaluation.
        let mut uow = self.store.begin().await?;
        let Some(request) = self.locked(&mut uow, action).await? else {
            return Ok(StepOutcome::UnknownRequest);
        };
        if request.status != Status::Processing {
            return Ok(StepOutcome::Skipped("moved_on"));
        }
        let release = match request.release_id {
            Some(id) => uow.release(id, false).await?,
            None => None,
        };
        let (Some(release), Some(expected_date)) = (release, request.expected_date) else {
            return self
                .fail(
                    uow,
                    &request,
                    "the release of this request no longer exists",
                )
                .await;
        };
        let artist_publication_dates = fact(uow.publication_dates(release.artist_id).await)?;
        let publications_on_expected_date = fact(uow.publications_on(expected_date).await)?;
        let facts = Facts {
            today: now.date_naive(),
            expected_date,
            artist_publication_dates,
            publications_on_expected_date,
        };
        let evaluation = evaluate(&self.criteria, &facts);
        for entry in evaluation
            .entries
            .iter()
            .filter(|e| e.reason == CANNOT_APPLY)
        {
            tracing::warn!(request_id = request.id.get(), criterion = %entry.name, "criterion could not be applied");
        }
        let grade = evaluation.grade;
        transition(request.kind, request.status, &Event::FinishEvaluation)
            .map_err(|err| AppError::Internal(err.to_string()))?;
        let change = RequestChange {
            status: Some(Status::OnApproval),
            evaluation: Some(evaluation),
            ..RequestChange::default()
        };
        if !move_and_commit(uow, request.id, Status::Processing, &change).await? {
            return Ok(StepOutcome::Skipped("moved_on"));
        }
        tracing::info!(
            request_id = request.id.get(),
            grade,
            "publish request evaluated"
        );
        Ok(StepOutcome::Done("evaluated"))
    }

    /// Closes the request of a step that failed for good. The detail of an internal error
    /// goes to the log; the description says only which step failed.
    async fn close_after_failure(
        &self,
        action: &DeferredAction,
        err: &AppError,
    ) -> Result<StepOutcome, AppError> {
        tracing::error!(
            request_id = action.request_id.get(),
            step = action.step.as_str(),
            error = ?err,
            "deferred step failed for good"
        );
        let mut uow = self.store.begin().await?;
        let Some(request) = self.locked(&mut uow, action).await? else {
            return Ok(StepOutcome::UnknownRequest);
        };
        let reason = format!(
            "the {} step failed ({err})",
            action.step.as_str().replace('_', " ")
        );
        self.fail(uow, &request, &reason).await
    }

    async fn fail(
        &self,
        mut uow: S::Uow,
        request: &Request,
        reason: &str,
    ) -> Result<StepOutcome, AppError> {
        let event = Event::Fail(reason.to_owned());
        let Ok(step) = transition(request.kind, request.status, &event) else {
            return Ok(StepOutcome::Skipped("moved_on"));
        };
        uow.update_request(
            request.id,
            request.status,
            &RequestChange {
                status: Some(step.to),
                description: step.description,
                ..RequestChange::default()
            },
        )
        .await?;
        uow.commit().await?;
        tracing::warn!(
            request_id = request.id.get(),
            reason,
            "deferred step failed; request closed"
        );
        Ok(StepOutcome::Done("failed"))
    }

    async fn expire(
        &self,
        action: &DeferredAction,
        now: DateTime<Utc>,
    ) -> Result<StepOutcome, AppError> {
        let mut uow = self.store.begin().await?;
        let Some(request) = self.locked(&mut uow, action).await? else {
            return Ok(StepOutcome::UnknownRequest);
        };
        let Ok(step) = transition(request.kind, request.status, &Event::Expire) else {
            return Ok(StepOutcome::Skipped("closed"));
        };
        let due = self.expires_at(&request);
        if due > now {
            // The time to live grew since this was scheduled: look again when it is due.
            let again = DeferredAction {
                enqueued_at: now,
                ..action.clone()
            };
            uow.schedule(request.kind, &again, due).await?;
            uow.commit().await?;
            return Ok(StepOutcome::Skipped("not_due"));
        }
        let change = RequestChange {
            status: Some(step.to),
            description: step.description,
            ..RequestChange::default()
        };
        if !move_and_commit(uow, request.id, request.status, &change).await? {
            return Ok(StepOutcome::Skipped("moved_on"));
        }
        tracing::info!(
            request_id = request.id.get(),
            kind = request.kind.as_str(),
            "request expired"
        );
        metrics::counter!("label_requests_total", "type" => request.kind.as_str(), "event" => "expired")
            .increment(1);
        Ok(StepOutcome::Done("expired"))
    }
}

/// A fact for the criteria: `None` when the store refused the query (the criterion then says
/// `Can't apply criteria`), an error when the store is down (the whole step runs again).
fn fact<T>(result: Result<T, StoreError>) -> Result<Option<T>, AppError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StoreError::Unavailable(detail)) => Err(AppError::Unavailable(detail)),
        Err(err) => {
            tracing::warn!(error = %err, "a fact of the evaluation could not be gathered");
            Ok(None)
        }
    }
}

/// Moves the request from `expected` with `change` and commits; `false`, with nothing
/// written, when it had moved on already.
async fn move_and_commit<U: UnitOfWork>(
    mut uow: U,
    id: RequestId,
    expected: Status,
    change: &RequestChange,
) -> Result<bool, AppError> {
    if uow.update_request(id, expected, change).await?.is_none() {
        return Ok(false);
    }
    uow.commit().await?;
    Ok(true)
}
