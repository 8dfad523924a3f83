//! `cargo xtask tidy`, and the test that runs it: the invariants of ARCHITECTURE.md that a
//! reader of the source can check, checked on every test run, so that a change breaking
//! one fails instead of slipping in. It reads files as text; it must not build or run
//! anything.
//!
//! - `domain/` does no I/O and knows no sqlx, axum, rdkafka, reqwest, tower or hyper;
//! - `app/` knows none of them either, nor a connection or transaction type;
//! - SQL lives in the outbound adapters (and in platform's `db` and `outbox`, and the test
//!   kits),
//!   and so do the schema's constraint and index names: no use case matches on one;
//! - `platform` depends on no service, and the services do not depend on each other.

use std::fs;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use syn::spanned::Spanned as _;
use syn::visit::Visit;

use crate::sys::step;

/// The crates whose `src/` has the domain / app / adapters layout.
const SERVICES: [&str; 2] = ["orders-service", "label-service"];

/// What `domain/` and `app/` must not name: I/O crates and their types.
const IO_NAMES: [&str; 9] = [
    "sqlx::",
    "axum::",
    "rdkafka::",
    "reqwest::",
    "tower::",
    "hyper::",
    "tokio::net",
    "std::net::TcpStream",
    "std::fs::",
];

/// What `app/` must not name on top: the connection and transaction types.
const STORAGE_TYPES: [&str; 4] = ["PgConnection", "PgPool", "Transaction<", "db::Tx"];

/// Words that start an SQL statement inside a string literal.
const SQL_STARTS: [&str; 5] = [
    "SELECT ",
    "INSERT INTO ",
    "UPDATE ",
    "DELETE FROM ",
    "WITH ",
];

/// One broken invariant, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub file: String,
    pub line: usize,
    pub rule: &'static str,
    pub text: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file,
            self.line,
            self.rule,
            self.text.trim()
        )
    }
}

/// Every violation in the workspace at `root`.
pub fn check(root: &Path) -> Result<Vec<Violation>> {
    let mut found = Vec::new();
    for service in SERVICES {
        let src = root.join(service).join("src");
        for file in rust_files(&src.join("domain"))? {
            scan(root, &file, &mut found, |line| {
                names_any(line, &IO_NAMES)
                    .map(|name| ("domain does no I/O and knows no I/O crate", name.to_owned()))
            })?;
        }
        let names = schema_names(root)?;
        for layer in ["domain", "app"] {
            for file in rust_files(&src.join(layer))? {
                scan(root, &file, &mut found, |line| {
                    constraint_in(line, &names)
                        .map(|name| ("constraint and index names stay in the adapters", name))
                })?;
            }
        }
        for file in rust_files(&src.join("app"))? {
            scan(root, &file, &mut found, |line| {
                names_any(line, &IO_NAMES)
                    .or_else(|| names_any(line, &STORAGE_TYPES))
                    .map(|name| {
                        (
                            "app holds use cases and ports: no I/O crate, no connection or \
                             transaction type",
                            name.to_owned(),
                        )
                    })
            })?;
        }
        for file in rust_files(&src)? {
            let relative = file.strip_prefix(&src).unwrap_or(&file);
            // The adapters own the SQL; the test kit (feature `testkit`) reads the test
            // database to check what the service did.
            if relative.starts_with("adapters")
                || relative == Path::new("testkit.rs")
                || relative.starts_with("testkit")
            {
                continue;
            }
            scan(root, &file, &mut found, |line| {
                sql_in(line).map(|sql| ("SQL lives in the outbound adapters", sql))
            })?;
        }
    }
    // platform: SQL only where it owns tables (db, outbox) and in its test kit.
    let platform = root.join("platform").join("src");
    for file in rust_files(&platform)? {
        let relative = file.strip_prefix(&platform).unwrap_or(&file);
        let owns_sql = ["db.rs", "outbox.rs", "testkit.rs"]
            .iter()
            .any(|allowed| relative == Path::new(allowed))
            || relative.starts_with("testkit");
        if owns_sql {
            continue;
        }
        scan(root, &file, &mut found, |line| {
            sql_in(line).map(|sql| ("platform keeps SQL in db and outbox", sql))
        })?;
    }
    dependencies(root, &mut found)?;
    Ok(found)
}

/// The constraint and index names the migrations create.
fn schema_names(root: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let dir = root.join("migrations");
    let mut files = Vec::new();
    if dir.exists() {
        for service in fs::read_dir(&dir)? {
            let service = service?.path();
            if service.is_dir() {
                for file in fs::read_dir(&service)? {
                    let file = file?.path();
                    if file.extension().is_some_and(|e| e == "sql") {
                        files.push(file);
                    }
                }
            }
        }
    }
    for file in files {
        let text = fs::read_to_string(&file)?;
        let words: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || c == '(' || c == ',' || c == ';')
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            if matches!(pair[0], "CONSTRAINT" | "INDEX") {
                let name = pair[1].trim_matches(['\'', '"']);
                if name.contains('_') && name != "IF" {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// A constraint or index name in a string literal of `line`: one the migrations create, or
/// one PostgreSQL would make up (`<table>_<column>_key`, `_fkey`, `_pkey`, `_check`).
fn constraint_in(line: &str, names: &[String]) -> Option<String> {
    let code = code_of(line);
    code.split('"').skip(1).step_by(2).find_map(|literal| {
        let known = names.iter().any(|name| literal == name);
        let made_up = literal.contains('_')
            && !literal.contains(' ')
            && ["_key", "_fkey", "_pkey", "_check"]
                .iter()
                .any(|suffix| literal.ends_with(suffix));
        (known || made_up).then(|| literal.to_owned())
    })
}

/// `platform` depends on no service; no service on another.
fn dependencies(root: &Path, found: &mut Vec<Violation>) -> Result<()> {
    let rules: [(&str, &[&str]); 3] = [
        ("platform", &["orders-service", "label-service"]),
        ("orders-service", &["label-service"]),
        ("label-service", &["orders-service"]),
    ];
    for (krate, forbidden) in rules {
        let manifest = root.join(krate).join("Cargo.toml");
        let text = fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        for (index, line) in text.lines().enumerate() {
            let key = line.split(['=', '.']).next().unwrap_or("").trim();
            if forbidden.contains(&key) {
                found.push(Violation {
                    file: format!("{krate}/Cargo.toml"),
                    line: index + 1,
                    rule: "platform depends on no service, and the services not on each other",
                    text: line.to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// The first of `names` that `line` (its code, not its comment) mentions.
fn names_any<'n>(line: &str, names: &[&'n str]) -> Option<&'n str> {
    let code = code_of(line);
    names.iter().copied().find(|name| code.contains(name))
}

/// The SQL statement a string literal of `line` starts, if any.
fn sql_in(line: &str) -> Option<String> {
    let code = code_of(line);
    let quoted = code.split('"').skip(1).step_by(2);
    for literal in quoted {
        let literal = literal.trim_start();
        if SQL_STARTS.iter().any(|start| literal.starts_with(start))
            && literal.chars().filter(char::is_ascii_uppercase).count() >= 6
        {
            return Some(literal.chars().take(60).collect());
        }
    }
    None
}

/// A line without its `//` comment (doc comments included: they may name anything).
fn code_of(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") {
        return "";
    }
    match line.find("// ") {
        Some(at) if !line[..at].contains('"') => &line[..at],
        _ => line,
    }
}

fn scan(
    root: &Path,
    file: &Path,
    found: &mut Vec<Violation>,
    rule: impl Fn(&str) -> Option<(&'static str, String)>,
) -> Result<()> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let tests = test_only_lines(&text);
    for (index, line) in text.lines().enumerate() {
        // Items compiled only for tests may use anything.
        if tests.iter().any(|range| range.contains(&(index + 1))) {
            continue;
        }
        if let Some((rule, what)) = rule(line) {
            found.push(Violation {
                file: shown.clone(),
                line: index + 1,
                rule,
                text: what,
            });
        }
    }
    Ok(())
}

/// The lines (1-based, inclusive ranges) of the items compiled only for tests: those under
/// `#[cfg(test)]`, wherever they stand in the file. Read with `syn`; a file it cannot parse
/// has none, so every line of it is checked.
fn test_only_lines(text: &str) -> Vec<RangeInclusive<usize>> {
    let Ok(file) = syn::parse_file(text) else {
        return Vec::new();
    };
    let mut items = TestItems::default();
    items.visit_file(&file);
    items.ranges
}

#[derive(Default)]
struct TestItems {
    ranges: Vec<RangeInclusive<usize>>,
}

impl<'ast> Visit<'ast> for TestItems {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if attributes(item).iter().any(is_cfg_test) {
            let span = item.span();
            self.ranges.push(span.start().line..=span.end().line);
        } else {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, function: &'ast syn::ImplItemFn) {
        if function.attrs.iter().any(is_cfg_test) {
            let span = function.span();
            self.ranges.push(span.start().line..=span.end().line);
        }
    }
}

fn attributes(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item;
    match item {
        Item::Const(item) => &item.attrs,
        Item::Enum(item) => &item.attrs,
        Item::ExternCrate(item) => &item.attrs,
        Item::Fn(item) => &item.attrs,
        Item::ForeignMod(item) => &item.attrs,
        Item::Impl(item) => &item.attrs,
        Item::Macro(item) => &item.attrs,
        Item::Mod(item) => &item.attrs,
        Item::Static(item) => &item.attrs,
        Item::Struct(item) => &item.attrs,
        Item::Trait(item) => &item.attrs,
        Item::TraitAlias(item) => &item.attrs,
        Item::Type(item) => &item.attrs,
        Item::Union(item) => &item.attrs,
        Item::Use(item) => &item.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]` exactly (not `cfg(not(test))`, not a feature).
fn is_cfg_test(attribute: &syn::Attribute) -> bool {
    attribute.path().is_ident("cfg")
        && attribute
            .meta
            .require_list()
            .is_ok_and(|list| list.tokens.to_string() == "test")
}

/// The `.rs` files under `dir` (none when it does not exist), sorted.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in
            fs::read_dir(&current).with_context(|| format!("reading {}", current.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `cargo xtask tidy`.
pub fn run(root: &Path) -> Result<()> {
    let found = check(root)?;
    if found.is_empty() {
        step("tidy: every invariant of ARCHITECTURE.md that the source shows holds");
        return Ok(());
    }
    for violation in &found {
        eprintln!("{violation}");
    }
    bail!("tidy: {} broken invariant(s)", found.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace")
            .to_path_buf()
    }

    #[test]
    fn the_workspace_keeps_its_invariants() {
        let found = check(&workspace()).expect("tidy runs");
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert!(found.is_empty(), "broken invariants:\n{}", shown.join("\n"));
    }

    /// A copy of the layout with one violation of each kind planted: each is reported.
    #[test]
    fn planted_violations_are_reported() {
        let root = std::env::temp_dir().join(format!("tidy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
            fs::write(path, text).expect("write");
        };
        write(
            "platform/Cargo.toml",
            "[dependencies]\nlabel-service.workspace = true\n",
        );
        write(
            "platform/src/http.rs",
            "const Q: &str = \"SELECT id FROM users WHERE X\";\n",
        );
        write(
            "orders-service/Cargo.toml",
            "[dependencies]\nplatform.workspace = true\n",
        );
        write(
            "label-service/Cargo.toml",
            "[dependencies]\norders-service = { path = \"../x\" }\n",
        );
        write(
            "label-service/src/domain/model.rs",
            "//! Plain data; sqlx:: in a comment is fine.\nuse sqlx::PgPool;\n",
        );
        write(
            "label-service/src/app/requests.rs",
            "fn f(conn: &mut PgConnection) {}\n#[cfg(test)]\nmod tests { use axum::Router; }\n",
        );
        write(
            "migrations/label/0001.sql",
            "CREATE UNIQUE INDEX requests_one_open_sign ON label.requests (applicant_id);\n",
        );
        write(
            "label-service/src/app/people.rs",
            "fn f(c: &str) -> bool { c == \"requests_one_open_sign\" || c == \"users_email_key\" }\n",
        );
        write(
            "orders-service/src/app/query.rs",
            "async fn f() { sqlx::query(\"DELETE FROM orders.orders WHERE TRUE\"); }\n",
        );
        write(
            "orders-service/src/app/ingest.rs",
            "#[cfg(test)]\nmod tests {\n    use sqlx::PgPool;\n}\n\n\
             const PLANTED: &str = \"SELECT payload FROM orders.orders WHERE TRUE\";\n",
        );
        write(
            "orders-service/src/adapters/postgres.rs",
            "const Q: &str = \"INSERT INTO orders.orders VALUES (DEFAULT)\";\n",
        );
        let found = check(&root).expect("tidy runs");
        fs::remove_dir_all(&root).expect("clean up");
        let places: Vec<String> = found
            .iter()
            .map(|v| format!("{}:{}", v.file, v.line))
            .collect();
        assert_eq!(
            places,
            [
                "orders-service/src/app/query.rs:1",
                "orders-service/src/app/ingest.rs:6",
                "orders-service/src/app/query.rs:1",
                "label-service/src/domain/model.rs:2",
                "label-service/src/app/people.rs:1",
                "label-service/src/app/requests.rs:1",
                "platform/src/http.rs:1",
                "platform/Cargo.toml:2",
                "label-service/Cargo.toml:2",
            ],
            "{found:#?}"
        );
    }
}
