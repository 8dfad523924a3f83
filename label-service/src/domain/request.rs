//! Requests and their state machine (spec section 3): who may move a request, from which
//! status, to which, and with what description. Pure: no I/O, no clock reads.
//!
//! ```text
//! Sign:    apply -> New (no manager) --assign--> On approval --accept/decline--> Closed
//! Publish: apply -> New (manager) --start evaluation--> Processing --evaluated--> On approval --accept/decline--> Closed
//! Any open request --expire--> Closed
//! ```

use serde::{Deserialize, Serialize};

/// The two kinds of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum RequestType {
    /// A non-member asks to join the label.
    Sign,
    /// An artist asks to publish a release.
    Publish,
}

impl RequestType {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Sign => "Sign",
            RequestType::Publish => "Publish",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Sign" => Some(RequestType::Sign),
            "Publish" => Some(RequestType::Publish),
            _ => None,
        }
    }
}

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Status {
    New,
    Processing,
    #[serde(rename = "On approval")]
    OnApproval,
    Closed,
}

impl Status {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "New",
            Status::Processing => "Processing",
            Status::OnApproval => "On approval",
            Status::Closed => "Closed",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "New" => Some(Status::New),
            "Processing" => Some(Status::Processing),
            "On approval" => Some(Status::OnApproval),
            "Closed" => Some(Status::Closed),
            _ => None,
        }
    }

    /// Every status but `Closed` is open.
    pub fn is_open(self) -> bool {
        self != Status::Closed
    }
}

/// Descriptions the spec fixes word for word.
pub mod descriptions {
    pub const ACCEPTED: &str = "The request is accepted.";
    pub const DECLINED: &str = "The request is declined.";
    pub const EXPIRED: &str = "The request is declined: the request is no longer relevant";
}

/// Something that happens to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Deferred: a manager was chosen for a sign request.
    AssignManager,
    /// Deferred: evaluation of a publish request begins.
    StartEvaluation,
    /// Deferred: the evaluation of a publish request is stored.
    FinishEvaluation,
    /// The assigned manager accepts.
    Accept,
    /// The assigned manager declines.
    Decline,
    /// Deferred: the request outlived the time to live.
    Expire,
    /// Deferred: a step failed for good; the reason closes the request.
    Fail(String),
}

/// Why an event cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The request is closed already.
    #[error("Already closed")]
    AlreadyClosed,
    /// The request is open but not in the status this event needs.
    #[error("Not ready")]
    NotReady,
    /// The event does not exist for this type of request.
    #[error("{event} does not apply to a {kind} request")]
    WrongType {
        event: &'static str,
        kind: &'static str,
    },
}

/// The new status and, when the request closes, its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub description: Option<String>,
}

/// Applies `event` to a request of `kind` in status `from`.
pub fn transition(
    kind: RequestType,
    from: Status,
    event: &Event,
) -> Result<Transition, TransitionError> {
    use Status::{Closed, New, OnApproval, Processing};
    let closed = |description: &str| Transition {
        from,
        to: Closed,
        description: Some(description.to_owned()),
    };
    let moved = |to| Transition {
        from,
        to,
        description: None,
    };
    if from == Closed {
        return Err(TransitionError::AlreadyClosed);
    }
    match (event, kind, from) {
        (Event::AssignManager, RequestType::Sign, New) => Ok(moved(OnApproval)),
        (Event::AssignManager, RequestType::Publish, _) => Err(TransitionError::WrongType {
            event: "assigning a manager later",
            kind: "Publish",
        }),
        (Event::StartEvaluation, RequestType::Publish, New) => Ok(moved(Processing)),
        (Event::FinishEvaluation, RequestType::Publish, Processing) => Ok(moved(OnApproval)),
        (Event::StartEvaluation | Event::FinishEvaluation, RequestType::Sign, _) => {
            Err(TransitionError::WrongType {
                event: "evaluation",
                kind: "Sign",
            })
        }
        (Event::Accept, _, OnApproval) => Ok(closed(descriptions::ACCEPTED)),
        (Event::Decline, _, _) => Ok(closed(descriptions::DECLINED)),
        (Event::Expire, _, _) => Ok(closed(descriptions::EXPIRED)),
        (Event::Fail(reason), _, _) => Ok(closed(&format!("The request is declined: {reason}"))),
        _ => Err(TransitionError::NotReady),
    }
}

#[cfg(test)]
mod tests {
    use super::RequestType::{Publish, Sign};
    use super::Status::{Closed, New, OnApproval, Processing};
    use super::*;

    const ALL: [Status; 4] = [New, Processing, OnApproval, Closed];

    fn to(kind: RequestType, from: Status, event: Event) -> Result<Status, TransitionError> {
        transition(kind, from, &event).map(|t| t.to)
    }

    #[test]
    fn sign_requests_follow_their_path() {
        assert_eq!(to(Sign, New, Event::AssignManager), Ok(OnApproval));
        assert_eq!(to(Sign, OnApproval, Event::Accept), Ok(Closed));
    }

    #[test]
    fn publish_requests_follow_their_path() {
        assert_eq!(to(Publish, New, Event::StartEvaluation), Ok(Processing));
        assert_eq!(
            to(Publish, Processing, Event::FinishEvaluation),
            Ok(OnApproval)
        );
        assert_eq!(to(Publish, OnApproval, Event::Accept), Ok(Closed));
    }

    #[test]
    fn deferred_steps_move_only_from_the_status_they_expect() {
        for from in [Processing, OnApproval] {
            assert_eq!(
                to(Sign, from, Event::AssignManager),
                Err(TransitionError::NotReady),
                "{from:?}"
            );
        }
        for from in [Processing, OnApproval] {
            assert_eq!(
                to(Publish, from, Event::StartEvaluation),
                Err(TransitionError::NotReady)
            );
        }
        for from in [New, OnApproval] {
            assert_eq!(
                to(Publish, from, Event::FinishEvaluation),
                Err(TransitionError::NotReady)
            );
        }
    }

    #[test]
    fn steps_of_the_other_type_do_not_apply() {
        assert!(matches!(
            to(Publish, New, Event::AssignManager),
            Err(TransitionError::WrongType { .. })
        ));
        assert!(matches!(
            to(Sign, New, Event::StartEvaluation),
            Err(TransitionError::WrongType { .. })
        ));
        assert!(matches!(
            to(Sign, New, Event::FinishEvaluation),
            Err(TransitionError::WrongType { .. })
        ));
    }

    #[test]
    fn accept_needs_on_approval_and_says_not_ready_otherwise() {
        for kind in [Sign, Publish] {
            assert_eq!(to(kind, New, Event::Accept), Err(TransitionError::NotReady));
            assert_eq!(
                to(kind, Processing, Event::Accept),
                Err(TransitionError::NotReady)
            );
            let accepted = transition(kind, OnApproval, &Event::Accept).expect("accepted");
            assert_eq!(
                accepted.description.as_deref(),
                Some("The request is accepted.")
            );
        }
    }

    #[test]
    fn decline_works_from_every_open_status() {
        for kind in [Sign, Publish] {
            for from in [New, Processing, OnApproval] {
                let declined = transition(kind, from, &Event::Decline).expect("declined");
                assert_eq!(declined.to, Closed);
                assert_eq!(
                    declined.description.as_deref(),
                    Some("The request is declined.")
                );
            }
        }
    }

    #[test]
    fn expiry_closes_any_open_request_with_the_spec_text() {
        for kind in [Sign, Publish] {
            for from in [New, Processing, OnApproval] {
                let expired = transition(kind, from, &Event::Expire).expect("expired");
                assert_eq!(
                    expired.description.as_deref(),
                    Some("The request is declined: the request is no longer relevant")
                );
            }
        }
    }

    #[test]
    fn a_permanent_failure_closes_with_its_reason() {
        let failed = transition(
            Publish,
            Processing,
            &Event::Fail("the release is gone".into()),
        )
        .expect("closed");
        assert_eq!(failed.to, Closed);
        assert_eq!(
            failed.description.as_deref(),
            Some("The request is declined: the release is gone")
        );
    }

    #[test]
    fn nothing_moves_a_closed_request() {
        for kind in [Sign, Publish] {
            for event in [
                Event::AssignManager,
                Event::StartEvaluation,
                Event::FinishEvaluation,
                Event::Accept,
                Event::Decline,
                Event::Expire,
                Event::Fail("x".into()),
            ] {
                assert_eq!(
                    to(kind, Closed, event.clone()),
                    Err(TransitionError::AlreadyClosed),
                    "{event:?}"
                );
            }
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Status::parse("Open"), None);
        assert_eq!(
            serde_json::to_string(&OnApproval).expect("json"),
            "\"On approval\""
        );
    }
}
