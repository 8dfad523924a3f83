//! PostgreSQL for the local stack: use the server `DATABASE_URL` names when
//! it answers; otherwise start the machine's cluster, and as a last resort a
//! private throwaway cluster under `target/stack/pg/`. Only the private
//! cluster is ever stopped by xtask; the machine's server is left alone.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::pgurl::{self, PgAddr};
use crate::stack::Layout;
use crate::sys::{self, note, step};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEFAULT_PRIVATE_PORT: u16 = 55432;
/// The OS user that owns and runs the private cluster when xtask runs as root
/// (initdb and postgres refuse to run as root).
const CLUSTER_USER: &str = "postgres";
const INSTALL_HINT: &str = "install PostgreSQL with `apt-get install postgresql` \
     (or point PG_BIN_DIR at the directory holding initdb and pg_ctl)";

/// The URL the stack was asked to use: `DATABASE_URL` or the default.
pub fn requested_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// Port of the private cluster (`STACK_PG_PORT`, default 55432).
pub fn private_port() -> Result<u16> {
    match std::env::var("STACK_PG_PORT") {
        Ok(text) => text
            .parse()
            .with_context(|| format!("STACK_PG_PORT={text:?} is not a port number")),
        Err(_) => Ok(DEFAULT_PRIVATE_PORT),
    }
}

pub fn private_url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// Makes sure a PostgreSQL server answers and returns the URL to use.
pub fn up(layout: &Layout) -> Result<String> {
    let url = requested_url();
    let addr = pgurl::parse(&url).map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
    let shown = pgurl::redact(&url);
    let private_port = private_port()?;

    if ready(&addr) {
        if addr.is_loopback()
            && addr.port == private_port
            && let Some(pid) = private_pid(layout)
        {
            step(format!(
                "PostgreSQL: private cluster already running at {shown} (pid {pid})"
            ));
        } else {
            step(format!(
                "PostgreSQL: {shown} is accepting connections; using it"
            ));
        }
        return Ok(url);
    }
    step(format!("PostgreSQL: {shown} is not reachable"));

    if addr.is_loopback() && addr.port == pgurl::DEFAULT_PORT && start_machine_cluster(&addr)? {
        return Ok(url);
    }

    start_private(layout, private_port)?;
    Ok(private_url(private_port))
}

/// Stops the private cluster if xtask started it.
pub fn down(layout: &Layout) -> Result<()> {
    let Some(pid) = private_pid(layout) else {
        step(
            "PostgreSQL: no private cluster running (the machine's server is never stopped by xtask)",
        );
        return Ok(());
    };
    step(format!(
        "stopping private PostgreSQL cluster (pid {pid}, data {})",
        layout.rel(&layout.pg_data)
    ));
    let bin = bin_dir()?;
    let mut stop = as_cluster_user(&bin.join("pg_ctl"))?;
    stop.arg("-D")
        .arg(&layout.pg_data)
        .args(["-m", "fast", "-w", "-t", "30", "stop"])
        .current_dir(&layout.pg_dir);
    let output = sys::capture(&mut stop)?;
    if !output.status.success() && private_pid(layout).is_some() {
        note(format!(
            "pg_ctl stop failed ({}): {}; sending SIGTERM",
            output.status,
            sys::combined_output(&output)
        ));
        sys::terminate(pid, Duration::from_secs(30))?;
    }
    note("stopped (data kept for next time)");
    Ok(())
}

/// One status line per PostgreSQL the stack knows about.
pub fn status(layout: &Layout, url: &str) {
    let shown = pgurl::redact(url);
    match pgurl::parse(url) {
        Ok(addr) => {
            let up = ready(&addr);
            let owner = match private_pid(layout) {
                Some(pid) if addr.is_loopback() && Some(addr.port) == private_port().ok() => {
                    format!(
                        "private cluster, pid {pid}, log {}",
                        layout.rel(&layout.pg_log)
                    )
                }
                _ => "not managed by xtask".to_owned(),
            };
            println!(
                "{:<10} {:<48} {:<5} {owner}",
                "postgres",
                shown,
                if up { "up" } else { "down" }
            );
        }
        Err(e) => println!("{:<10} {shown:<48} ?     {e}", "postgres"),
    }
    let private_in_use =
        pgurl::parse(url).is_ok_and(|a| a.is_loopback() && Some(a.port) == private_port().ok());
    if !private_in_use && layout.pg_data.join("PG_VERSION").exists() {
        let state = match private_pid(layout) {
            Some(pid) => format!("up    pid {pid}"),
            None => "down".to_owned(),
        };
        println!(
            "{:<10} {:<48} {state}  data {}",
            "postgres",
            "(private cluster, not in use)",
            layout.rel(&layout.pg_data)
        );
    }
}

/// True when the server `DATABASE_URL` (or the default) names accepts connections.
pub fn reachable() -> bool {
    pgurl::parse(&requested_url()).is_ok_and(|addr| ready(&addr))
}

/// True when a server accepts connections at `addr`: `pg_isready` when it
/// is installed (it also tells "starting up" apart), else a TCP connect.
pub fn ready(addr: &PgAddr) -> bool {
    let pg_isready = sys::which("pg_isready").or_else(|| {
        bin_dir()
            .ok()
            .map(|dir| dir.join("pg_isready"))
            .filter(|p| sys::is_executable(p))
    });
    match pg_isready {
        Some(bin) => Command::new(bin)
            .args([
                "-q",
                "-t",
                "3",
                "-h",
                &addr.host,
                "-p",
                &addr.port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        None if addr.is_socket() => Path::new(&addr.host)
            .join(format!(".s.PGSQL.{}", addr.port))
            .exists(),
        None => sys::port_open(&addr.socket_addr()),
    }
}

/// Tries `pg_ctlcluster <version> <name> start` for the machine's cluster on
/// the default port. Returns whether the server then answers.
fn start_machine_cluster(addr: &PgAddr) -> Result<bool> {
    if sys::which("pg_ctlcluster").is_none() {
        note("pg_ctlcluster not found; not trying to start the machine's cluster");
        return Ok(false);
    }
    let (version, name) =
        machine_cluster(addr.port).unwrap_or_else(|| ("15".into(), "main".into()));
    step(format!(
        "starting the machine's PostgreSQL cluster {version}/{name}"
    ));
    let mut start = Command::new("pg_ctlcluster");
    start.args([&version, &name, "start"]).stdin(Stdio::null());
    if let Err(e) = sys::run(&mut start) {
        note(format!("{e:#}"));
        return Ok(false);
    }
    let up = sys::wait_until(Duration::from_secs(15), Duration::from_millis(250), || {
        ready(addr)
    });
    if up {
        note(format!("{} is accepting connections", addr.socket_addr()));
    } else {
        note("still not reachable after 15 s");
    }
    Ok(up)
}

/// The `(version, name)` of the Debian cluster configured for `port`.
fn machine_cluster(port: u16) -> Option<(String, String)> {
    let output = Command::new("pg_lsclusters")
        .arg("--no-header")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let (version, name, cluster_port) = (fields.next()?, fields.next()?, fields.next()?);
            (cluster_port == port.to_string()).then(|| (version.to_owned(), name.to_owned()))
        })
}

/// The pid of the private cluster's postmaster, when it is running.
fn private_pid(layout: &Layout) -> Option<u32> {
    let pid = sys::read_pid(&layout.pg_data.join("postmaster.pid"))?;
    let is_postgres =
        sys::pid_alive(pid) && sys::pid_cmdline(pid).is_some_and(|cmd| cmd.contains("postgres"));
    is_postgres.then_some(pid)
}

fn start_private(layout: &Layout, port: u16) -> Result<()> {
    let addr = PgAddr {
        host: "127.0.0.1".to_owned(),
        port,
    };
    if let Some(pid) = private_pid(layout) {
        if ready(&addr) {
            step(format!(
                "PostgreSQL: private cluster already running on 127.0.0.1:{port} (pid {pid})"
            ));
            return Ok(());
        }
        bail!(
            "the private cluster (pid {pid}) runs but does not answer on 127.0.0.1:{port}; \
             was STACK_PG_PORT changed? run `cargo xtask stack down` first (log: {})",
            layout.rel(&layout.pg_log)
        );
    }
    if sys::port_open(&addr.socket_addr()) {
        bail!(
            "127.0.0.1:{port} is taken by another process, so the private PostgreSQL cluster \
             cannot use it; choose another port with STACK_PG_PORT"
        );
    }

    let bin = bin_dir()?;
    prepare_private_dirs(layout)?;
    if !layout.pg_data.join("PG_VERSION").exists() {
        init_private(layout, &bin)?;
    }
    write_private_conf(layout, port)?;

    step(format!(
        "starting private PostgreSQL on 127.0.0.1:{port} (data: {}, log: {})",
        layout.rel(&layout.pg_data),
        layout.rel(&layout.pg_log)
    ));
    let mut start = as_cluster_user(&bin.join("pg_ctl"))?;
    start
        .arg("-D")
        .arg(&layout.pg_data)
        .arg("-l")
        .arg(&layout.pg_log)
        .args(["-w", "-t", "60", "start"])
        .current_dir(&layout.pg_dir)
        // Its own process group, so a Ctrl-C aimed at a later command run in
        // this terminal does not reach the server.
        .process_group(0);
    let output = sys::capture(&mut start)?;
    if !output.status.success() || !ready(&addr) {
        bail!(
            "private PostgreSQL did not start ({}): {}\nlast lines of {}:\n{}",
            output.status,
            sys::combined_output(&output),
            layout.rel(&layout.pg_log),
            sys::tail(&layout.pg_log, 20)
        );
    }
    note(format!(
        "ready: {} (pid {})",
        private_url(port),
        private_pid(layout).map_or_else(|| "?".to_owned(), |p| p.to_string())
    ));
    Ok(())
}

fn prepare_private_dirs(layout: &Layout) -> Result<()> {
    fs::create_dir_all(&layout.pg_socket)
        .with_context(|| format!("creating {}", layout.pg_socket.display()))?;
    if !running_as_root() {
        return Ok(());
    }
    let owner = format!("{CLUSTER_USER}:");
    let mut chown = Command::new("chown");
    chown.args(["-R", &owner]).arg(&layout.pg_dir);
    let output = sys::capture(&mut chown)?;
    if !output.status.success() {
        bail!(
            "could not hand {} to the `{CLUSTER_USER}` user (`{}`): {}\n\
             the private cluster must run as a non-root user; create one with \
             `useradd --system --home-dir /var/lib/postgresql {CLUSTER_USER}`",
            layout.rel(&layout.pg_dir),
            sys::display(&chown),
            sys::combined_output(&output)
        );
    }
    // Every parent directory must be searchable by that user.
    let mut probe = as_cluster_user(Path::new("test"))?;
    probe.arg("-w").arg(&layout.pg_socket);
    if !sys::capture(&mut probe)?.status.success() {
        bail!(
            "the `{CLUSTER_USER}` user cannot reach {}: a parent directory is not searchable \
             by other users (try `chmod o+x` on the parents of the checkout)",
            layout.pg_socket.display()
        );
    }
    Ok(())
}

fn init_private(layout: &Layout, bin: &Path) -> Result<()> {
    if layout.pg_data.exists() {
        // A half-initialised directory from an interrupted run: initdb
        // refuses non-empty directories, and there is nothing to keep.
        fs::remove_dir_all(&layout.pg_data)
            .with_context(|| format!("removing incomplete {}", layout.pg_data.display()))?;
    }
    step(format!(
        "creating private PostgreSQL cluster in {} (trust auth, superuser postgres)",
        layout.rel(&layout.pg_data)
    ));
    let mut initdb = as_cluster_user(&bin.join("initdb"))?;
    initdb
        .arg("-D")
        .arg(&layout.pg_data)
        .args([
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ])
        .current_dir(&layout.pg_dir);
    let output = sys::capture(&mut initdb)?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}):\n{}",
            sys::display(&initdb),
            output.status,
            sys::combined_output(&output)
        );
    }
    let conf = layout.pg_data.join("postgresql.conf");
    let mut text =
        fs::read_to_string(&conf).with_context(|| format!("reading {}", conf.display()))?;
    text.push_str("\n# Settings written by `cargo xtask stack up` on every start.\ninclude_if_exists = 'xtask.conf'\n");
    fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
    Ok(())
}

/// Writes the settings that may change between starts (the port) or that
/// make a throwaway test cluster fast.
fn write_private_conf(layout: &Layout, port: u16) -> Result<()> {
    let socket_dir = layout.pg_socket.to_string_lossy().replace('\'', "''");
    let text = format!(
        "# Written by `cargo xtask stack up`; rewritten on every start.\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{socket_dir}'\n\
         # A throwaway cluster for tests: durability is not worth the fsyncs.\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         # Tests create a database each and run in parallel.\n\
         max_connections = 200\n"
    );
    let path = layout.pg_data.join("xtask.conf");
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    if running_as_root() {
        let owner = format!("{CLUSTER_USER}:");
        sys::capture(Command::new("chown").arg(&owner).arg(&path))?;
    }
    Ok(())
}

fn running_as_root() -> bool {
    sys::effective_uid() == Some(0)
}

/// A command that runs `program` as the cluster user when we are root
/// (through `runuser`, else `setpriv`), and directly otherwise.
fn as_cluster_user(program: &Path) -> Result<Command> {
    if !running_as_root() {
        return Ok(Command::new(program));
    }
    if sys::which("runuser").is_some() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", CLUSTER_USER, "--"]).arg(program);
        return Ok(cmd);
    }
    if sys::which("setpriv").is_some() {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={CLUSTER_USER}"),
            &format!("--regid={CLUSTER_USER}"),
            "--init-groups",
            "--",
        ])
        .arg(program);
        return Ok(cmd);
    }
    bail!(
        "running as root, but neither runuser nor setpriv is available to run PostgreSQL \
         as `{CLUSTER_USER}`; install util-linux"
    )
}

/// Where initdb and pg_ctl live: `PG_BIN_DIR`, `pg_config --bindir`, the
/// newest `/usr/lib/postgresql/*/bin`, or `PATH`.
pub fn bin_dir() -> Result<PathBuf> {
    let has_tools = |dir: &Path| {
        sys::is_executable(&dir.join("initdb")) && sys::is_executable(&dir.join("pg_ctl"))
    };
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        if has_tools(&dir) {
            return Ok(dir);
        }
        bail!(
            "PG_BIN_DIR={} holds no initdb/pg_ctl; {INSTALL_HINT}",
            dir.display()
        );
    }
    if let Ok(output) = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_tools(&dir) {
            return Ok(dir);
        }
    }
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let dir = entry.path().join("bin");
            has_tools(&dir).then_some((version, dir))
        })
        .max_by_key(|(version, _)| *version);
    if let Some((_, dir)) = newest {
        return Ok(dir);
    }
    if let Some(initdb) = sys::which("initdb")
        && let Some(dir) = initdb.parent()
        && has_tools(dir)
    {
        return Ok(dir.to_owned());
    }
    bail!("PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}")
}
