//! The automatic evaluation of a publish request (spec section 3): criteria run in a fixed
//! order, each gives a diff and a reason, the grade is the sum. Advice for the manager,
//! never a verdict. A criterion that cannot be computed gives 0 with
//! `Can't apply criteria`; it never fails the evaluation. New criteria plug in by
//! implementing [`Criterion`] and joining [`standard_criteria`], without touching the others.
//!
//! Pure: the facts are gathered by the use case and handed in.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// What the criteria look at, gathered before the evaluation. `None` means the fact could
/// not be gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The evaluation day.
    pub today: NaiveDate,
    /// The day the artist wants the release published.
    pub expected_date: NaiveDate,
    /// Scheduled dates of the artist's existing publications (past and future).
    pub artist_publication_dates: Option<Vec<NaiveDate>>,
    /// How many publications of anyone are scheduled on `expected_date`.
    pub publications_on_expected_date: Option<u32>,
}

/// One criterion's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    pub name: String,
    pub diff: i32,
    pub reason: String,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    pub entries: Vec<Entry>,
    /// Sum of the diffs: 0 or below.
    pub grade: i32,
}

/// The fact a criterion needed was missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CannotApply;

/// One rule of the evaluation.
pub trait Criterion: Send + Sync {
    /// The exact name shown to managers.
    fn name(&self) -> &'static str;
    /// The diff (0 or below) and the reason.
    fn judge(&self, facts: &Facts) -> Result<(i32, &'static str), CannotApply>;
}

/// `OK`, the reason of a criterion that is met.
pub const OK: &str = "OK";
/// The reason of a criterion that could not be computed.
pub const CANNOT_APPLY: &str = "Can't apply criteria";

/// At most 2 publications of the artist dated within the last 3 months (future ones count).
#[derive(Debug, Clone, Copy)]
pub struct ReleasesPerSeason;

impl Criterion for ReleasesPerSeason {
    fn name(&self) -> &'static str {
        "No releases from artist more than limit"
    }

    fn judge(&self, facts: &Facts) -> Result<(i32, &'static str), CannotApply> {
        let dates = facts.artist_publication_dates.as_ref().ok_or(CannotApply)?;
        let since = facts
            .today
            .checked_sub_months(Months::new(3))
            .ok_or(CannotApply)?;
        let in_season = dates.iter().filter(|date| **date >= since).count();
        Ok(if in_season > 2 {
            (-1, "More than limit releases per season")
        } else {
            (0, OK)
        })
    }
}

/// At most 1 publication scheduled on the expected day.
#[derive(Debug, Clone, Copy)]
pub struct ReleasesPerDay;

impl Criterion for ReleasesPerDay {
    fn name(&self) -> &'static str {
        "No releases that day"
    }

    fn judge(&self, facts: &Facts) -> Result<(i32, &'static str), CannotApply> {
        let count = facts.publications_on_expected_date.ok_or(CannotApply)?;
        Ok(if count > 1 {
            (-1, "More than one release per day")
        } else {
            (0, OK)
        })
    }
}

/// The criteria in their fixed order.
pub fn standard_criteria() -> Vec<Box<dyn Criterion>> {
    vec![Box::new(ReleasesPerSeason), Box::new(ReleasesPerDay)]
}

/// Runs every criterion in order.
pub fn evaluate(criteria: &[Box<dyn Criterion>], facts: &Facts) -> Evaluation {
    let entries: Vec<Entry> = criteria
        .iter()
        .map(|criterion| {
            let (diff, reason) = criterion.judge(facts).unwrap_or((0, CANNOT_APPLY));
            Entry {
                name: criterion.name().to_owned(),
                diff,
                reason: reason.to_owned(),
            }
        })
        .collect();
    let grade = entries.iter().map(|e| e.diff).sum();
    Evaluation { entries, grade }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    fn facts(dates: &[&str], on_day: u32) -> Facts {
        Facts {
            today: day("2026-06-15"),
            expected_date: day("2026-07-01"),
            artist_publication_dates: Some(dates.iter().map(|d| day(d)).collect()),
            publications_on_expected_date: Some(on_day),
        }
    }

    fn entry(evaluation: &Evaluation, name: &str) -> (i32, String) {
        let e = evaluation
            .entries
            .iter()
            .find(|e| e.name == name)
            .expect("entry");
        (e.diff, e.reason.clone())
    }

    #[test]
    fn two_publications_in_three_months_are_fine_three_are_not() {
        let two = evaluate(
            &standard_criteria(),
            &facts(&["2026-04-01", "2026-06-01"], 0),
        );
        assert_eq!(
            entry(&two, "No releases from artist more than limit"),
            (0, "OK".into())
        );
        let three = evaluate(
            &standard_criteria(),
            &facts(&["2026-04-01", "2026-06-01", "2026-08-01"], 0),
        );
        assert_eq!(
            entry(&three, "No releases from artist more than limit"),
            (-1, "More than limit releases per season".into()),
            "scheduled future publications count"
        );
        let old = evaluate(
            &standard_criteria(),
            &facts(&["2026-01-01", "2026-02-01", "2026-06-01"], 0),
        );
        assert_eq!(
            entry(&old, "No releases from artist more than limit"),
            (0, "OK".into()),
            "publications older than three months do not count"
        );
    }

    #[test]
    fn one_publication_that_day_is_fine_two_are_not() {
        let one = evaluate(&standard_criteria(), &facts(&[], 1));
        assert_eq!(entry(&one, "No releases that day"), (0, "OK".into()));
        let two = evaluate(&standard_criteria(), &facts(&[], 2));
        assert_eq!(
            entry(&two, "No releases that day"),
            (-1, "More than one release per day".into())
        );
    }

    #[test]
    fn the_grade_is_the_sum_in_a_fixed_order() {
        let evaluation = evaluate(
            &standard_criteria(),
            &facts(&["2026-05-01", "2026-05-02", "2026-05-03"], 3),
        );
        let names: Vec<&str> = evaluation.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "No releases from artist more than limit",
                "No releases that day"
            ]
        );
        assert_eq!(evaluation.grade, -2);
        assert_eq!(evaluate(&standard_criteria(), &facts(&[], 0)).grade, 0);
    }

    #[test]
    fn a_criterion_without_its_facts_gives_zero_and_never_fails_the_evaluation() {
        let mut missing = facts(&[], 2);
        missing.artist_publication_dates = None;
        let evaluation = evaluate(&standard_criteria(), &missing);
        assert_eq!(
            entry(&evaluation, "No releases from artist more than limit"),
            (0, "Can't apply criteria".into())
        );
        assert_eq!(
            entry(&evaluation, "No releases that day"),
            (-1, "More than one release per day".into())
        );
        assert_eq!(evaluation.grade, -1);
    }

    #[test]
    fn new_criteria_plug_in_without_touching_the_others() {
        struct Always;
        impl Criterion for Always {
            fn name(&self) -> &'static str {
                "Always unhappy"
            }
            fn judge(&self, _: &Facts) -> Result<(i32, &'static str), CannotApply> {
                Ok((-3, "Never good enough"))
            }
        }
        let mut criteria = standard_criteria();
        criteria.push(Box::new(Always));
        let evaluation = evaluate(&criteria, &facts(&[], 0));
        assert_eq!(evaluation.entries.len(), 3);
        assert_eq!(evaluation.grade, -3);
    }
}
