//! The `target/stack/env` file: `KEY=VALUE` lines that `stack up` writes and
//! `test`/`demo` export to their children. Pure parsing and rendering only;
//! reading and writing the file is done by the callers.

use std::fmt::Write as _;

/// Parses `KEY=VALUE` lines. Blank lines and `#` comments are skipped, an
/// optional `export ` prefix is accepted, and a value wrapped in matching
/// single or double quotes is unwrapped (no escape processing).
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {}: expected KEY=VALUE, got {raw:?}",
                index + 1
            ));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("line {}: invalid variable name {key:?}", index + 1));
        }
        vars.push((key.to_owned(), unquote(value.trim()).to_owned()));
    }
    Ok(vars)
}

/// Renders variables as `KEY=VALUE` lines under a comment header, in the
/// given order, so that the file is stable across runs.
pub fn render(header: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    for (key, value) in vars {
        let _ = writeln!(out, "{key}={value}");
    }
    out
}

/// Looks a key up; the last assignment wins, as in a shell.
pub fn get<'a>(vars: &'a [(String, String)], key: &str) -> Option<&'a str> {
    vars.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_lines_comments_quotes_and_export() {
        let text = "# header\n\nDATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres\n\
                    export KAFKA_BROKERS = 127.0.0.1:9092\nQUOTED=\"a b\"\nSINGLE='x=y'\nEMPTY=\r\n";
        assert_eq!(
            parse(text),
            Ok(pairs(&[
                (
                    "DATABASE_URL",
                    "postgres://postgres@127.0.0.1:55432/postgres"
                ),
                ("KAFKA_BROKERS", "127.0.0.1:9092"),
                ("QUOTED", "a b"),
                ("SINGLE", "x=y"),
                ("EMPTY", ""),
            ]))
        );
    }

    #[test]
    fn value_keeps_everything_after_the_first_equals_sign() {
        assert_eq!(
            parse("URL=postgres://u@h/db?options=-c%20a=b"),
            Ok(pairs(&[("URL", "postgres://u@h/db?options=-c%20a=b")]))
        );
    }

    #[test]
    fn rejects_lines_without_equals_and_bad_names() {
        assert!(parse("JUST_A_WORD").is_err_and(|e| e.contains("line 1")));
        assert!(parse("OK=1\nBAD KEY=2").is_err_and(|e| e.contains("line 2")));
        assert!(parse("=value").is_err());
    }

    #[test]
    fn render_then_parse_round_trips_and_last_assignment_wins() {
        let vars = pairs(&[("A", "1"), ("B", "x=y"), ("A", "2")]);
        let text = render("written by xtask\nsecond line", &vars);
        assert!(text.starts_with("# written by xtask\n# second line\nA=1\n"));
        let parsed = parse(&text).expect("rendered text parses");
        assert_eq!(parsed, vars);
        assert_eq!(get(&parsed, "A"), Some("2"));
        assert_eq!(get(&parsed, "C"), None);
    }
}
