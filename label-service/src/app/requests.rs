//! Sign and publish requests: applying (the request and its deferred actions in one unit of
//! work, the transactional outbox), accepting and declining (the request row locked, so two
//! managers or two clicks cannot both win), listing and reading.

use super::ports::{Catalog, Managers, Requests, Users};
use crate::app::error::ErrorCode;
use chrono::{DateTime, Utc};

use crate::domain::request::{
    Event, RequestType, Status, TransitionError, descriptions, transition,
};
use crate::domain::validation::{self, DateRule};
use crate::domain::{ReleaseId, ReleaseStatus, Request, RequestId, Role};

use super::error::{AppError, missing};
use super::ports::{
    DeferredAction, NewArtist, NewRequest, Page, PasswordHasher, RequestChange, RequestOwner,
    RequestQuery, Step, Store, StoreError, Taken, UnitOfWork,
};
use super::{Actor, Label};

/// Filters and page of a request list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestFilter {
    pub status: Option<Status>,
    pub kind: Option<RequestType>,
    /// 1..=100; 20 when `None`.
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// Longest page of a list.
pub const PAGE_MAX: u32 = 100;
/// Page length when none is asked for.
pub const PAGE_DEFAULT: u32 = 20;

fn open_conflict(err: StoreError) -> AppError {
    match err {
        StoreError::Conflict(taken) => match taken {
            Taken::OpenSignRequest => AppError::conflict(
                ErrorCode::SignRequestOpen,
                "you have an open request to join the label already",
            ),
            Taken::OpenNickname => AppError::conflict(
                ErrorCode::NicknameTaken,
                "another open request asks for this nickname",
            ),
            Taken::OpenPublishRequest => AppError::conflict(
                ErrorCode::PublishRequestOpen,
                "this release has an open publish request already",
            ),
            other => StoreError::Conflict(other).into(),
        },
        other => other.into(),
    }
}

fn refused(err: TransitionError) -> AppError {
    match err {
        TransitionError::AlreadyClosed => {
            AppError::conflict(ErrorCode::AlreadyClosed, "Already closed")
        }
        TransitionError::NotReady => AppError::conflict(ErrorCode::NotReady, "Not ready"),
        other @ TransitionError::WrongType { .. } => {
            AppError::conflict(ErrorCode::NotReady, other.to_string())
        }
    }
}

impl<S: Store, P: PasswordHasher> Label<S, P> {
    /// A non-member asks to join with a nickname. The request (`New`, no manager) and its
    /// deferred actions (assign a manager now, expire after the time to live) are written in
    /// one unit of work.
    pub async fn apply_sign(
        &self,
        actor: &Actor,
        nickname: &str,
        now: DateTime<Utc>,
    ) -> Result<Request, AppError> {
        if actor.role() != Role::NonMember {
            return Err(AppError::forbidden(
                ErrorCode::RoleNotAllowed,
                "only non-members can ask to join the label",
            ));
        }
        validation::nickname(nickname).map_err(|fields| {
            AppError::invalid(
                ErrorCode::ValidationFailed,
                "the nickname is not valid",
                fields,
            )
        })?;
        let mut uow = self.store.begin().await?;
        if uow.nickname_taken(nickname).await? {
            return Err(AppError::conflict(
                ErrorCode::NicknameTaken,
                "an artist of the label has this nickname already",
            ));
        }
        if uow.has_open_sign_request(actor.user.id).await? {
            return Err(AppError::conflict(
                ErrorCode::SignRequestOpen,
                "you have an open request to join the label already",
            ));
        }
        let request = uow
            .insert_request(&NewRequest {
                kind: RequestType::Sign,
                applicant_id: actor.user.id,
                manager_id: None,
                nickname: Some(nickname.to_owned()),
                release_id: None,
                expected_date: None,
                created_at: now,
            })
            .await
            .map_err(open_conflict)?;
        self.schedule_first_steps(&mut uow, &request, Step::AssignManager, now)
            .await?;
        uow.commit().await?;
        tracing::info!(
            request_id = request.id.get(),
            kind = "Sign",
            "request applied"
        );
        metrics::counter!("label_requests_total", "type" => "Sign", "event" => "applied")
            .increment(1);
        Ok(request)
    }

    /// An artist asks to publish one of their releases on `expected_date`. The artist's
    /// manager is assigned at once; evaluation and expiry are deferred.
    pub async fn apply_publish(
        &self,
        actor: &Actor,
        release_id: ReleaseId,
        expected_date: chrono::NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Request, AppError> {
        let artist = actor.as_artist("only artists can ask to publish a release")?;
        let mut uow = self.store.begin().await?;
        let Some(release) = uow.release(release_id, true).await? else {
            return Err(AppError::not_found(
                ErrorCode::ReleaseNotFound,
                "no such release",
            ));
        };
        if release.artist_id != artist.id {
            return Err(AppError::forbidden(
                ErrorCode::NotReleaseOwner,
                "only the release's owner can ask to publish it",
            ));
        }
        if release.status == ReleaseStatus::Published {
            return Err(AppError::conflict(
                ErrorCode::ReleasePublished,
                "this release is published already",
            ));
        }
        if uow.has_open_publish_request(release_id).await? {
            return Err(AppError::conflict(
                ErrorCode::PublishRequestOpen,
                "this release has an open publish request already",
            ));
        }
        match validation::publish_date(now.date_naive(), expected_date, artist.contract_due) {
            Ok(()) => {}
            Err(rule @ DateRule::TooSoon { .. }) => {
                return Err(AppError::invalid(
                    ErrorCode::DateTooSoon,
                    rule.to_string(),
                    vec![validation::FieldError {
                        field: "expected_date".into(),
                        message: rule.to_string(),
                    }],
                ));
            }
            Err(rule @ DateRule::ContractEndsBefore { .. }) => {
                return Err(AppError::bad_input(
                    ErrorCode::ContractEndsBefore,
                    rule.to_string(),
                ));
            }
        }
        let request = uow
            .insert_request(&NewRequest {
                kind: RequestType::Publish,
                applicant_id: actor.user.id,
                manager_id: Some(artist.manager_id),
                nickname: None,
                release_id: Some(release_id),
                expected_date: Some(expected_date),
                created_at: now,
            })
            .await
            .map_err(open_conflict)?;
        self.schedule_first_steps(&mut uow, &request, Step::Evaluate, now)
            .await?;
        uow.commit().await?;
        tracing::info!(
            request_id = request.id.get(),
            kind = "Publish",
            "request applied"
        );
        metrics::counter!("label_requests_total", "type" => "Publish", "event" => "applied")
            .increment(1);
        Ok(request)
    }

    async fn schedule_first_steps(
        &self,
        uow: &mut S::Uow,
        request: &Request,
        first: Step,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let action = |step| DeferredAction {
            request_id: request.id,
            step,
            attempt: 1,
            enqueued_at: now,
        };
        uow.schedule(request.kind, &action(first), now).await?;
        uow.schedule(
            request.kind,
            &action(Step::Expire),
            self.expires_at(request),
        )
        .await?;
        Ok(())
    }

    pub(crate) fn expires_at(&self, request: &Request) -> DateTime<Utc> {
        chrono::Duration::from_std(self.rules.request_ttl)
            .ok()
            .and_then(|ttl| request.created_at.checked_add_signed(ttl))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The assigned manager accepts a request `On approval`, in one unit of work with the
    /// request row locked. Sign: the applicant becomes an artist managed by the accepting
    /// manager. Publish: a publication on the expected date, the release `Published`.
    pub async fn accept(
        &self,
        actor: &Actor,
        id: RequestId,
        now: DateTime<Utc>,
    ) -> Result<Request, AppError> {
        let manager = actor.as_manager("only the assigned manager can accept a request")?;
        let mut uow = self.store.begin().await?;
        let request = self.assigned_request(&mut uow, manager.id, id).await?;
        transition(request.kind, request.status, &Event::Accept).map_err(refused)?;
        let today = now.date_naive();
        match request.kind {
            RequestType::Sign => {
                let applicant = uow
                    .user(request.applicant_id)
                    .await?
                    .ok_or_else(|| missing("the applicant"))?;
                if applicant.role != Role::NonMember {
                    return Err(AppError::conflict(
                        ErrorCode::ApplicantNotNonmember,
                        format!("the applicant is a {} now", applicant.role.as_str()),
                    ));
                }
                let nickname = request
                    .nickname
                    .clone()
                    .ok_or_else(|| missing("the nickname"))?;
                uow.insert_artist(&NewArtist {
                    user_id: applicant.id,
                    nickname,
                    contract_due: validation::contract_due(today),
                    manager_id: manager.id,
                })
                .await
                .map_err(|err| match err {
                    StoreError::Conflict(Taken::Nickname) => AppError::conflict(
                        ErrorCode::NicknameTaken,
                        "an artist of the label has taken this nickname meanwhile",
                    ),
                    other => other.into(),
                })?;
                uow.set_role(applicant.id, Role::Artist).await?;
            }
            RequestType::Publish => {
                let expected = request
                    .expected_date
                    .ok_or_else(|| missing("the expected date"))?;
                if expected <= today {
                    return Err(AppError::conflict(
                        ErrorCode::DatePassed,
                        "the expected publication date has passed; the artist must apply again",
                    ));
                }
                let release_id = request.release_id.ok_or_else(|| missing("the release"))?;
                let release = uow
                    .release(release_id, true)
                    .await?
                    .ok_or_else(|| missing("the release"))?;
                if release.status == ReleaseStatus::Published {
                    return Err(AppError::conflict(
                        ErrorCode::ReleasePublished,
                        "this release is published already",
                    ));
                }
                uow.insert_publication(release_id, expected, manager.id)
                    .await
                    .map_err(|err| match err {
                        StoreError::Conflict { .. } => AppError::conflict(
                            ErrorCode::ReleasePublished,
                            "this release is published already",
                        ),
                        other => other.into(),
                    })?;
                uow.set_release_status(release_id, ReleaseStatus::Published)
                    .await?;
            }
        }
        let closed = self
            .close(&mut uow, &request, Event::Accept, descriptions::ACCEPTED)
            .await?;
        uow.commit().await?;
        tracing::info!(
            request_id = id.get(),
            manager_id = manager.id.get(),
            "request accepted"
        );
        metrics::counter!("label_requests_total", "type" => request.kind.as_str(), "event" => "accepted")
            .increment(1);
        Ok(closed)
    }

    /// The assigned manager declines an open request. The evaluation is kept; a declined
    /// non-member may apply again.
    pub async fn decline(
        &self,
        actor: &Actor,
        id: RequestId,
        _now: DateTime<Utc>,
    ) -> Result<Request, AppError> {
        let manager = actor.as_manager("only the assigned manager can decline a request")?;
        let mut uow = self.store.begin().await?;
        let request = self.assigned_request(&mut uow, manager.id, id).await?;
        let closed = self
            .close(&mut uow, &request, Event::Decline, descriptions::DECLINED)
            .await?;
        uow.commit().await?;
        tracing::info!(
            request_id = id.get(),
            manager_id = manager.id.get(),
            "request declined"
        );
        metrics::counter!("label_requests_total", "type" => request.kind.as_str(), "event" => "declined")
            .increment(1);
        Ok(closed)
    }

    async fn assigned_request(
        &self,
        uow: &mut S::Uow,
        manager: crate::domain::ManagerId,
        id: RequestId,
    ) -> Result<Request, AppError> {
        match uow.request(id, true).await? {
            Some(request) if request.manager_id == Some(manager) => Ok(request),
            // Someone else's request: the caller may not even know it exists.
            _ => Err(AppError::not_found(
                ErrorCode::RequestNotFound,
                "no such request",
            )),
        }
    }

    async fn close(
        &self,
        uow: &mut S::Uow,
        request: &Request,
        event: Event,
        description: &str,
    ) -> Result<Request, AppError> {
        let step = transition(request.kind, request.status, &event).map_err(refused)?;
        uow.update_request(
            request.id,
            request.status,
            &RequestChange {
                status: Some(step.to),
                description: Some(step.description.unwrap_or_else(|| description.to_owned())),
                ..RequestChange::default()
            },
        )
        .await?
        // The row is locked: it cannot have moved.
        .ok_or_else(|| missing("the locked request"))
    }

    /// The caller's requests (non-member, artist: their own; manager: assigned to them),
    /// newest first.
    pub async fn list_requests(
        &self,
        actor: &Actor,
        filter: RequestFilter,
    ) -> Result<Page<Request>, AppError> {
        let owner = match actor.role() {
            Role::NonMember | Role::Artist => RequestOwner::Applicant(actor.user.id),
            Role::Manager => {
                RequestOwner::Manager(actor.as_manager("only managers see assigned requests")?.id)
            }
            // The admin oversees the workflow: every request, read only.
            Role::Admin => RequestOwner::Everyone,
        };
        let limit = filter.limit.unwrap_or(PAGE_DEFAULT);
        if limit == 0 || limit > PAGE_MAX {
            return Err(AppError::bad_input(
                ErrorCode::BadLimit,
                format!("limit must be 1 to {PAGE_MAX}"),
            ));
        }
        let mut uow = self.store.begin().await?;
        Ok(uow
            .requests(&RequestQuery {
                owner,
                status: filter.status,
                kind: filter.kind,
                limit,
                offset: filter.offset.unwrap_or(0),
            })
            .await?)
    }

    /// One request with its evaluation, for its applicant, its assigned manager or the
    /// admin.
    pub async fn get_request(&self, actor: &Actor, id: RequestId) -> Result<Request, AppError> {
        let mut uow = self.store.begin().await?;
        let request = uow.request(id, false).await?;
        match request {
            Some(request)
                if request.applicant_id == actor.user.id
                    || actor.role() == Role::Admin
                    || (actor.role() == Role::Manager
                        && request.manager_id.is_some()
                        && actor.manager.as_ref().map(|m| m.id) == request.manager_id) =>
            {
                Ok(request)
            }
            _ => Err(AppError::not_found(
                ErrorCode::RequestNotFound,
                "no such request",
            )),
        }
    }
}
