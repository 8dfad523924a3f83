//! The `target/stack/env` file: `KEY='VALUE'` lines that `stack up` writes and `test`,
//! `demo` and `bench` export to their children (and a shell can source with `set -a`).
//! Reading is `dotenvy`'s; writing quotes every value in single quotes, which both a POSIX
//! shell and dotenv read literally (no `$` expansion, no escapes).

use std::fmt::Write as _;

/// Parses a dotenv text (comments, `export`, quotes as dotenv reads them).
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    dotenvy::from_read_iter(text.as_bytes())
        .map(|item| item.map_err(|e| e.to_string()))
        .collect()
}

/// Renders variables as `KEY='VALUE'` lines under a comment header, in the given order, so
/// that the file is stable across runs. A value holding a single quote or a line break
/// cannot be written literally and is refused.
pub fn render(header: &str, vars: &[(String, String)]) -> Result<String, String> {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    for (key, value) in vars {
        if value.contains(['\'', '\n', '\r']) {
            return Err(format!(
                "{key}: a value with a single quote or a line break cannot be written"
            ));
        }
        let _ = writeln!(out, "{key}='{value}'");
    }
    Ok(out)
}

/// Looks a key up; the last assignment wins, as in a shell.
pub fn get<'a>(vars: &'a [(String, String)], key: &str) -> Option<&'a str> {
    vars.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
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
                    export KAFKA_BROKERS=127.0.0.1:9092\nQUOTED=\"a b\"\nSINGLE='x=y'\nEMPTY=\n";
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
    fn rejects_lines_without_equals() {
        assert!(parse("OK=1\nJUST A WORD").is_err());
    }

    #[test]
    fn render_then_parse_round_trips_literally_and_last_assignment_wins() {
        let vars = pairs(&[
            ("A", "1"),
            ("URL", "postgres://u:p$HOME#x@h/db?options=-c%20a=b"),
            ("A", "2"),
        ]);
        let text = render("written by xtask\nsecond line", &vars).expect("renders");
        assert!(text.starts_with("# written by xtask\n# second line\nA='1'\n"));
        let parsed = parse(&text).expect("rendered text parses");
        assert_eq!(parsed, vars);
        assert_eq!(get(&parsed, "A"), Some("2"));
        assert_eq!(get(&parsed, "C"), None);
        assert!(render("", &pairs(&[("B", "it's")])).is_err());
    }

    #[test]
    fn a_shell_reads_the_rendered_file_as_written() {
        let vars = pairs(&[("URL", "postgres://u:p$HOME#x@h/db?a=b c")]);
        let text = render("header", &vars).expect("renders");
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{text}\nprintf %s \"$URL\""))
            .output()
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&output.stdout), vars[0].1);
    }
}
