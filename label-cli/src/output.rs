//! The human-readable side of `label-cli`: the API's answers as tables. `--json` bypasses
//! this module and prints the API's JSON as it came.
//!
//! It must not call the API or decide anything: it only formats what it is given.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Table};
use serde::Deserialize;

use label_service::domain::{Artist, Manager, Release, Request, User};

/// The answer of a login or a registration.
#[derive(Debug, Deserialize)]
pub struct Session {
    pub token: String,
    pub user: User,
}

/// The answer of `GET /me`.
#[derive(Debug, Deserialize)]
pub struct Me {
    pub user: User,
    pub artist: Option<Artist>,
    pub manager: Option<Manager>,
}

/// A page of requests.
#[derive(Debug, Deserialize)]
pub struct RequestPage {
    pub items: Vec<Request>,
    pub total: i64,
    pub limit: u32,
    pub offset: u32,
}

fn table(header: Option<&[&str]>) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    if let Some(header) = header {
        table.set_header(header.iter().map(|name| Cell::new(*name)));
    }
    table
}

/// A two-column table of names and values, for one thing.
fn fields(rows: &[(&str, String)]) -> Table {
    let mut table = table(None);
    for (name, value) in rows {
        table.add_row([Cell::new(*name), Cell::new(value)]);
    }
    table
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

fn ids<T: std::fmt::Display>(ids: &[T]) -> String {
    if ids.is_empty() {
        return "-".to_owned();
    }
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn duration(seconds: i32) -> String {
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// The caller and their artist or manager record.
pub fn me(me: &Me) -> String {
    let user = &me.user;
    let mut rows = vec![
        ("user id", user.id.to_string()),
        ("name", user.name.clone()),
        ("e-mail", user.email.clone()),
        ("role", user.role.as_str().to_owned()),
        (
            "since",
            user.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
    ];
    if let Some(artist) = &me.artist {
        rows.extend([
            ("artist id", artist.id.to_string()),
            ("nickname", artist.nickname.clone()),
            ("contract due", artist.contract_due.to_string()),
            (
                "active",
                if artist.active { "yes" } else { "no" }.to_owned(),
            ),
            ("manager id", artist.manager_id.to_string()),
        ]);
    }
    if let Some(manager) = &me.manager {
        rows.extend([
            ("manager id", manager.id.to_string()),
            ("artists", ids(&manager.artist_ids)),
        ]);
    }
    fields(&rows).to_string()
}

/// A page of requests, one per row, and where the page is.
/// `Name (id)`, or the id alone when the service sent no name.
fn person<T: std::fmt::Display>(name: &str, id: Option<T>) -> String {
    match (name.is_empty(), id) {
        (false, Some(id)) => format!("{name} ({id})"),
        (false, None) => name.to_owned(),
        (true, Some(id)) => id.to_string(),
        (true, None) => "-".to_owned(),
    }
}

pub fn request_page(page: &RequestPage) -> String {
    let mut table = table(Some(&[
        "ID",
        "TYPE",
        "STATUS",
        "CREATED",
        "APPLICANT",
        "MANAGER",
        "SUBJECT",
        "DATE",
        "GRADE",
    ]));
    for request in &page.items {
        let subject = match (&request.nickname, request.release_id) {
            (Some(nickname), _) => nickname.clone(),
            (None, Some(release)) => format!("release {release}"),
            (None, None) => "-".to_owned(),
        };
        table.add_row([
            request.id.to_string(),
            request.kind.as_str().to_owned(),
            request.status.as_str().to_owned(),
            request.created_at.format("%Y-%m-%d %H:%M").to_string(),
            person(&request.applicant_name, Some(request.applicant_id)),
            request
                .manager_name
                .as_deref()
                .map_or_else(|| "-".to_owned(), |name| person(name, request.manager_id)),
            subject,
            or_dash(request.expected_date),
            or_dash(request.grade),
        ]);
    }
    let shown = page.items.len() as i64;
    let first = i64::from(page.offset) + 1;
    let footer = if shown == 0 {
        format!("no requests (total {})", page.total)
    } else {
        format!(
            "requests {first}-{} of {} (limit {})",
            first + shown - 1,
            page.total,
            page.limit
        )
    };
    format!("{table}\n{footer}")
}

/// One request with its evaluation.
pub fn request(request: &Request) -> String {
    let mut rows = vec![
        ("id", request.id.to_string()),
        ("type", request.kind.as_str().to_owned()),
        ("status", request.status.as_str().to_owned()),
        (
            "created",
            request.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        (
            "applicant",
            person(&request.applicant_name, Some(request.applicant_id)),
        ),
        (
            "manager",
            request
                .manager_name
                .as_deref()
                .map_or_else(|| "-".to_owned(), |name| person(name, request.manager_id)),
        ),
    ];
    if let Some(nickname) = &request.nickname {
        rows.push(("nickname", nickname.clone()));
    }
    if let Some(release) = request.release_id {
        rows.push(("release", release.to_string()));
    }
    if let Some(date) = request.expected_date {
        rows.push(("expected date", date.to_string()));
    }
    if let Some(grade) = request.grade {
        rows.push(("grade", grade.to_string()));
    }
    if !request.description.is_empty() {
        rows.push(("description", request.description.clone()));
    }
    let mut text = fields(&rows).to_string();
    if let Some(evaluation) = &request.evaluation {
        let mut table = table(Some(&["CRITERION", "DIFF", "REASON"]));
        for entry in evaluation {
            table.add_row([
                entry.name.clone(),
                entry.diff.to_string(),
                entry.reason.clone(),
            ]);
        }
        text.push_str("\nEvaluation:\n");
        text.push_str(&table.to_string());
    }
    text
}

/// Releases, one per row.
pub fn releases(releases: &[Release]) -> String {
    let mut table = table(Some(&[
        "ID", "TITLE", "STATUS", "CREATED", "ARTIST", "TRACKS",
    ]));
    for release in releases {
        table.add_row([
            release.id.to_string(),
            release.title.clone(),
            release.status.as_str().to_owned(),
            release.created_on.to_string(),
            release.artist_id.to_string(),
            release.tracks.len().to_string(),
        ]);
    }
    table.to_string()
}

/// One release with its tracks.
pub fn release(release: &Release) -> String {
    let rows = [
        ("id", release.id.to_string()),
        ("title", release.title.clone()),
        ("status", release.status.as_str().to_owned()),
        ("created", release.created_on.to_string()),
        ("artist", release.artist_id.to_string()),
    ];
    let mut tracks = table(Some(&[
        "ID", "TITLE", "DURATION", "GENRE", "TYPE", "ARTISTS",
    ]));
    for track in &release.tracks {
        tracks.add_row([
            track.id.to_string(),
            track.title.clone(),
            duration(track.duration_seconds),
            track.genre.clone(),
            track.kind.clone(),
            ids(&track.artist_ids),
        ]);
    }
    format!("{}\nTracks:\n{tracks}", fields(&rows))
}

/// Managers with their artists, one per row.
pub fn managers(managers: &[Manager]) -> String {
    let mut table = table(Some(&["ID", "USER", "NAME", "ARTISTS"]));
    for manager in managers {
        table.add_row([
            manager.id.to_string(),
            manager.user_id.to_string(),
            manager.name.clone(),
            ids(&manager.artist_ids),
        ]);
    }
    table.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> T {
        serde_json::from_value(json).expect("the API's shape")
    }

    #[test]
    fn a_request_page_shows_its_columns_and_where_it_is() {
        let page: RequestPage = value(serde_json::json!({
            "items": [{
                "id": 2, "type": "Publish", "status": "On approval",
                "created_at": "2026-11-21T10:00:00Z", "applicant_id": 3, "manager_id": 1,
                "description": "", "nickname": null, "release_id": 1,
                "expected_date": "2026-12-01", "grade": -1,
                "evaluation": [{"name": "No releases that day", "diff": -1,
                                "reason": "More than one release per day"}],
                "attempts": 0
            }],
            "total": 3, "limit": 1, "offset": 1
        }));
        let text = request_page(&page);
        for expected in [
            "ID",
            "TYPE",
            "STATUS",
            "GRADE",
            "Publish",
            "On approval",
            "release 1",
            "2026-12-01",
            "-1",
            "requests 2-2 of 3 (limit 1)",
        ] {
            assert!(text.contains(expected), "{expected} in\n{text}");
        }
        let detail = request(&page.items[0]);
        assert!(detail.contains("More than one release per day"), "{detail}");
    }

    #[test]
    fn a_release_shows_its_tracks_with_durations() {
        let release: Release = value(serde_json::json!({
            "id": 1, "title": "Night Drive", "created_on": "2026-11-21",
            "status": "Unpublished", "artist_id": 1,
            "tracks": [{"id": 1, "release_id": 1, "title": "Neon Highway",
                        "duration_seconds": 214, "genre": "rock", "type": "song",
                        "artist_ids": [1, 2]}]
        }));
        let text = super::release(&release);
        for expected in ["Night Drive", "Unpublished", "Neon Highway", "3:34", "1, 2"] {
            assert!(text.contains(expected), "{expected} in\n{text}");
        }
    }
}
