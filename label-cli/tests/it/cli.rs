//! `label-cli` against the real service (PostgreSQL, a Kafka-protocol broker, the binary):
//! the whole workflow driven only through the command line, its tables and `--json`, the
//! private token files, and the exit codes scripts rely on (0, 1 refused, 2 usage,
//! 3 unreachable).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use serde_json::{Value, json};

use crate::stack::{ADMIN_EMAIL, ADMIN_PASSWORD, LabelProcess, LabelStack, run_binary};

const WAIT: Duration = Duration::from_secs(60);

/// One person at the command line: the service's URL and their own token file.
struct CliUser {
    url: String,
    token_file: PathBuf,
}

/// What a run printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().expect("label-cli exited, not killed"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success and returns the standard output.
    fn ok(self, what: &str) -> String {
        assert_eq!(
            self.code, 0,
            "{what}: exit {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self.stdout
    }

    /// Asserts success and parses `--json` output.
    fn json(self, what: &str) -> Value {
        let stdout = self.ok(what);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {stdout}"))
    }
}

impl CliUser {
    fn new(url: &str, dir: &Path, name: &str) -> Self {
        Self {
            url: url.to_owned(),
            // A directory that does not exist yet: label-cli creates it.
            token_file: dir.join(name).join("token"),
        }
    }

    /// Runs `label-cli` with this user's URL and token file; `env` adds variables.
    async fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_label-cli"));
        command
            .args(["--url", &self.url, "--token-file"])
            .arg(&self.token_file)
            .args(args)
            .env_remove("LABEL_URL")
            .env_remove("LABEL_CLI_TOKEN_FILE")
            .env_remove("LABEL_PASSWORD")
            .stdin(std::process::Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        Run::from(command.output().await.expect("run label-cli"))
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[]).await
    }

    /// Polls `requests show <id> --json` until the request is in `status`.
    async fn wait_for_status(&self, id: i64, status: &str) -> Value {
        let id = id.to_string();
        let started = Instant::now();
        loop {
            let request = self
                .run(&["requests", "show", &id, "--json"])
                .await
                .json("requests show");
            if request["status"] == status {
                return request;
            }
            assert!(
                started.elapsed() < WAIT,
                "request {id} not {status} within {WAIT:?}: {request}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    #[cfg(unix)]
    fn assert_token_file_private(&self) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&self.token_file)
            .expect("the token file exists")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{} has mode {:o}",
            self.token_file.display(),
            mode & 0o777
        );
    }

    #[cfg(not(unix))]
    fn assert_token_file_private(&self) {
        assert!(self.token_file.exists());
    }
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_workflow_through_label_cli_with_its_exit_codes() {
    let stack = LabelStack::new().await;
    let service = LabelProcess::start(&stack, &[]).await;
    let url = format!("http://{}", service.address);
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = CliUser::new(&url, dir.path(), "admin");
    let manager = CliUser::new(&url, dir.path(), "manager");
    let artist = CliUser::new(&url, dir.path(), "artist");

    // The admin logs in with the password from the environment.
    let out = admin
        .run_with(
            &["login", "--email", ADMIN_EMAIL],
            &[("LABEL_PASSWORD", ADMIN_PASSWORD)],
        )
        .await
        .ok("admin login");
    assert!(
        out.contains("Logged in as") && out.contains("(admin)"),
        "{out}"
    );
    admin.assert_token_file_private();

    // A future manager registers (password by flag) and the admin appoints them.
    let registered = manager
        .run(&[
            "register",
            "--name",
            "Mia Manager",
            "--email",
            "mia@label.test",
            "--password",
            "manager-password",
            "--json",
        ])
        .await
        .json("manager register");
    assert!(
        registered.get("token").is_none(),
        "no token on stdout: {registered}"
    );
    manager.assert_token_file_private();
    let manager_user_id = registered["user"]["id"].as_i64().expect("user id");
    let appointed = admin
        .run(&[
            "managers",
            "appoint",
            &manager_user_id.to_string(),
            "--json",
        ])
        .await
        .json("managers appoint");
    let manager_id = appointed[0]["id"].as_i64().expect("manager id");
    let me = manager
        .run(&["whoami", "--json"])
        .await
        .json("manager whoami");
    assert_eq!(me["user"]["role"], "manager", "{me}");

    // A newcomer registers and asks to join.
    let out = artist
        .run_with(
            &[
                "register",
                "--name",
                "Ann Lee",
                "--email",
                "ann@example.com",
            ],
            &[("LABEL_PASSWORD", "ann-password")],
        )
        .await
        .ok("artist register");
    assert!(out.contains("(nonmember)"), "{out}");
    artist.assert_token_file_private();
    let sign = artist
        .run(&[
            "requests",
            "apply-sign",
            "--nickname",
            "Nova Lights",
            "--json",
        ])
        .await
        .json("apply-sign");
    assert_eq!(sign["status"], "New", "{sign}");
    let sign_id = sign["id"].as_i64().expect("request id");

    // The deferred action assigns the only manager.
    let on_approval = artist.wait_for_status(sign_id, "On approval").await;
    assert_eq!(on_approval["manager_id"], manager_id);

    // The manager's inbox as a table: its columns and the request's values.
    let table = manager
        .run(&["requests", "list", "--status", "on-approval"])
        .await
        .ok("requests list");
    for expected in [
        "ID",
        "TYPE",
        "STATUS",
        "APPLICANT",
        "SUBJECT",
        "Sign",
        "On approval",
        "Nova Lights",
        "requests 1-1 of 1",
    ] {
        assert!(table.contains(expected), "{expected} in\n{table}");
    }

    // The manager accepts; a second accept is refused by the API: exit 1.
    let out = manager
        .run(&["requests", "accept", &sign_id.to_string()])
        .await
        .ok("accept sign");
    assert!(
        out.contains("Closed") && out.contains("The request is accepted."),
        "{out}"
    );
    let again = manager
        .run(&["requests", "accept", &sign_id.to_string()])
        .await;
    assert_eq!(
        again.code, 1,
        "stdout: {}\nstderr: {}",
        again.stdout, again.stderr
    );
    assert!(
        again.stderr.contains("Already closed") && again.stderr.contains("already_closed"),
        "{}",
        again.stderr
    );
    assert!(again.stdout.is_empty(), "{}", again.stdout);

    // The newcomer is an artist now.
    let out = artist.run(&["whoami"]).await.ok("artist whoami");
    assert!(
        out.contains("artist") && out.contains("Nova Lights"),
        "{out}"
    );
    let me = artist
        .run(&["whoami", "--json"])
        .await
        .json("artist whoami");
    assert_eq!(me["user"]["role"], "artist", "{me}");

    // The artist uploads a release with two tracks from a file.
    let release_file = dir.path().join("release.json");
    std::fs::write(
        &release_file,
        serde_json::to_vec(&json!({
            "title": "Night Drive",
            "tracks": [
                {"title": "Neon Highway", "duration_seconds": 214, "genre": "rock", "type": "song"},
                {"title": "Static Hearts", "duration_seconds": 187, "genre": "rock", "type": "remix"}
            ]
        }))
        .expect("json"),
    )
    .expect("write release.json");
    let release = artist
        .run(&[
            "releases",
            "upload",
            "--file",
            release_file.to_str().expect("utf-8 path"),
            "--json",
        ])
        .await
        .json("releases upload");
    assert_eq!(release["status"], "Unpublished", "{release}");
    assert_eq!(
        release["tracks"].as_array().map(Vec::len),
        Some(2),
        "{release}"
    );
    let release_id = release["id"].as_i64().expect("release id");

    // ... and asks to publish it in ten days.
    let date = Utc::now()
        .date_naive()
        .checked_add_days(Days::new(10))
        .expect("a date");
    let publish = artist
        .run(&[
            "requests",
            "apply-publish",
            "--release",
            &release_id.to_string(),
            "--date",
            &date.to_string(),
            "--json",
        ])
        .await
        .json("apply-publish");
    assert_eq!(publish["manager_id"], manager_id, "{publish}");
    let publish_id = publish["id"].as_i64().expect("request id");

    // The deferred evaluation runs; the manager sees it and accepts.
    let evaluated = artist.wait_for_status(publish_id, "On approval").await;
    assert_eq!(
        evaluated["evaluation"].as_array().map(Vec::len),
        Some(2),
        "{evaluated}"
    );
    let out = manager
        .run(&["requests", "show", &publish_id.to_string()])
        .await
        .ok("requests show");
    assert!(
        out.contains("No releases that day") && out.contains("Evaluation"),
        "{out}"
    );
    manager
        .run(&["requests", "accept", &publish_id.to_string()])
        .await
        .ok("accept publish");

    // The release is out.
    let out = artist
        .run(&["releases", "show", &release_id.to_string()])
        .await
        .ok("releases show");
    for expected in [
        "Night Drive",
        "Published",
        "Neon Highway",
        "Static Hearts",
        "3:34",
    ] {
        assert!(out.contains(expected), "{expected} in\n{out}");
    }
    let managers = admin.run(&["managers", "list"]).await.ok("managers list");
    assert!(
        managers.contains("Mia Manager") && managers.contains("ARTISTS"),
        "{managers}"
    );

    // A wrong password is refused by the API: exit 1, with the problem's code.
    let refused = artist
        .run(&[
            "login",
            "--email",
            "ann@example.com",
            "--password",
            "not-her-password",
        ])
        .await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("bad_credentials"),
        "{}",
        refused.stderr
    );

    // Nobody listening: exit 3.
    let nowhere = CliUser {
        url: format!("http://127.0.0.1:{}", closed_port()),
        token_file: artist.token_file.clone(),
    };
    let unreachable = nowhere.run(&["whoami"]).await;
    assert_eq!(unreachable.code, 3, "{}", unreachable.stderr);
    assert!(
        unreachable.stderr.contains("unreachable"),
        "{}",
        unreachable.stderr
    );

    // Usage errors: exit 2, from clap and from label-cli's own checks.
    let unknown = artist.run(&["frobnicate"]).await;
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    let missing = artist
        .run(&["releases", "upload", "--file", "/nonexistent/release.json"])
        .await;
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("cannot read"), "{}", missing.stderr);

    // Logging out forgets the token; what needs one is then a usage error.
    artist.run(&["logout"]).await.ok("logout");
    assert!(!artist.token_file.exists());
    let logged_out = artist.run(&["whoami"]).await;
    assert_eq!(logged_out.code, 2, "{}", logged_out.stderr);
    assert!(
        logged_out.stderr.contains("not logged in"),
        "{}",
        logged_out.stderr
    );
}

/// The commands of README.md's label-cli walkthrough, between its markers, one shell line
/// each (comments and blank lines dropped).
fn readme_walkthrough() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let start = readme
        .find("<!-- label-cli walkthrough: start -->")
        .expect("the walkthrough's start marker");
    let end = readme
        .find("<!-- label-cli walkthrough: end -->")
        .expect("the walkthrough's end marker");
    readme[start..end]
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with("```"))
        .filter(|line| !line.starts_with("<!--"))
        .map(str::to_owned)
        .collect()
}

/// The e-mail address and password of each person in `label-service seed`'s table.
fn seeded_passwords(table: &str) -> Vec<(String, String)> {
    table
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [role, email, password, ..]
                    if ["admin", "manager", "artist", "nonmember"].contains(role) =>
                {
                    Some(((*email).to_owned(), (*password).to_owned()))
                }
                _ => None,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_walkthrough_runs_as_written() {
    let stack = LabelStack::new().await;
    // The demo's cast, seeded the way `cargo xtask demo` seeds it, before the service starts
    // (so the configured test admin is not created: the cast's admin exists).
    let seeded = run_binary(
        &[
            ("APP_ENV", "test"),
            ("LABEL__DATABASE__URL", &stack.database_url),
        ],
        &["seed"],
    );
    let table = String::from_utf8_lossy(&seeded.stdout).into_owned();
    assert!(
        seeded.status.success(),
        "seed: {table}{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let passwords = seeded_passwords(&table);
    assert_eq!(passwords.len(), 9, "{table}");
    let service = LabelProcess::start(&stack, &[]).await;

    let commands = readme_walkthrough();
    assert!(commands.len() > 20, "{commands:?}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cli = PathBuf::from(env!("CARGO_BIN_EXE_label-cli"));
    let bin_dir = cli.parent().expect("the binaries' directory").to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut password = String::new();
    for command in &commands {
        if let Some(rest) = command.strip_prefix("label-cli login --email ") {
            let email = rest.split_whitespace().next().unwrap_or_default();
            password = passwords
                .iter()
                .find(|(e, _)| e == email)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| panic!("{email} is not in the demo cast:\n{table}"));
        } else if command.starts_with("label-cli register ") {
            password = "a-password-of-ann".to_owned();
        }
        // The README's own first line sets PATH to target/debug; the test's binaries may be
        // elsewhere, so that line is replaced by the directory they are in.
        let line = if command.starts_with("export PATH=") {
            "true".to_owned()
        } else {
            command.clone()
        };
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let output = tokio::process::Command::new("sh")
            .args(["-c", &line])
            .current_dir(&root)
            .env("PATH", path)
            .env("LABEL_URL", format!("http://{}", service.address))
            .env("LABEL_CLI_TOKEN_FILE", dir.path().join("token"))
            .env("LABEL_PASSWORD", &password)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("run sh");
        let run = Run::from(output);
        let stdout = run.ok(command);
        println!("$ {command}\n{stdout}");
    }
    // What the walkthrough did, as the database sees it.
    assert_eq!(
        stack
            .scalar_i64("SELECT count(*) FROM label.publications")
            .await,
        1
    );
    assert_eq!(
        stack
            .scalar_i64("SELECT count(*) FROM label.managers")
            .await,
        5
    );
    assert_eq!(
        stack
            .scalar_i64("SELECT count(*) FROM label.users WHERE email = 'ann@example.com'")
            .await,
        1
    );
}
