//! `cargo xtask setup` against a fake Debian: `dpkg-query` and `apt-get` scripts put in
//! front of `PATH` record what they are asked, so the test proves which packages the check
//! names and what it installs, without touching the machine.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The packages `cargo xtask test` needs (beyond PostgreSQL, which this machine has).
const TEST_PACKAGES: [&str; 4] = [
    "chromium",
    "chromium-driver",
    "docker-compose",
    "prometheus",
];

const DPKG_QUERY: &str = r#"#!/bin/sh
# Fake dpkg-query --show --showformat FORMAT PACKAGE...: a package is installed when its
# name is a line of $FAKE_DEBIAN/installed.
shift 3
rc=0
for p in "$@"; do
  if grep -qx "$p" "$FAKE_DEBIAN/installed" 2>/dev/null; then
    printf '%s ii \n' "$p"
  else
    echo "dpkg-query: no packages found matching $p" >&2
    rc=1
  fi
done
exit $rc
"#;

const APT_GET: &str = r#"#!/bin/sh
# Fake apt-get: records its arguments; `install` marks the packages installed.
echo "$*" >> "$FAKE_DEBIAN/apt.log"
if [ "$1" = install ]; then
  for p in "$@"; do
    case "$p" in install|-*) ;; *) echo "$p" >> "$FAKE_DEBIAN/installed" ;; esac
  done
fi
"#;

const NISSHI: &str = "#!/bin/sh\necho 'nisshi 0.7.0-pre.2'\n";

struct FakeDebian {
    dir: PathBuf,
}

impl FakeDebian {
    fn new(name: &str, installed: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("xtask-setup-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).expect("fake bin dir");
        for (name, text) in [
            ("dpkg-query", DPKG_QUERY),
            ("apt-get", APT_GET),
            ("nisshi", NISSHI),
        ] {
            let path = dir.join("bin").join(name);
            fs::write(&path, text).expect("write fake");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let mut list = installed.join("\n");
        list.push('\n');
        fs::write(dir.join("installed"), list).expect("installed list");
        Self { dir }
    }

    fn setup(&self, args: &[&str]) -> Output {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.dir.join("bin")];
        paths.extend(std::env::split_paths(&path));
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("setup")
            .args(args)
            .env("PATH", std::env::join_paths(paths).expect("PATH"))
            .env("FAKE_DEBIAN", &self.dir)
            .env("NISSHI_BIN", self.dir.join("bin/nisshi"))
            .output()
            .expect("run xtask setup")
    }

    fn apt_log(&self) -> Option<String> {
        fs::read_to_string(self.dir.join("apt.log")).ok()
    }
}

impl Drop for FakeDebian {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(|id| id == "0"))
            .unwrap_or(false)
    })
}

#[test]
fn every_missing_package_is_named_and_installed_with_one_update() {
    let debian = FakeDebian::new("missing", &["nginx"]);
    let output = debian.setup(&["test"]);
    let said = text(&output);
    for package in TEST_PACKAGES {
        assert!(
            said.contains(&format!("Debian package {package} ")),
            "{package} not named:\n{said}"
        );
    }
    if is_root() {
        assert!(output.status.success(), "{said}");
        let log = debian.apt_log().expect("apt-get was run");
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.first(), Some(&"update"), "{log}");
        assert_eq!(lines.len(), 2, "one update, one install: {log}");
        let install: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            &install[..3],
            ["install", "-y", "--no-install-recommends"],
            "{log}"
        );
        for package in TEST_PACKAGES {
            assert!(install.contains(&package), "{package} not installed: {log}");
        }
        assert!(!install.contains(&"nginx"), "installed again: {log}");
        assert!(said.contains("installed in"), "{said}");
    } else {
        assert!(!output.status.success(), "{said}");
        assert!(
            debian.apt_log().is_none(),
            "a user who is not root installs nothing"
        );
        assert!(
            said.contains("sudo apt-get update && sudo apt-get install"),
            "{said}"
        );
    }
}

#[test]
fn nothing_is_installed_when_everything_is_present() {
    let debian = FakeDebian::new("present", &TEST_PACKAGES);
    let output = debian.setup(&["test", "demo"]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("prerequisites of `test`: all present"),
        "{said}"
    );
    assert!(
        said.contains("prerequisites of `demo`: all present"),
        "{said}"
    );
    assert_eq!(debian.apt_log(), None, "apt-get must not run:\n{said}");
}

#[test]
fn a_dry_run_names_what_it_would_install_and_installs_nothing() {
    let debian = FakeDebian::new("dry", &[]);
    let output = debian.setup(&["bench", "--dry-run"]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    for package in ["nginx", "wrk"] {
        assert!(
            said.contains(&format!("Debian package {package} ")),
            "{said}"
        );
    }
    assert!(said.contains("would"), "{said}");
    assert_eq!(
        debian.apt_log(),
        None,
        "a dry run installs nothing:\n{said}"
    );
}

#[test]
fn an_unknown_workflow_is_refused() {
    let debian = FakeDebian::new("unknown", &[]);
    let output = debian.setup(&["deploy"]);
    assert!(!output.status.success());
    assert!(text(&output).contains("unknown argument `deploy`"));
}
