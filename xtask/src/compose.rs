//! `cargo xtask compose check`: checks the deployment files without starting a container or
//! building an image. `deploy/compose.yaml` goes through the compose client's own
//! validation (`docker compose config`, or the standalone `docker-compose`), once with every
//! required variable set and once with the secrets missing, which must be refused; then
//! house rules the client does not know are linted here: images pinned to exact versions,
//! health checks, `depends_on` conditions, secrets only from the env file, and the
//! Dockerfile's basics (multi-stage, non-root final images, pinned bases, no remote `ADD`,
//! no secret in `ENV`/`ARG`, no build tools in a final image).
//!
//! It must not talk to a Docker daemon, pull or build anything: it runs where CI runs.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use yaml_rust2::{Yaml, YamlLoader};

use crate::stack::Layout;
use crate::sys;

/// Images whose releases are numbered `major.minor` (PostgreSQL 10+, Debian point releases):
/// for them `15.13` is an exact version, not a floating one.
const TWO_PART_VERSIONED: &[&str] = &["postgres", "debian"];

/// Words in a variable name that mark it as a secret.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "PRIVATE_KEY",
    "API_KEY",
    "CREDENTIAL",
];

/// Packages and tools that belong in a build stage, never in a final image.
const BUILD_TOOLS: &[&str] = &[
    "build-essential",
    "gcc",
    "g++",
    "clang",
    "cmake",
    "make",
    "pkg-config",
    "cargo",
    "rustc",
    "rustup",
];

/// Base images that are toolchains: a final image must not start from one.
const BUILD_IMAGES: &[&str] = &["rust", "golang", "gcc", "buildpack-deps", "node"];

/// `cargo xtask compose check`.
pub fn check(layout: &Layout) -> Result<()> {
    let deploy = layout.root.join("deploy");
    let compose_path = deploy.join("compose.yaml");
    let dockerfile_path = deploy.join("Dockerfile");
    let example_path = deploy.join(".env.example");
    let read = |path: &Path| {
        fs::read_to_string(path).with_context(|| format!("cannot read {}", layout.rel(path)))
    };
    let compose = read(&compose_path)?;
    let dockerfile = read(&dockerfile_path)?;
    let example = read(&example_path)?;

    let mut problems = Vec::new();
    sys::step(format!("linting {}", layout.rel(&dockerfile_path)));
    problems.extend(
        lint_dockerfile(&dockerfile)
            .into_iter()
            .map(|p| format!("{}:{p}", layout.rel(&dockerfile_path))),
    );
    sys::step(format!("linting {}", layout.rel(&compose_path)));
    problems.extend(
        lint_compose(&compose)
            .into_iter()
            .map(|p| format!("{}: {p}", layout.rel(&compose_path))),
    );
    let ignore_path = layout.root.join(".dockerignore");
    let ignore = fs::read_to_string(&ignore_path).unwrap_or_default();
    problems.extend(
        dockerignore_problems(&ignore)
            .into_iter()
            .map(|p| format!("{}: {p}", layout.rel(&ignore_path))),
    );
    let required = required_variables(&compose);
    problems.extend(
        missing_from_example(&required, &example)
            .into_iter()
            .map(|name| {
                format!(
                    "{}: the required variable {name} is not listed",
                    layout.rel(&example_path)
                )
            }),
    );
    for problem in &problems {
        sys::note(problem);
    }
    if !problems.is_empty() {
        bail!("{} problem(s) in the deployment files", problems.len());
    }
    sys::note(format!(
        "images pinned, health checks, depends_on conditions, Dockerfile rules: ok \
         (required variables: {})",
        required.iter().cloned().collect::<Vec<_>>().join(", ")
    ));

    let client = compose_client()?;
    let work = layout.root.join("target/compose-check");
    fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;

    sys::step("validating with the compose client, every required variable set");
    let filled = work.join("filled.env");
    fs::write(&filled, fill_required(&example, &required))
        .with_context(|| format!("cannot write {}", filled.display()))?;
    let mut cmd = client.config_command(&compose_path, &filled, &required);
    let output = sys::capture(&mut cmd)?;
    sys::note(format!("$ {}", sys::display(&cmd)));
    if !output.status.success() {
        bail!(
            "`{}` refused deploy/compose.yaml:\n{}",
            sys::display(&cmd),
            sys::combined_output(&output)
        );
    }
    sys::note("valid");

    sys::step("validating with the secrets missing (deploy/.env.example as is): must be refused");
    let mut cmd = client.config_command(&compose_path, &example_path, &required);
    let output = sys::capture(&mut cmd)?;
    sys::note(format!("$ {}", sys::display(&cmd)));
    let text = sys::combined_output(&output);
    if output.status.success() {
        bail!("compose accepted deploy/compose.yaml without its secrets; use ${{VAR:?message}}");
    }
    match required.iter().find(|name| text.contains(name.as_str())) {
        Some(name) => sys::note(format!("refused, naming {name}")),
        None => bail!("compose refused the file without naming a missing variable:\n{text}"),
    }
    sys::step("compose check passed");
    Ok(())
}

/// The compose client found on this machine.
#[derive(Debug)]
struct Client {
    program: PathBuf,
    /// Arguments before the global options: `compose` for the Docker CLI plugin.
    prefix: Vec<&'static str>,
}

impl Client {
    fn config_command(&self, compose: &Path, env_file: &Path, clear: &BTreeSet<String>) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.prefix)
            .arg("--env-file")
            .arg(env_file)
            .arg("-f")
            .arg(compose)
            .args(["--profile", "demo", "--profile", "grafana", "config", "-q"]);
        // Only the env file may provide the variables: the caller's shell must not.
        for name in clear {
            cmd.env_remove(name);
        }
        cmd.env_remove("COMPOSE_PROFILES")
            .env_remove("COMPOSE_FILE");
        cmd
    }
}

/// `docker compose` (v2 plugin) when available, else the standalone `docker-compose`.
fn compose_client() -> Result<Client> {
    sys::step("finding a compose client");
    if let Some(docker) = sys::which("docker") {
        let output = sys::capture(Command::new(&docker).args(["compose", "version"]))?;
        if output.status.success() {
            sys::note(sys::combined_output(&output));
            return Ok(Client {
                program: docker,
                prefix: vec!["compose"],
            });
        }
    }
    if let Some(standalone) = sys::which("docker-compose") {
        let output = sys::capture(Command::new(&standalone).arg("version"))?;
        if output.status.success() {
            let text = sys::combined_output(&output);
            sys::note(text.lines().next().unwrap_or_default());
            return Ok(Client {
                program: standalone,
                prefix: Vec::new(),
            });
        }
    }
    bail!(
        "no compose client: neither `docker compose` nor `docker-compose` runs here; install \
         one with `apt-get install -y --no-install-recommends docker-compose` (or Docker's \
         compose plugin)"
    )
}

/// Whether an image reference names one exact version: a digest, or a tag that starts
/// with `major.minor.patch` (`major.minor` for [`TWO_PART_VERSIONED`] images), optionally
/// prefixed by `v` and followed by a variant such as `-slim`.
pub fn image_pin_problem(reference: &str) -> Option<String> {
    if reference.contains("@sha256:") {
        return None;
    }
    if reference.contains("${") {
        return Some(format!(
            "{reference}: the image or its tag comes from a variable"
        ));
    }
    let last_part = reference.rsplit('/').next().unwrap_or(reference);
    let Some((name, tag)) = last_part.split_once(':') else {
        return Some(format!("{reference}: no tag, which means `latest`"));
    };
    if tag.contains("latest") {
        return Some(format!("{reference}: `latest` is not a version"));
    }
    let version = tag.strip_prefix('v').unwrap_or(tag);
    let version = version.split('-').next().unwrap_or_default();
    let parts: Vec<&str> = version.split('.').collect();
    let numeric = parts
        .iter()
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    let needed = if TWO_PART_VERSIONED.contains(&name) {
        2
    } else {
        3
    };
    if !numeric || parts.len() < needed {
        let form = if needed == 2 {
            "major.minor"
        } else {
            "major.minor.patch"
        };
        return Some(format!(
            "{reference}: the tag `{tag}` floats; pin an exact version ({form}) or a digest"
        ));
    }
    None
}

/// One build stage of a Dockerfile.
#[derive(Debug)]
struct Stage {
    line: usize,
    name: Option<String>,
    /// The index of the stage it starts from, when it starts from an earlier stage.
    parent: Option<usize>,
    /// The external image it starts from, when it does.
    image: Option<String>,
    user: Option<String>,
    /// The line of a `RUN` that installs a build tool.
    installs_build_tool: Option<usize>,
    /// Another stage starts from it or copies from it: not a final image.
    used: bool,
}

/// The Dockerfile's rule violations, each as `LINE: message`.
pub fn lint_dockerfile(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut copied_from = Vec::new();
    for (line, instruction) in logical_lines(text) {
        let mut words = instruction.split_whitespace();
        let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
        let args: Vec<&str> = words.collect();
        match keyword.as_str() {
            "FROM" => {
                let operands: Vec<&str> = args
                    .iter()
                    .copied()
                    .filter(|a| !a.starts_with("--"))
                    .collect();
                let base = operands.first().copied().unwrap_or_default();
                let name = match operands.as_slice() {
                    [_, as_word, name, ..] if as_word.eq_ignore_ascii_case("as") => {
                        Some(name.to_ascii_lowercase())
                    }
                    _ => None,
                };
                let parent = stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(&base.to_ascii_lowercase()));
                let mut user = None;
                let mut image = None;
                match parent {
                    Some(index) => {
                        stages[index].used = true;
                        user.clone_from(&stages[index].user);
                    }
                    None if base.eq_ignore_ascii_case("scratch") => {}
                    None => {
                        if let Some(problem) = image_pin_problem(base) {
                            problems.push(format!("{line}: FROM {problem}"));
                        }
                        image = Some(base.to_owned());
                    }
                }
                stages.push(Stage {
                    line,
                    name,
                    parent,
                    image,
                    user,
                    installs_build_tool: None,
                    used: false,
                });
            }
            _ if stages.is_empty() && keyword != "ARG" => {
                problems.push(format!("{line}: {keyword} before the first FROM"));
            }
            _ if stages.is_empty() => {}
            "USER" => {
                if let Some(stage) = stages.last_mut() {
                    stage.user = args.first().map(|u| (*u).to_owned());
                }
            }
            "ADD" if args.iter().any(|a| is_remote(a)) => {
                problems.push(format!(
                    "{line}: ADD of a remote source; download in a RUN with a checksum, or COPY"
                ));
            }
            "COPY" => {
                for arg in &args {
                    if let Some(from) = arg.strip_prefix("--from=") {
                        copied_from.push(from.to_ascii_lowercase());
                    }
                }
            }
            "ENV" | "ARG" => {
                for name in declared_names(&keyword, &args) {
                    if is_secret_name(&name) {
                        problems.push(format!(
                            "{line}: {keyword} {name} looks like a secret; pass it at run time"
                        ));
                    }
                }
            }
            "RUN" => {
                let installs = instruction.contains("install")
                    && instruction
                        .split_whitespace()
                        .any(|w| BUILD_TOOLS.contains(&w) || w.ends_with("-dev"));
                if installs && let Some(stage) = stages.last_mut() {
                    stage.installs_build_tool.get_or_insert(line);
                }
            }
            _ => {}
        }
    }
    for from in &copied_from {
        if let Some(stage) = stages.iter_mut().find(|s| s.name.as_deref() == Some(from)) {
            stage.used = true;
        }
    }
    if stages.len() < 2 {
        problems.push("1: not a multi-stage build: build in one stage, run in another".to_owned());
    }
    for stage in stages.iter().filter(|s| !s.used) {
        let label = stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage at line {}", stage.line));
        match stage.user.as_deref() {
            None => problems.push(format!(
                "{}: final image {label} runs as root: no USER in it or its bases",
                stage.line
            )),
            Some(user) if is_root(user) => problems.push(format!(
                "{}: final image {label} runs as root (USER {user})",
                stage.line
            )),
            Some(_) => {}
        }
        let mut current = Some(stage);
        while let Some(s) = current {
            if let Some(run_line) = s.installs_build_tool {
                problems.push(format!(
                    "{}: final image {label} gets build tools from the RUN at line {run_line}",
                    stage.line
                ));
            }
            if let Some(image) = &s.image {
                let repository = image.split([':', '@']).next().unwrap_or_default();
                let short = repository.rsplit('/').next().unwrap_or_default();
                if BUILD_IMAGES.contains(&short) {
                    problems.push(format!(
                        "{}: final image {label} starts from the toolchain image {image}",
                        stage.line
                    ));
                }
            }
            current = s.parent.map(|index| &stages[index]);
        }
    }
    problems
}

/// Instructions with continuation lines joined, comments and blank lines dropped, each
/// with the number of its first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (continues, body) = match trimmed.strip_suffix('\\') {
            Some(body) => (true, body.trim_end()),
            None => (false, trimmed),
        };
        let entry = current.get_or_insert_with(|| (index + 1, String::new()));
        if !entry.1.is_empty() && !body.is_empty() {
            entry.1.push(' ');
        }
        entry.1.push_str(body);
        if !continues && let Some(done) = current.take() {
            lines.push(done);
        }
    }
    lines.extend(current);
    lines
}

/// The names an `ENV` or `ARG` instruction declares (`K=V ...`, or the legacy `ENV K V`).
fn declared_names(keyword: &str, args: &[&str]) -> Vec<String> {
    let Some(first) = args.first() else {
        return Vec::new();
    };
    if keyword == "ENV" && !first.contains('=') {
        return vec![(*first).to_owned()];
    }
    args.iter()
        .filter(|a| keyword == "ARG" || a.contains('='))
        .map(|a| a.split('=').next().unwrap_or_default().to_owned())
        .filter(|name| !name.is_empty() && !name.starts_with('"'))
        .collect()
}

fn is_remote(source: &str) -> bool {
    ["http://", "https://", "git@"]
        .iter()
        .any(|scheme| source.starts_with(scheme))
}

fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|word| upper.contains(word))
}

fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or_default();
    name == "root" || name == "0" || name.is_empty()
}

/// A scalar of a compose file as text (`restart: no`, `image: x:1`, a number or a boolean).
fn scalar(node: &Yaml) -> Option<String> {
    match node {
        Yaml::String(text) | Yaml::Real(text) => Some(text.clone()),
        Yaml::Integer(number) => Some(number.to_string()),
        Yaml::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// The compose file's rule violations, each as `service `name`: message`. The file is
/// read with a YAML parser; the compose client validates it against the compose schema
/// afterwards, so this only checks the house rules.
pub fn lint_compose(text: &str) -> Vec<String> {
    let documents = match YamlLoader::load_from_str(text) {
        Ok(documents) => documents,
        Err(e) => return vec![format!("not valid YAML: {e}")],
    };
    let Some(services) = documents
        .first()
        .and_then(|document| document["services"].as_hash())
        .filter(|services| !services.is_empty())
    else {
        return vec!["no services found under `services:`".to_owned()];
    };
    let names: BTreeSet<String> = services.keys().filter_map(scalar).collect();
    let mut problems = Vec::new();
    for (name, service) in services {
        let name = scalar(name).unwrap_or_default();
        let mut problem = |message: String| problems.push(format!("service `{name}`: {message}"));
        if !service.is_hash() {
            problem("is not a mapping".to_owned());
            continue;
        }
        match scalar(&service["image"]) {
            Some(image) => {
                if let Some(pin) = image_pin_problem(&image) {
                    problem(format!("uses {pin}"));
                }
            }
            None if service["build"].is_badvalue() => {
                problem("has neither image nor build".to_owned());
            }
            None => {}
        }
        let one_shot = scalar(&service["restart"]).is_some_and(|restart| restart == "no");
        if !one_shot && service["healthcheck"].is_badvalue() {
            problem(
                "has no healthcheck (only one-shot jobs, `restart: \"no\"`, may omit it)"
                    .to_owned(),
            );
        }
        match &service["depends_on"] {
            Yaml::Array(list) => {
                for dependency in list {
                    problem(format!(
                        "depends on {} without a condition; use the long form with \
                         `condition:`",
                        scalar(dependency).unwrap_or_default()
                    ));
                }
            }
            Yaml::Hash(map) => {
                for (dependency, details) in map {
                    let dependency = scalar(dependency).unwrap_or_default();
                    if scalar(&details["condition"]).is_none() {
                        problem(format!("depends on {dependency} without a condition"));
                    }
                    if !names.contains(&dependency) {
                        problem(format!("depends on {dependency}, which is not a service"));
                    }
                }
            }
            _ => {}
        }
        let environment: Vec<(String, String)> = match &service["environment"] {
            Yaml::Hash(map) => map
                .iter()
                .map(|(key, value)| {
                    (
                        scalar(key).unwrap_or_default(),
                        scalar(value).unwrap_or_default(),
                    )
                })
                .collect(),
            Yaml::Array(list) => list
                .iter()
                .filter_map(scalar)
                .map(|item| match item.split_once('=') {
                    Some((key, value)) => (key.to_owned(), value.to_owned()),
                    None => (item, String::new()),
                })
                .collect(),
            _ => Vec::new(),
        };
        for (variable, value) in environment {
            if is_secret_name(&variable) && !(value.starts_with("${") && value.contains(":?")) {
                problem(format!(
                    "{variable} is a secret: take it from the env file as ${{VAR:?message}}, \
                     with no literal or default"
                ));
            }
        }
    }
    problems
}

/// What the build context must leave out: env files (secrets) and build output.
fn dockerignore_problems(text: &str) -> Vec<String> {
    let patterns: BTreeSet<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_end_matches('/'))
        .collect();
    let mut problems = Vec::new();
    if !patterns.contains("**/.env") {
        problems.push(
            "`**/.env` is not excluded: an env file would enter the image context".to_owned(),
        );
    }
    if !patterns.contains("target") && !patterns.contains("**/target") {
        problems
            .push("`target` is not excluded: the context would carry the build output".to_owned());
    }
    problems
}

/// The variables the compose file refuses to start without: every `${NAME:?...}` (or
/// `${NAME?...}`).
pub fn required_variables(compose: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = compose;
    while let Some(start) = rest.find("${") {
        rest = &rest[start + 2..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after = &rest[name.len()..];
        if !name.is_empty() && (after.starts_with(":?") || after.starts_with('?')) {
            names.insert(name);
        }
    }
    names
}

/// Names in `required` that the env example does not list as `NAME=`.
fn missing_from_example(required: &BTreeSet<String>, example: &str) -> Vec<String> {
    let listed: BTreeSet<&str> = example
        .lines()
        .filter_map(|line| line.trim().split_once('=').map(|(name, _)| name.trim()))
        .collect();
    required
        .iter()
        .filter(|name| !listed.contains(name.as_str()))
        .cloned()
        .collect()
}

/// The env example with every empty required value filled with a placeholder, for
/// validating the file as it will run.
fn fill_required(example: &str, required: &BTreeSet<String>) -> String {
    let mut out = String::new();
    let mut seen = BTreeSet::new();
    for line in example.lines() {
        match line.split_once('=') {
            Some((name, value)) if required.contains(name.trim()) => {
                seen.insert(name.trim().to_owned());
                if value.trim().is_empty() {
                    out.push_str(&format!("{name}=placeholder0123456789abcdef0123456789\n"));
                    continue;
                }
            }
            _ => {}
        }
        out.push_str(line);
        out.push('\n');
    }
    for name in required.difference(&seen) {
        out.push_str(&format!("{name}=placeholder0123456789abcdef0123456789\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_DOCKERFILE: &str = "\
# syntax=docker/dockerfile:1
FROM rust:1.95.0-bookworm AS builder
RUN apt-get update \\
    && apt-get install -y cmake
COPY . .
RUN cargo build --release

FROM debian:12.12-slim AS runtime
RUN apt-get install -y --no-install-recommends ca-certificates
ENV APP_ENV=production
USER 10001:10001

FROM runtime AS app
COPY --from=builder /src/target/release/app /usr/local/bin/app
ENTRYPOINT [\"/usr/local/bin/app\"]
";

    fn problems_containing(problems: &[String], needle: &str) -> usize {
        problems.iter().filter(|p| p.contains(needle)).count()
    }

    #[test]
    fn the_repository_files_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dockerfile = fs::read_to_string(root.join("deploy/Dockerfile")).expect("Dockerfile");
        let compose = fs::read_to_string(root.join("deploy/compose.yaml")).expect("compose");
        let example = fs::read_to_string(root.join("deploy/.env.example")).expect("example");
        assert_eq!(lint_dockerfile(&dockerfile), Vec::<String>::new());
        assert_eq!(lint_compose(&compose), Vec::<String>::new());
        let required = required_variables(&compose);
        for secret in [
            "LABEL_JWT_SECRET",
            "LABEL_ADMIN_PASSWORD",
            "POSTGRES_PASSWORD",
        ] {
            assert!(required.contains(secret), "{secret} is not required");
        }
        assert_eq!(
            missing_from_example(&required, &example),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_good_dockerfile_passes() {
        assert_eq!(lint_dockerfile(GOOD_DOCKERFILE), Vec::<String>::new());
    }

    #[test]
    fn a_single_stage_root_dockerfile_is_refused() {
        let problems = lint_dockerfile("FROM debian:12.12-slim\nCOPY app /app\n");
        assert_eq!(problems_containing(&problems, "not a multi-stage build"), 1);
        assert_eq!(problems_containing(&problems, "runs as root"), 1);
    }

    #[test]
    fn a_root_user_in_the_final_stage_is_refused() {
        let text = GOOD_DOCKERFILE.replace("ENTRYPOINT", "USER root\nENTRYPOINT");
        let problems = lint_dockerfile(&text);
        assert_eq!(
            problems_containing(&problems, "runs as root (USER root)"),
            1,
            "{problems:?}"
        );
    }

    #[test]
    fn floating_base_images_are_refused() {
        for base in [
            "rust:latest",
            "rust",
            "rust:1.95",
            "rust:1-bookworm",
            "debian:bookworm-slim",
        ] {
            let text = GOOD_DOCKERFILE.replace("rust:1.95.0-bookworm", base);
            let problems = lint_dockerfile(&text);
            assert_eq!(
                problems_containing(&problems, "FROM "),
                1,
                "{base}: {problems:?}"
            );
        }
    }

    #[test]
    fn remote_add_and_secret_env_are_refused() {
        let text = GOOD_DOCKERFILE.replace(
            "USER 10001:10001",
            "ADD https://example.com/tool.tgz /opt/\nENV JWT_SECRET=abc\nARG DB_PASSWORD\n\
             USER 10001:10001",
        );
        let problems = lint_dockerfile(&text);
        assert_eq!(problems_containing(&problems, "ADD of a remote source"), 1);
        assert_eq!(
            problems_containing(&problems, "ENV JWT_SECRET looks like a secret"),
            1
        );
        assert_eq!(
            problems_containing(&problems, "ARG DB_PASSWORD looks like a secret"),
            1
        );
    }

    #[test]
    fn build_tools_in_a_final_image_are_refused() {
        let text = GOOD_DOCKERFILE.replace("ca-certificates", "ca-certificates build-essential");
        let problems = lint_dockerfile(&text);
        assert_eq!(
            problems_containing(&problems, "gets build tools"),
            1,
            "{problems:?}"
        );
        let text = GOOD_DOCKERFILE.replace("FROM runtime AS app", "FROM builder AS app\nUSER 1000");
        let problems = lint_dockerfile(&text);
        assert_eq!(
            problems_containing(&problems, "toolchain image"),
            1,
            "{problems:?}"
        );
    }

    #[test]
    fn image_pins() {
        for good in [
            "apache/kafka:3.9.1",
            "postgres:15.13",
            "prom/prometheus:v2.53.4",
            "debian:12.12-slim",
            "registry.example.com:5000/team/app:1.2.3",
            "redis@sha256:0123456789abcdef",
        ] {
            assert_eq!(image_pin_problem(good), None, "{good}");
        }
        for bad in [
            "postgres",
            "postgres:15",
            "postgres:latest",
            "grafana/grafana:11.2",
            "jaegertracing/all-in-one:latest",
            "apache/kafka:${KAFKA_VERSION}",
            "registry.example.com:5000/team/app",
            "node:lts-alpine",
        ] {
            assert!(image_pin_problem(bad).is_some(), "{bad} passed");
        }
    }

    const GOOD_COMPOSE: &str = "\
name: x
services:
  db:
    image: postgres:15.13
    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it}
    healthcheck:
      test: [\"CMD\", \"pg_isready\"]
  init:
    image: apache/kafka:3.9.1
    restart: \"no\"
  app:
    build:
      context: ..
    depends_on:
      db:
        condition: service_healthy
      init:
        condition: service_completed_successfully
    healthcheck:
      test: [\"CMD\", \"true\"]
volumes:
  data:
";

    #[test]
    fn a_good_compose_file_passes() {
        assert_eq!(lint_compose(GOOD_COMPOSE), Vec::<String>::new());
        assert_eq!(
            required_variables(GOOD_COMPOSE)
                .into_iter()
                .collect::<Vec<_>>(),
            ["POSTGRES_PASSWORD"]
        );
    }

    #[test]
    fn compose_rule_violations_are_found() {
        let cases = [
            (
                "postgres:15.13",
                "postgres:latest",
                "`latest` is not a version",
            ),
            ("postgres:15.13", "postgres", "no tag"),
            (
                "    depends_on:\n      db:\n        condition: service_healthy\n      init:\n        \
                 condition: service_completed_successfully\n",
                "    depends_on:\n      - db\n      - init\n",
                "depends on db without a condition; use the long form",
            ),
            ("    restart: \"no\"\n", "", "`init`: has no healthcheck"),
            (
                "  app:\n    build:\n      context: ..\n",
                "  app:\n",
                "neither image nor build",
            ),
            ("services:\n", "services: [\n", "not valid YAML"),
            (
                "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it}",
                "- POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-x}",
                "POSTGRES_PASSWORD is a secret",
            ),
            (
                "        condition: service_completed_successfully\n",
                "",
                "init without a condition",
            ),
            (
                "    healthcheck:\n      test: [\"CMD\", \"true\"]\n",
                "",
                "`app`: has no healthcheck",
            ),
            (
                "${POSTGRES_PASSWORD:?set it}",
                "hunter2",
                "POSTGRES_PASSWORD is a secret",
            ),
            (
                "${POSTGRES_PASSWORD:?set it}",
                "${POSTGRES_PASSWORD:-x}",
                "is a secret",
            ),
            (
                "      init:\n",
                "      nope:\n",
                "nope, which is not a service",
            ),
        ];
        for (from, to, expected) in cases {
            let text = GOOD_COMPOSE.replacen(from, to, 1);
            assert_ne!(text, GOOD_COMPOSE, "{from:?} not in the sample");
            let problems = lint_compose(&text);
            assert_eq!(
                problems_containing(&problems, expected),
                1,
                "{expected}: {problems:?}"
            );
        }
    }

    #[test]
    fn the_build_context_must_leave_env_files_and_target_out() {
        assert_eq!(
            dockerignore_problems("target/\n**/.env\n"),
            Vec::<String>::new()
        );
        let problems = dockerignore_problems("# nothing\n.env\n");
        assert_eq!(problems.len(), 2, "{problems:?}");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let ignore = fs::read_to_string(root.join(".dockerignore")).expect(".dockerignore");
        assert_eq!(dockerignore_problems(&ignore), Vec::<String>::new());
    }

    #[test]
    fn env_examples_must_list_required_variables_and_get_them_filled() {
        let required: BTreeSet<String> = ["A_SECRET", "B_PASSWORD"].map(String::from).into();
        let example = "A_SECRET=\nOTHER=1\n";
        assert_eq!(missing_from_example(&required, example), ["B_PASSWORD"]);
        let filled = fill_required(example, &required);
        assert!(filled.contains("A_SECRET=placeholder"), "{filled}");
        assert!(filled.contains("B_PASSWORD=placeholder"), "{filled}");
        assert!(filled.contains("OTHER=1"), "{filled}");
    }
}
