//! Validation of what people type in: names, e-mail addresses, passwords, nicknames,
//! releases and tracks, and the date rules of a publish request. Pure functions returning
//! every problem at once, each naming its field, so a form can show them all.

use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::ArtistId;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// The field, as a JSON path such as `tracks[1].title`.
    pub field: String,
    /// What is wrong, in words.
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Shortest password accepted.
pub const PASSWORD_MIN: usize = 8;
/// Longest password accepted (hashing cost grows with length; nobody types more).
pub const PASSWORD_MAX: usize = 1024;
/// A publish request's expected date is at least this many days after today.
pub const PUBLISH_NOTICE_DAYS: u64 = 8;

/// Characters that take no room on a screen: white space, controls, and Unicode format
/// characters (zero-width spaces and joiners, bidirectional marks, the soft hyphen, the
/// byte-order mark, ...). A name made only of these would show as nothing.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Whether `value` shows anything at all.
pub fn is_visible(value: &str) -> bool {
    value.chars().any(|c| !is_invisible(c))
}

fn text(errors: &mut Vec<FieldError>, field: &str, value: &str, min: usize, max: usize) {
    let length = value.chars().count();
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if !is_visible(value) {
        errors.push(FieldError::new(
            field,
            "must contain visible characters (spaces and zero-width characters alone do not \
             count)",
        ));
    } else if length < min || length > max {
        errors.push(FieldError::new(
            field,
            format!("must be {min} to {max} characters long (got {length})"),
        ));
    } else if value.trim() != value {
        errors.push(FieldError::new(
            field,
            "must not start or end with white space",
        ));
    } else if value.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
}

fn finish(errors: Vec<FieldError>) -> Result<(), Vec<FieldError>> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A registration: name 1–128, a plausible e-mail address, a password of 8+ characters.
pub fn registration(name: &str, email: &str, password: &str) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    text(&mut errors, "name", name, 1, 128);
    if !is_email(email) {
        errors.push(FieldError::new(
            "email",
            "must be an e-mail address such as ann@example.com",
        ));
    }
    let length = password.chars().count();
    if length < PASSWORD_MIN {
        errors.push(FieldError::new(
            "password",
            format!("must be at least {PASSWORD_MIN} characters long"),
        ));
    } else if length > PASSWORD_MAX {
        errors.push(FieldError::new(
            "password",
            format!("must be at most {PASSWORD_MAX} characters long"),
        ));
    }
    finish(errors)
}

/// Whether `email` is an address people can be written to: RFC 5322 as the `email_address`
/// crate reads it, with a domain of at least two labels, and no display name
/// (`Ann <a@b.io>`) or IP literal. At most 254 characters.
pub fn is_email(email: &str) -> bool {
    let options = email_address::Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    email.len() <= 254 && email_address::EmailAddress::parse_with_options(email, options).is_ok()
}

/// A nickname: 1–32 characters, no surrounding space, no control characters.
pub fn nickname(value: &str) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    text(&mut errors, "nickname", value, 1, 32);
    finish(errors)
}

/// A track as uploaded. Unknown fields are refused, as in every body of the API: a
/// misspelt optional field would otherwise be dropped without a word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrack {
    /// 1–64 characters.
    pub title: String,
    /// 1–9,999 seconds.
    pub duration_seconds: i32,
    /// 1–32 characters.
    pub genre: String,
    /// Free text, 1–32 characters: song, intro, remix...
    #[serde(rename = "type")]
    pub kind: String,
    /// Other participating artists; the owner is added when missing.
    #[serde(default)]
    pub artist_ids: Vec<ArtistId>,
}

/// A release as uploaded (unknown fields refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRelease {
    /// 1–256 characters.
    pub title: String,
    /// The creation date; today when missing.
    #[serde(default)]
    pub date: Option<NaiveDate>,
    /// At least one.
    pub tracks: Vec<NewTrack>,
}

/// The creation dates a release may have: a label's catalogue starts in the 20th century,
/// and PostgreSQL (and people) stop making sense of years beyond four digits.
pub const RELEASE_DATES: (NaiveDate, NaiveDate) = (
    NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date"),
    NaiveDate::from_ymd_opt(9999, 12, 31).expect("a valid date"),
);

/// Most tracks in one release.
pub const TRACKS_MAX: usize = 200;

/// Checks a release and its tracks; every problem is reported.
pub fn release(release: &NewRelease) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    text(&mut errors, "title", &release.title, 1, 256);
    if let Some(date) = release.date
        && !(RELEASE_DATES.0..=RELEASE_DATES.1).contains(&date)
    {
        errors.push(FieldError::new(
            "date",
            format!(
                "must be between {} and {}",
                RELEASE_DATES.0, RELEASE_DATES.1
            ),
        ));
    }
    if release.tracks.is_empty() {
        errors.push(FieldError::new(
            "tracks",
            "a release needs at least one track",
        ));
    }
    if release.tracks.len() > TRACKS_MAX {
        errors.push(FieldError::new(
            "tracks",
            format!("a release has at most {TRACKS_MAX} tracks"),
        ));
    }
    for (index, track) in release.tracks.iter().enumerate() {
        let at = |field: &str| format!("tracks[{index}].{field}");
        text(&mut errors, &at("title"), &track.title, 1, 64);
        text(&mut errors, &at("genre"), &track.genre, 1, 32);
        text(&mut errors, &at("type"), &track.kind, 1, 32);
        if !(1..=9999).contains(&track.duration_seconds) {
            errors.push(FieldError::new(
                at("duration_seconds"),
                "must be 1 to 9999 seconds",
            ));
        }
    }
    finish(errors)
}

/// Why an expected publication date is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateRule {
    /// Earlier than today + 8 days (an invalid value: 422).
    #[error("the expected date must be on or after {earliest}")]
    TooSoon { earliest: NaiveDate },
    /// After the end of the artist's contract (400).
    #[error("the artist's contract ends on {contract_due}, before the expected date")]
    ContractEndsBefore { contract_due: NaiveDate },
}

/// The date rules of a publish request, in the spec's order: at least today + 8 days, and
/// the contract does not end before it.
pub fn publish_date(
    today: NaiveDate,
    expected: NaiveDate,
    contract_due: NaiveDate,
) -> Result<(), DateRule> {
    let earliest = today
        .checked_add_days(Days::new(PUBLISH_NOTICE_DAYS))
        .unwrap_or(NaiveDate::MAX);
    if expected < earliest {
        return Err(DateRule::TooSoon { earliest });
    }
    if contract_due < expected {
        return Err(DateRule::ContractEndsBefore { contract_due });
    }
    Ok(())
}

/// The contract of an artist accepted on `today` ends one year later.
pub fn contract_due(today: NaiveDate) -> NaiveDate {
    today
        .checked_add_months(Months::new(12))
        .unwrap_or(NaiveDate::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    fn track(title: &str, seconds: i32) -> NewTrack {
        NewTrack {
            title: title.into(),
            duration_seconds: seconds,
            genre: "rock".into(),
            kind: "song".into(),
            artist_ids: vec![],
        }
    }

    #[test]
    fn registration_reports_every_bad_field() {
        assert!(registration("Ann", "ann@example.com", "12345678").is_ok());
        let errors = registration("", "not-an-email", "short").expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "email", "password"]);
        assert!(
            registration("Ann", "a@b", "12345678").is_err(),
            "domain without a dot"
        );
        assert!(registration("Ann", "a b@c.de", "12345678").is_err());
    }

    #[test]
    fn nickname_is_1_to_32_characters() {
        assert!(nickname("N").is_ok());
        assert!(nickname(&"é".repeat(32)).is_ok());
        assert!(nickname(&"x".repeat(33)).is_err());
        assert!(nickname("").is_err());
        assert!(nickname(" Nova").is_err());
        assert!(nickname("No\u{7}va").is_err());
    }

    #[test]
    fn release_needs_tracks_within_their_ranges() {
        let good = NewRelease {
            title: "Night Drive".into(),
            date: None,
            tracks: vec![track("Intro", 1), track("Outro", 9999)],
        };
        assert!(release(&good).is_ok());
        let bad = NewRelease {
            title: "x".repeat(257),
            date: None,
            tracks: vec![track("", 0), track(&"t".repeat(65), 10_000)],
        };
        let fields: Vec<_> = release(&bad)
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "title",
                "tracks[0].title",
                "tracks[0].duration_seconds",
                "tracks[1].title",
                "tracks[1].duration_seconds"
            ]
        );
        let empty = NewRelease {
            title: "Empty".into(),
            date: None,
            tracks: vec![],
        };
        assert!(release(&empty).is_err());
    }

    #[test]
    fn expected_date_is_at_least_eight_days_ahead_and_within_the_contract() {
        let today = day("2026-11-21");
        let due = day("2027-11-21");
        assert_eq!(
            publish_date(today, day("2026-11-28"), due),
            Err(DateRule::TooSoon {
                earliest: day("2026-11-29")
            })
        );
        assert_eq!(publish_date(today, day("2026-11-29"), due), Ok(()));
        assert_eq!(publish_date(today, due, due), Ok(()));
        assert_eq!(
            publish_date(today, day("2027-11-22"), due),
            Err(DateRule::ContractEndsBefore { contract_due: due })
        );
    }

    #[test]
    fn a_contract_lasts_one_year() {
        assert_eq!(contract_due(day("2026-11-21")), day("2027-11-21"));
        assert_eq!(contract_due(day("2028-02-29")), day("2029-02-28"));
    }
}
