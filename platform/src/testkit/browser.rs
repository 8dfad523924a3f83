//! A headless Chromium driven over WebDriver (fantoccini) by a test: chromedriver on a free
//! port in a process group of its own, sessions with the standard arguments, a profile each
//! and a window size, and screenshots under `target/screenshots/`. Everything is killed and
//! removed when the driver is dropped.
//!
//! Only for tests: it panics with a clear message when chromedriver or Chromium is missing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
// fantoccini without its TLS features takes any hyper-util connector: plain HTTP to the
// chromedriver on 127.0.0.1.
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use super::{free_port, workspace_root};

/// The Chromium the sessions run (the Debian package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long a new session may take, chromedriver's start included.
const SESSION_TIMEOUT: Duration = Duration::from_secs(20);

/// chromedriver in a process group of its own, so that the Chromium processes it starts go
/// with it, and a scratch directory for the sessions' profiles.
#[derive(Debug)]
pub struct Chromedriver {
    child: Child,
    port: u16,
    profiles: PathBuf,
}

impl Chromedriver {
    /// Starts chromedriver on a free port; the profiles go to a new directory
    /// `<temp>/<prefix>-<uuid>`. It does not wait: [`session`](Self::session) retries.
    pub fn start(prefix: &str) -> Self {
        use std::os::unix::process::CommandExt as _;
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver (apt-get install chromium chromium-driver)");
        let profiles = std::env::temp_dir().join(super::unique(prefix));
        std::fs::create_dir_all(&profiles).expect("a profile directory");
        Self {
            child,
            port,
            profiles,
        }
    }

    /// Whether chromedriver is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// A new headless session with a profile (and so cookies) of its own, named `who`, and a
    /// window of `width` × `height`.
    pub async fn session(&self, who: &str, width: u32, height: u32) -> Client {
        self.session_with(who, width, height, &[]).await
    }

    /// [`session`](Self::session) with more Chromium arguments, such as
    /// `--host-resolver-rules=MAP label.test 127.0.0.1` to reach a local server by a name
    /// that is not loopback to the browser.
    pub async fn session_with(&self, who: &str, width: u32, height: u32, extra: &[&str]) -> Client {
        let profile = self.profiles.join(who);
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        args.push(format!("--window-size={width},{height}"));
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal");
        };
        let url = format!("http://127.0.0.1:{}", self.port);
        let deadline = tokio::time::Instant::now() + SESSION_TIMEOUT;
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                // chromedriver may not listen yet.
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!(
                    "no WebDriver session from chromedriver within {SESSION_TIMEOUT:?}: {err}"
                ),
            }
        };
        client
            .set_window_size(width, height)
            .await
            .expect("window size");
        client
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profiles);
    }
}

/// A chromedriver with one session: what a test of one person needs.
#[derive(Debug)]
pub struct Browser {
    /// The session.
    pub client: Client,
    driver: Chromedriver,
}

impl Browser {
    /// Starts chromedriver and one session with a window of `width` × `height`; panics when
    /// chromedriver died right after the session started.
    pub async fn start(prefix: &str, width: u32, height: u32) -> Self {
        let mut driver = Chromedriver::start(prefix);
        let client = driver.session("browser", width, height).await;
        assert!(driver.is_running(), "chromedriver exited");
        Self { client, driver }
    }

    /// Ends the session, then chromedriver.
    pub async fn close(self) {
        let Self { client, driver } = self;
        let _ = client.close().await;
        drop(driver);
    }
}

/// `target/screenshots/`, created when missing.
pub fn screenshot_dir() -> PathBuf {
    let dir = workspace_root().join("target").join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// Writes a screenshot of the session's window to `target/screenshots/<name>.png`; its path.
pub async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write the screenshot");
    path
}
