//! `label-cli`, the command-line client of the label-service's JSON API (spec section 6):
//! log in (the token is kept in a file), register, apply, list and show requests, accept,
//! decline, upload releases and appoint managers, with tables for people and `--json` for
//! scripts.
//!
//! It talks to the service only over HTTP, like any other client: it must not reach into the
//! database, the use cases or the service's configuration. Exit codes are part of its
//! interface: 0 success, 1 the API refused, 2 a usage error, 3 the service is unreachable,
//! 4 `requests wait` timed out.

pub mod client;
pub mod output;
pub mod token;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use self::client::{ApiClient, Method};
use self::output::{Me, RequestPage, Session};
use self::token::TokenFile;
use label_service::domain::{Manager, Release, Request};

/// The service the client talks to when neither `--url` nor `LABEL_URL` says otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8081";

/// The command line of `label-cli`.
#[derive(Debug, Parser)]
#[command(
    name = "label-cli",
    version,
    about = "The command-line client of the label-service",
    long_about = "The command-line client of the label-service's JSON API.\n\n\
        Exit codes: 0 success, 1 the API refused (its `detail` and `code` go to stderr), \
        2 a usage error, 3 the service is unreachable, 4 `requests wait` timed out."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, before or after the command's name.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The label-service's base URL.
    #[arg(long, env = "LABEL_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,
    /// Where the session token is kept [default: `token` in the user's config directory
    /// for label-cli].
    #[arg(long, env = "LABEL_CLI_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in and keep the token.
    Login(LoginArgs),
    /// Forget the kept token.
    Logout,
    /// Register a new user (a non-member), log in as them and keep the token.
    Register(RegisterArgs),
    /// Show the logged-in user, their role and their artist or manager record.
    Whoami,
    /// Sign and publish requests.
    #[command(subcommand)]
    Requests(RequestsCommand),
    /// Releases and their tracks.
    #[command(subcommand)]
    Releases(ReleasesCommand),
    /// Managers (admins only).
    #[command(subcommand)]
    Managers(ManagersCommand),
}

/// `login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The user's e-mail address.
    #[arg(long)]
    pub email: String,
    #[command(flatten)]
    pub password: PasswordArg,
}

/// `register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The user's name.
    #[arg(long)]
    pub name: String,
    /// The user's e-mail address.
    #[arg(long)]
    pub email: String,
    #[command(flatten)]
    pub password: PasswordArg,
}

/// A password: the flag, the environment, or a prompt when the terminal is interactive.
#[derive(Args)]
pub struct PasswordArg {
    /// The password (prefer `LABEL_PASSWORD` or the prompt: flags show in process lists).
    #[arg(long, env = "LABEL_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

impl std::fmt::Debug for PasswordArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordArg").finish_non_exhaustive()
    }
}

/// `requests ...`.
#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// Your requests (non-members, artists) or those assigned to you (managers), newest first.
    List(ListRequestsArgs),
    /// One request with its evaluation.
    Show {
        /// The request's id.
        id: i64,
    },
    /// Wait until a request reaches a status (the deferred steps run in the background),
    /// then show it; exit code 4 when it does not within the timeout.
    Wait {
        /// The request's id.
        id: i64,
        /// The status to wait for.
        #[arg(long, value_enum)]
        status: StatusArg,
        /// How long to wait, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Ask to join the label (non-members).
    ApplySign {
        /// The artist name wanted (1-32 characters).
        #[arg(long)]
        nickname: String,
    },
    /// Ask to publish one of your releases (artists).
    ApplyPublish {
        /// The release's id.
        #[arg(long)]
        release: i64,
        /// The day it should come out, YYYY-MM-DD (at least today + 8 days).
        #[arg(long)]
        date: NaiveDate,
    },
    /// Accept a request that is on approval (its manager).
    Accept {
        /// The request's id.
        id: i64,
    },
    /// Decline an open request (its manager).
    Decline {
        /// The request's id.
        id: i64,
    },
}

/// `requests list`.
#[derive(Debug, Args)]
pub struct ListRequestsArgs {
    /// Only requests in this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// Only requests of this type.
    #[arg(long = "type", value_enum)]
    pub kind: Option<TypeArg>,
    /// Page length, 1 to 100 (the service's default is 20).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Requests to skip.
    #[arg(long)]
    pub offset: Option<u32>,
}

/// A request status as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    New,
    Processing,
    OnApproval,
    Closed,
}

impl StatusArg {
    /// The status as the API spells it.
    pub fn api_name(self) -> &'static str {
        match self {
            StatusArg::New => "New",
            StatusArg::Processing => "Processing",
            StatusArg::OnApproval => "On approval",
            StatusArg::Closed => "Closed",
        }
    }
}

/// A request type as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TypeArg {
    Sign,
    Publish,
}

impl TypeArg {
    /// The type as the API spells it.
    pub fn api_name(self) -> &'static str {
        match self {
            TypeArg::Sign => "Sign",
            TypeArg::Publish => "Publish",
        }
    }
}

/// `releases ...`.
#[derive(Debug, Subcommand)]
pub enum ReleasesCommand {
    /// Your releases (artists) or your artists' releases (managers).
    List,
    /// One release with its tracks.
    Show {
        /// The release's id.
        id: i64,
    },
    /// Upload a release with its tracks from a JSON file (artists).
    ///
    /// The file holds `{"title": ..., "date": "YYYY-MM-DD" (optional), "tracks": [{"title":
    /// ..., "duration_seconds": ..., "genre": ..., "type": ..., "artist_ids": [...]
    /// (optional)}]}`; `-` reads it from standard input.
    Upload {
        /// The release as JSON.
        #[arg(long)]
        file: PathBuf,
    },
}

/// `managers ...`.
#[derive(Debug, Subcommand)]
pub enum ManagersCommand {
    /// Every manager with their artists.
    List,
    /// Appoint users managers, all or nothing.
    Appoint {
        /// The users' ids.
        #[arg(required = true)]
        user_ids: Vec<i64>,
    },
}

/// Why a command did not succeed, and so the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line or the files it names are not usable: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The API answered with an error: exit 1.
    #[error("{detail} ({code}, HTTP {status})")]
    Refused {
        status: u16,
        code: String,
        detail: String,
        /// Field errors of a 422, `field: message`.
        errors: Vec<String>,
    },
    /// The API answered success with something this client cannot read: exit 1.
    #[error("unexpected answer from the service: {0}")]
    Unexpected(String),
    /// The service could not be reached: exit 3.
    #[error("the service at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// `requests wait` gave up: exit 4.
    #[error("{0}")]
    TimedOut(String),
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Refused { .. } | CliError::Unexpected(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable { .. } => 3,
            CliError::TimedOut(_) => 4,
        }
    }
}

/// Parses the command line, runs the command and says how the process ends.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap prints help and version with 0 and usage errors with 2.
        Err(error) => error.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(text) => {
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            if let CliError::Refused { errors, .. } = &error {
                for line in errors {
                    eprintln!("  {line}");
                }
            }
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs one command; what to print on standard output.
pub async fn run(cli: Cli) -> Result<String, CliError> {
    let token_file = match &cli.global.token_file {
        Some(path) => TokenFile::new(path.clone()),
        None => TokenFile::default_location()?,
    };
    let client = ApiClient::new(&cli.global.url, Duration::from_secs(60))?;
    let json_output = cli.global.json;
    let ctx = Context {
        client,
        token_file,
        json: json_output,
    };
    match cli.command {
        Command::Login(args) => ctx.login(args).await,
        Command::Logout => ctx.logout(),
        Command::Register(args) => ctx.register(args).await,
        Command::Whoami => {
            let me = ctx.authed(Method::Get, "/me", &[], None).await?;
            ctx.show::<Me>(me, output::me)
        }
        Command::Requests(command) => ctx.requests(command).await,
        Command::Releases(command) => ctx.releases(command).await,
        Command::Managers(command) => ctx.managers(command).await,
    }
}

/// What every command needs.
#[derive(Debug)]
struct Context {
    client: ApiClient,
    token_file: TokenFile,
    json: bool,
}

impl Context {
    /// A call with the kept token; not logged in is a usage error.
    async fn authed(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let token = self.token_file.read()?;
        self.client
            .call(method, path, query, body, Some(&token))
            .await
    }

    /// The API's JSON with `--json`, else a table made from it.
    fn show<T: DeserializeOwned>(
        &self,
        value: Value,
        render: impl Fn(&T) -> String,
    ) -> Result<String, CliError> {
        if self.json {
            return pretty(&value);
        }
        let typed: T = serde_json::from_value(value)
            .map_err(|error| CliError::Unexpected(error.to_string()))?;
        Ok(render(&typed))
    }

    async fn login(&self, args: LoginArgs) -> Result<String, CliError> {
        let password = password(args.password, false)?;
        let body = json!({"email": args.email, "password": password});
        let answer = self
            .client
            .call(Method::Post, "/auth/login", &[], Some(&body), None)
            .await?;
        self.keep_session(answer, "Logged in")
    }

    async fn register(&self, args: RegisterArgs) -> Result<String, CliError> {
        let password = password(args.password, true)?;
        let body = json!({"name": args.name, "email": args.email, "password": password});
        let answer = self
            .client
            .call(Method::Post, "/auth/register", &[], Some(&body), None)
            .await?;
        self.keep_session(answer, "Registered")
    }

    /// Keeps the token of a login or registration answer and says who is logged in. The
    /// JSON output leaves the token out: it lives in the token file, not in logs of scripts.
    fn keep_session(&self, answer: Value, what: &str) -> Result<String, CliError> {
        let session: Session = serde_json::from_value(answer)
            .map_err(|error| CliError::Unexpected(error.to_string()))?;
        self.token_file.write(&session.token)?;
        if self.json {
            return pretty(&json!({
                "user": session.user,
                "token_file": self.token_file.path(),
            }));
        }
        Ok(format!(
            "{what} as {} <{}> ({}), user {}; token kept in {}",
            session.user.name,
            session.user.email,
            session.user.role.as_str(),
            session.user.id,
            self.token_file.path().display()
        ))
    }

    fn logout(&self) -> Result<String, CliError> {
        let removed = self.token_file.remove()?;
        if self.json {
            return pretty(&json!({
                "logged_out": removed,
                "token_file": self.token_file.path(),
            }));
        }
        Ok(if removed {
            format!("Logged out; removed {}", self.token_file.path().display())
        } else {
            "Not logged in".to_owned()
        })
    }

    async fn requests(&self, command: RequestsCommand) -> Result<String, CliError> {
        match command {
            RequestsCommand::List(args) => {
                let mut query = Vec::new();
                if let Some(status) = args.status {
                    query.push(("status", status.api_name().to_owned()));
                }
                if let Some(kind) = args.kind {
                    query.push(("type", kind.api_name().to_owned()));
                }
                if let Some(limit) = args.limit {
                    query.push(("limit", limit.to_string()));
                }
                if let Some(offset) = args.offset {
                    query.push(("offset", offset.to_string()));
                }
                let page = self.authed(Method::Get, "/requests", &query, None).await?;
                self.show::<RequestPage>(page, output::request_page)
            }
            RequestsCommand::Show { id } => {
                let request = self
                    .authed(Method::Get, &format!("/requests/{id}"), &[], None)
                    .await?;
                self.show::<Request>(request, output::request)
            }
            RequestsCommand::Wait {
                id,
                status,
                timeout,
            } => {
                let path = format!("/requests/{id}");
                let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
                loop {
                    let request = self.authed(Method::Get, &path, &[], None).await?;
                    let now = request.get("status").and_then(Value::as_str).unwrap_or("");
                    if now == status.api_name() {
                        return self.show::<Request>(request, output::request);
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(CliError::TimedOut(format!(
                            "request {id} is still {now:?} after {timeout} s, not {:?}",
                            status.api_name()
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            RequestsCommand::ApplySign { nickname } => {
                let body = json!({"nickname": nickname});
                let request = self
                    .authed(Method::Post, "/requests/sign", &[], Some(&body))
                    .await?;
                self.show::<Request>(request, output::request)
            }
            RequestsCommand::ApplyPublish { release, date } => {
                let body = json!({"release_id": release, "expected_date": date});
                let request = self
                    .authed(Method::Post, "/requests/publish", &[], Some(&body))
                    .await?;
                self.show::<Request>(request, output::request)
            }
            RequestsCommand::Accept { id } => {
                let request = self
                    .authed(Method::Post, &format!("/requests/{id}/accept"), &[], None)
                    .await?;
                self.show::<Request>(request, output::request)
            }
            RequestsCommand::Decline { id } => {
                let request = self
                    .authed(Method::Post, &format!("/requests/{id}/decline"), &[], None)
                    .await?;
                self.show::<Request>(request, output::request)
            }
        }
    }

    async fn releases(&self, command: ReleasesCommand) -> Result<String, CliError> {
        match command {
            ReleasesCommand::List => {
                let releases = self.authed(Method::Get, "/releases", &[], None).await?;
                self.show::<Vec<Release>>(releases, |list| output::releases(list))
            }
            ReleasesCommand::Show { id } => {
                let release = self
                    .authed(Method::Get, &format!("/releases/{id}"), &[], None)
                    .await?;
                self.show::<Release>(release, output::release)
            }
            ReleasesCommand::Upload { file } => {
                let body = read_release_file(&file)?;
                let release = self
                    .authed(Method::Post, "/releases", &[], Some(&body))
                    .await?;
                self.show::<Release>(release, output::release)
            }
        }
    }

    async fn managers(&self, command: ManagersCommand) -> Result<String, CliError> {
        match command {
            ManagersCommand::List => {
                let managers = self.authed(Method::Get, "/managers", &[], None).await?;
                self.show::<Vec<Manager>>(managers, |list| output::managers(list))
            }
            ManagersCommand::Appoint { user_ids } => {
                let body = json!({"user_ids": user_ids});
                let managers = self
                    .authed(Method::Post, "/managers", &[], Some(&body))
                    .await?;
                self.show::<Vec<Manager>>(managers, |list| output::managers(list))
            }
        }
    }
}

/// The password from the flag or `LABEL_PASSWORD`, else asked on the terminal (twice when
/// registering, so that a typo does not lock the user out).
fn password(arg: PasswordArg, confirm: bool) -> Result<String, CliError> {
    if let Some(password) = arg.password {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "no password: pass --password or set LABEL_PASSWORD (no terminal to ask on)".to_owned(),
        ));
    }
    let prompt = |text: &str| {
        rpassword::prompt_password(text)
            .map_err(|error| CliError::Usage(format!("cannot read the password: {error}")))
    };
    let password = prompt("Password: ")?;
    if confirm && prompt("Password again: ")? != password {
        return Err(CliError::Usage("the passwords differ".to_owned()));
    }
    Ok(password)
}

/// Reads a release to upload: a JSON object from the file (or standard input for `-`). An
/// unreadable file or one that is not a JSON object is a usage error; the API checks the
/// values.
fn read_release_file(path: &Path) -> Result<Value, CliError> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| CliError::Usage(format!("cannot read standard input: {error}")))?;
        text
    } else {
        std::fs::read_to_string(path)
            .map_err(|error| CliError::Usage(format!("cannot read {}: {error}", path.display())))?
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|error| CliError::Usage(format!("{} is not JSON: {error}", path.display())))?;
    if !value.is_object() {
        return Err(CliError::Usage(format!(
            "{} must hold a JSON object with title and tracks",
            path.display()
        )));
    }
    Ok(value)
}

fn pretty(value: &impl serde::Serialize) -> Result<String, CliError> {
    serde_json::to_string_pretty(value).map_err(|error| CliError::Unexpected(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_documented_contract() {
        let refused = CliError::Refused {
            status: 409,
            code: "already_closed".to_owned(),
            detail: "Already closed".to_owned(),
            errors: Vec::new(),
        };
        assert_eq!(refused.exit_code(), 1);
        assert_eq!(
            refused.to_string(),
            "Already closed (already_closed, HTTP 409)"
        );
        assert_eq!(CliError::Usage("x".to_owned()).exit_code(), 2);
        let unreachable = CliError::Unreachable {
            url: "http://127.0.0.1:1".to_owned(),
            reason: "refused".to_owned(),
        };
        assert_eq!(unreachable.exit_code(), 3);
    }

    #[test]
    fn the_command_line_parses_global_flags_after_the_command() {
        let cli = Cli::try_parse_from([
            "label-cli",
            "requests",
            "list",
            "--status",
            "on-approval",
            "--json",
            "--url",
            "http://127.0.0.1:9",
        ])
        .expect("parses");
        assert!(cli.global.json);
        assert_eq!(cli.global.url, "http://127.0.0.1:9");
        let Command::Requests(RequestsCommand::List(args)) = cli.command else {
            panic!("not requests list: {:?}", cli.command);
        };
        assert_eq!(args.status.map(StatusArg::api_name), Some("On approval"));
    }

    #[test]
    fn a_bad_date_or_unknown_command_is_a_clap_usage_error() {
        let error = Cli::try_parse_from([
            "label-cli",
            "requests",
            "apply-publish",
            "--release",
            "1",
            "--date",
            "tomorrow",
        ])
        .expect_err("a bad date");
        assert_eq!(error.exit_code(), 2);
        let error = Cli::try_parse_from(["label-cli", "frobnicate"]).expect_err("unknown");
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn a_release_file_must_be_readable_json_object() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.json");
        assert!(matches!(
            read_release_file(&missing),
            Err(CliError::Usage(_))
        ));
        let not_json = dir.path().join("bad.json");
        std::fs::write(&not_json, "title: x").expect("write");
        assert!(matches!(
            read_release_file(&not_json),
            Err(CliError::Usage(_))
        ));
        let array = dir.path().join("array.json");
        std::fs::write(&array, "[]").expect("write");
        assert!(matches!(read_release_file(&array), Err(CliError::Usage(_))));
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"title": "T", "tracks": []}"#).expect("write");
        assert_eq!(
            read_release_file(&good).expect("reads")["title"],
            Value::from("T")
        );
    }
}
