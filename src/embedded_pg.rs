//! Embedded PostgreSQL: owns the private database server that Switchboard runs from the
//! machine's own PostgreSQL binaries when `DATABASE_URL` is not set.
//!
//! [`EmbeddedPostgres::start`] finds `initdb`/`pg_ctl`/`postgres`, creates a cluster in
//! `<data_dir>/postgres` on first use, starts it on a free loopback port, waits until it
//! accepts connections and makes sure the `switchboard` database exists.
//! [`EmbeddedPostgres::stop`] shuts it down (fast mode); dropping the handle without calling
//! `stop` shuts it down synchronously as a best effort.
//!
//! Files under `data_dir`:
//! - `postgres/`: the cluster (trust authentication, listens on 127.0.0.1 only),
//! - `postgres.log`: the server log (appended to on every start),
//! - `run/`: the server's unix socket directory (a directory under `/tmp` is used instead
//!   when `data_dir` is so deep that socket paths would exceed the kernel's limit).
//!
//! PostgreSQL refuses to run as root, so when this process's effective uid is 0 the
//! binaries are run as the `postgres` system user, which is given ownership of the cluster,
//! the log file and the socket directory.
//!
//! If a server left over from an earlier run (e.g. after this process was killed) is still
//! running on the same cluster, it is stopped (fast mode) and a fresh one is started, so the
//! port and options are always the ones chosen here.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// Name of the database (and of the superuser) created in the embedded cluster.
const DB_NAME: &str = "switchboard";
/// Directory holding one directory per installed PostgreSQL major version (Debian layout).
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";
/// How long to wait for the server to accept connections after `pg_ctl start`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many ports to try when another process grabs the chosen port first.
const PORT_ATTEMPTS: usize = 5;
/// Longest socket directory we use; PostgreSQL appends `/.s.PGSQL.<port>` (up to 15 bytes)
/// and the whole path must fit in `sun_path` (108 bytes including the NUL).
const MAX_SOCKET_DIR_LEN: usize = 80;

/// Why the embedded database could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    /// Neither `/usr/lib/postgresql/<version>/bin` nor `PATH` has the PostgreSQL binaries.
    #[error(
        "no PostgreSQL binaries found (looked in /usr/lib/postgresql/*/bin and PATH): install them (Debian: apt-get install postgresql) or set DATABASE_URL to an existing database"
    )]
    BinariesNotFound,

    /// The process runs as root (PostgreSQL refuses that) and there is no `postgres` user
    /// to run the server as.
    #[error("running as root and no `postgres` user exists: create one or set DATABASE_URL")]
    NoPostgresUser,

    /// When running as root: the `postgres` user cannot enter this directory on the way to
    /// the data directory.
    #[error(
        "the `postgres` user cannot enter {dir} (needed to reach the data directory {data_dir}): make it traversable (e.g. chmod o+x) or choose another data directory, or set DATABASE_URL"
    )]
    DirectoryNotTraversable {
        /// The directory lacking execute permission for the `postgres` user.
        dir: PathBuf,
        /// The data directory that was asked for.
        data_dir: PathBuf,
    },

    /// A filesystem or process-spawning operation failed.
    #[error("could not {action}: {source}")]
    Io {
        /// What was being done, including the path involved.
        action: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A PostgreSQL tool (`initdb`, `pg_ctl`) exited unsuccessfully.
    #[error("{action} failed: {detail}")]
    CommandFailed {
        /// What was being done (e.g. "starting PostgreSQL (pg_ctl start)").
        action: String,
        /// Exit status and the tool's (and, on start, the server log's) last messages.
        detail: String,
    },

    /// No free loopback TCP port could be obtained.
    #[error("could not find a free TCP port on 127.0.0.1: {0}")]
    NoFreePort(#[source] io::Error),

    /// The server was started but did not accept connections in time.
    #[error(
        "PostgreSQL on 127.0.0.1:{port} did not accept connections within {} s: {source}",
        READY_TIMEOUT.as_secs()
    )]
    NotReady {
        /// The port the server was started on.
        port: u16,
        /// The last connection error.
        #[source]
        source: sqlx::Error,
    },

    /// Checking for or creating the `switchboard` database failed.
    #[error("could not create the `switchboard` database: {0}")]
    CreateDatabase(#[source] sqlx::Error),
}

/// A running PostgreSQL server private to this process.
///
/// Stop it with [`EmbeddedPostgres::stop`]; if it is dropped without that, `Drop` stops it
/// synchronously (best effort, failures are logged).
#[derive(Debug)]
pub struct EmbeddedPostgres {
    pg_ctl: PathBuf,
    pgdata: PathBuf,
    run_as: Option<SystemUser>,
    port: u16,
    url: String,
    /// Socket directory created under `/tmp` (removed on stop), if `data_dir` was too deep.
    temp_socket_dir: Option<PathBuf>,
    running: bool,
}

/// uid/gid of the system user the PostgreSQL binaries run as.
#[derive(Debug, Clone, Copy)]
struct SystemUser {
    uid: u32,
    gid: u32,
}

/// Paths of the PostgreSQL binaries used.
#[derive(Debug)]
struct Binaries {
    initdb: PathBuf,
    pg_ctl: PathBuf,
}

/// Files and directories prepared before the server is started.
#[derive(Debug)]
struct Layout {
    data_dir: PathBuf,
    pgdata: PathBuf,
    log_file: PathBuf,
    socket_dir: PathBuf,
    temp_socket_dir: bool,
    initialised: bool,
}

impl EmbeddedPostgres {
    /// Finds the binaries, initialises `data_dir` on first use, starts the server on a
    /// free loopback port, waits until it accepts connections, creates database
    /// `switchboard` if missing.
    ///
    /// The cluster lives in `<data_dir>/postgres` and the server log in
    /// `<data_dir>/postgres.log`. A server still running on that cluster from an earlier run
    /// is stopped first.
    pub async fn start(data_dir: &Path) -> Result<Self, EmbeddedPgError> {
        let run_as = if effective_uid_is_root() {
            Some(lookup_postgres_user()?)
        } else {
            None
        };

        let requested = data_dir.to_path_buf();
        let layout = tokio::task::spawn_blocking(move || prepare_layout(&requested, run_as))
            .await
            .map_err(|e| io_err("prepare the data directory", io::Error::other(e)))??;

        let cluster_version = fs::read_to_string(layout.pgdata.join("PG_VERSION"))
            .ok()
            .map(|v| v.trim().to_owned());
        let binaries = find_binaries(cluster_version.as_deref())?;
        tracing::debug!(
            pg_ctl = %binaries.pg_ctl.display(),
            data_dir = %layout.data_dir.display(),
            as_postgres_user = run_as.is_some(),
            "preparing embedded PostgreSQL"
        );

        if layout.initialised {
            stop_leftover_server(&binaries.pg_ctl, &layout.pgdata, run_as).await?;
        } else {
            init_cluster(&binaries.initdb, &layout.pgdata, run_as).await?;
        }

        let port = start_server(&binaries.pg_ctl, &layout, run_as).await?;

        // From here on, `Drop` stops the server if anything below fails.
        let url = format!("postgres://{DB_NAME}@127.0.0.1:{port}/{DB_NAME}");
        let server = EmbeddedPostgres {
            pg_ctl: binaries.pg_ctl,
            pgdata: layout.pgdata,
            run_as,
            port,
            url,
            temp_socket_dir: layout.temp_socket_dir.then_some(layout.socket_dir),
            running: true,
        };

        let admin_url = format!("postgres://{DB_NAME}@127.0.0.1:{port}/postgres");
        let mut conn = wait_until_ready(&admin_url, port).await?;
        let created = ensure_database(&mut conn).await;
        if let Err(e) = conn.close().await {
            tracing::debug!(error = %e, "closing the embedded PostgreSQL admin connection failed");
        }
        let created = created?;

        tracing::info!(
            port,
            data_dir = %layout.data_dir.display(),
            created_database = created,
            "embedded PostgreSQL started"
        );
        Ok(server)
    }

    /// postgres://… URL of the `switchboard` database (user, host 127.0.0.1, port).
    pub fn database_url(&self) -> &str {
        &self.url
    }

    /// Fast shutdown (`pg_ctl stop -m fast`), waits for it.
    ///
    /// A server that is already gone counts as stopped.
    pub async fn stop(mut self) -> Result<(), EmbeddedPgError> {
        let cmd = self.stop_command();
        let output = run(cmd, "run pg_ctl stop").await?;
        if !output.status.success() {
            let status = pg_ctl_status(&self.pg_ctl, &self.pgdata, self.run_as).await;
            if status == Some(ServerStatus::NotRunning) {
                tracing::warn!(
                    port = self.port,
                    "embedded PostgreSQL was not running when asked to stop"
                );
            } else {
                return Err(EmbeddedPgError::CommandFailed {
                    action: "stopping PostgreSQL (pg_ctl stop)".to_owned(),
                    detail: describe_output(&output),
                });
            }
        }
        self.running = false;
        self.remove_temp_socket_dir();
        tracing::info!(port = self.port, "embedded PostgreSQL stopped");
        Ok(())
    }

    fn stop_command(&self) -> std::process::Command {
        let mut cmd = pg_command(&self.pg_ctl, self.run_as);
        cmd.arg("stop")
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-m", "fast", "-w"]);
        cmd
    }

    fn remove_temp_socket_dir(&mut self) {
        if let Some(dir) = self.temp_socket_dir.take()
            && let Err(e) = fs::remove_dir_all(&dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove socket directory");
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if self.running {
            tracing::info!(
                port = self.port,
                "stopping embedded PostgreSQL (dropped without stop)"
            );
            let mut cmd = self.stop_command();
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            match cmd.output() {
                Ok(output) if output.status.success() => self.running = false,
                Ok(output) => tracing::warn!(
                    port = self.port,
                    detail = %describe_output(&output),
                    "could not stop embedded PostgreSQL"
                ),
                Err(e) => tracing::warn!(
                    port = self.port,
                    error = %e,
                    "could not run pg_ctl to stop embedded PostgreSQL"
                ),
            }
        }
        self.remove_temp_socket_dir();
    }
}

fn io_err(action: impl Into<String>, source: io::Error) -> EmbeddedPgError {
    EmbeddedPgError::Io {
        action: action.into(),
        source,
    }
}

// ---------------------------------------------------------------------------------------
// Users and permissions
// ---------------------------------------------------------------------------------------

/// Whether this process's effective uid is 0 (from `/proc/self/status`, else `id -u`).
fn effective_uid_is_root() -> bool {
    if let Ok(status) = fs::read_to_string("/proc/self/status")
        && let Some(euid) = parse_effective_uid(&status)
    {
        return euid == 0;
    }
    std::process::Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .is_some_and(|s| s.trim() == "0")
}

/// The effective uid from a `/proc/<pid>/status` text (`Uid: real effective saved fs`).
fn parse_effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
}

/// The `postgres` system user, from `/etc/passwd` or else `getent passwd postgres`.
fn lookup_postgres_user() -> Result<SystemUser, EmbeddedPgError> {
    let from_file = fs::read_to_string("/etc/passwd").ok().and_then(|passwd| {
        passwd
            .lines()
            .find_map(|l| parse_passwd_line(l, "postgres"))
    });
    let user = from_file.or_else(|| {
        std::process::Command::new("getent")
            .args(["passwd", "postgres"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|out| out.lines().find_map(|l| parse_passwd_line(l, "postgres")))
    });
    user.ok_or(EmbeddedPgError::NoPostgresUser)
}

/// uid/gid from a passwd line (`name:password:uid:gid:gecos:home:shell`) for user `name`.
fn parse_passwd_line(line: &str, name: &str) -> Option<SystemUser> {
    let mut fields = line.split(':');
    if fields.next()? != name {
        return None;
    }
    let _password = fields.next()?;
    let uid = fields.next()?.parse().ok()?;
    let gid = fields.next()?.parse().ok()?;
    Some(SystemUser { uid, gid })
}

/// Whether `user` (with only its primary group, as the spawned processes have) may search
/// the directory described by `meta`.
fn may_traverse(meta: &fs::Metadata, user: SystemUser) -> bool {
    let mode = meta.permissions().mode();
    let bit = if meta.uid() == user.uid {
        0o100
    } else if meta.gid() == user.gid {
        0o010
    } else {
        0o001
    };
    mode & bit != 0
}

/// Fails with [`EmbeddedPgError::DirectoryNotTraversable`] naming the first directory
/// from `/` down to `data_dir` (an absolute, canonical path) that `user` cannot enter.
fn check_traversable(data_dir: &Path, user: SystemUser) -> Result<(), EmbeddedPgError> {
    let mut dirs: Vec<&Path> = data_dir.ancestors().collect();
    dirs.reverse();
    for dir in dirs {
        let meta =
            fs::metadata(dir).map_err(|e| io_err(format!("inspect {}", dir.display()), e))?;
        if !may_traverse(&meta, user) {
            return Err(EmbeddedPgError::DirectoryNotTraversable {
                dir: dir.to_path_buf(),
                data_dir: data_dir.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Gives `path` and everything below it (symlinks themselves, not their targets) to `user`.
fn chown_recursive(path: &Path, user: SystemUser) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.uid() != user.uid || meta.gid() != user.gid {
        std::os::unix::fs::lchown(path, Some(user.uid), Some(user.gid))?;
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_recursive(&entry?.path(), user)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Filesystem layout
// ---------------------------------------------------------------------------------------

/// Creates the directories and log file the server needs (owned by `run_as` when given)
/// and reports whether the cluster is already initialised.
fn prepare_layout(requested: &Path, run_as: Option<SystemUser>) -> Result<Layout, EmbeddedPgError> {
    let absolute = std::path::absolute(requested).map_err(|e| {
        io_err(
            format!("resolve the data directory {}", requested.display()),
            e,
        )
    })?;
    fs::create_dir_all(&absolute)
        .map_err(|e| io_err(format!("create {}", absolute.display()), e))?;
    let data_dir = fs::canonicalize(&absolute)
        .map_err(|e| io_err(format!("resolve {}", absolute.display()), e))?;
    if let Some(user) = run_as {
        check_traversable(&data_dir, user)?;
    }

    let pgdata = data_dir.join("postgres");
    create_private_dir(&pgdata)?;
    let initialised = pgdata.join("PG_VERSION").is_file();

    let log_file = data_dir.join("postgres.log");
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_file)
        .map_err(|e| io_err(format!("create {}", log_file.display()), e))?;

    let local_socket_dir = data_dir.join("run");
    let (socket_dir, temp_socket_dir) = if local_socket_dir.as_os_str().len() <= MAX_SOCKET_DIR_LEN
    {
        (local_socket_dir, false)
    } else {
        let name = format!("switchboard-pg-{}", uuid::Uuid::new_v4().simple());
        (Path::new("/tmp").join(name), true)
    };
    create_private_dir(&socket_dir)?;

    if let Some(user) = run_as {
        for path in [&pgdata, &log_file, &socket_dir] {
            chown_recursive(path, user)
                .map_err(|e| io_err(format!("give {} to the postgres user", path.display()), e))?;
        }
    }

    Ok(Layout {
        data_dir,
        pgdata,
        log_file,
        socket_dir,
        temp_socket_dir,
        initialised,
    })
}

/// Creates `dir` (and missing parents) with mode 0700 if it does not exist.
fn create_private_dir(dir: &Path) -> Result<(), EmbeddedPgError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err(format!("create {}", dir.display()), e))
}

// ---------------------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------------------

/// Finds the binaries: `/usr/lib/postgresql/<version>/bin` (the cluster's own version if
/// installed, else the highest version with `initdb`, `pg_ctl` and `postgres`), else a
/// `PATH` directory holding both `initdb` and `pg_ctl`.
fn find_binaries(cluster_version: Option<&str>) -> Result<Binaries, EmbeddedPgError> {
    let complete = |bin: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|name| is_executable(&bin.join(name)))
    };
    let from_dir = |bin: &Path| Binaries {
        initdb: bin.join("initdb"),
        pg_ctl: bin.join("pg_ctl"),
    };

    if let Some(version) = cluster_version {
        let bin = Path::new(VERSIONED_ROOT).join(version).join("bin");
        if complete(&bin) {
            return Ok(from_dir(&bin));
        }
    }

    let mut versioned: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(VERSIONED_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = parse_version(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versioned.sort();
    if let Some((_, bin)) = versioned.pop() {
        return Ok(from_dir(&bin));
    }

    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let (initdb, pg_ctl) = (dir.join("initdb"), dir.join("pg_ctl"));
        if is_executable(&initdb) && is_executable(&pg_ctl) {
            // Resolve symlinks: pg_ctl looks for `postgres` next to its real location.
            return Ok(Binaries {
                initdb: fs::canonicalize(&initdb).unwrap_or(initdb),
                pg_ctl: fs::canonicalize(&pg_ctl).unwrap_or(pg_ctl),
            });
        }
    }
    Err(EmbeddedPgError::BinariesNotFound)
}

/// `"15"` → `[15]`, `"9.6"` → `[9, 6]`; anything non-numeric → `None`.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

// ---------------------------------------------------------------------------------------
// Running the tools
// ---------------------------------------------------------------------------------------

/// A command for a PostgreSQL tool, run as `run_as` when given, from `/` (the caller's
/// working directory may be unreadable for the `postgres` user), without stdin.
fn pg_command(program: &Path, run_as: Option<SystemUser>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.current_dir("/").stdin(Stdio::null());
    if let Some(user) = run_as {
        // std drops root's supplementary groups before switching uid.
        cmd.gid(user.gid).uid(user.uid);
    }
    cmd
}

/// Runs `cmd` to completion capturing stdout and stderr.
async fn run(cmd: std::process::Command, what: &str) -> Result<Output, EmbeddedPgError> {
    tokio::process::Command::from(cmd)
        .output()
        .await
        .map_err(|e| io_err(what, e))
}

/// One line: exit status and the last lines of stderr (or stdout if stderr is empty).
fn describe_output(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let messages = last_lines(&text, 6);
    if messages.is_empty() {
        format!("{}", output.status)
    } else {
        format!("{}: {messages}", output.status)
    }
}

/// The last `n` non-empty lines of `text`, joined with ` | ` into one line.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Creates the cluster: superuser `switchboard`, trust authentication, UTF-8, C locale.
async fn init_cluster(
    initdb: &Path,
    pgdata: &Path,
    run_as: Option<SystemUser>,
) -> Result<(), EmbeddedPgError> {
    tracing::info!(pgdata = %pgdata.display(), "initialising embedded PostgreSQL cluster");
    let mut cmd = pg_command(initdb, run_as);
    cmd.arg("-D").arg(pgdata).args([
        "-U",
        DB_NAME,
        "--auth=trust",
        "--encoding=UTF8",
        "--no-locale",
    ]);
    let output = run(cmd, "run initdb").await?;
    if output.status.success() {
        Ok(())
    } else {
        Err(EmbeddedPgError::CommandFailed {
            action: format!("initialising the cluster in {} (initdb)", pgdata.display()),
            detail: describe_output(&output),
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ServerStatus {
    Running,
    NotRunning,
}

/// `pg_ctl status`: exit 0 means running, 3 not running; anything else is unknown.
async fn pg_ctl_status(
    pg_ctl: &Path,
    pgdata: &Path,
    run_as: Option<SystemUser>,
) -> Option<ServerStatus> {
    let mut cmd = pg_command(pg_ctl, run_as);
    cmd.arg("status").arg("-D").arg(pgdata);
    let output = run(cmd, "run pg_ctl status").await.ok()?;
    match output.status.code() {
        Some(0) => Some(ServerStatus::Running),
        Some(3) => Some(ServerStatus::NotRunning),
        _ => None,
    }
}

/// Stops a server still running on `pgdata` from an earlier run (fast mode).
async fn stop_leftover_server(
    pg_ctl: &Path,
    pgdata: &Path,
    run_as: Option<SystemUser>,
) -> Result<(), EmbeddedPgError> {
    if pg_ctl_status(pg_ctl, pgdata, run_as).await != Some(ServerStatus::Running) {
        return Ok(());
    }
    tracing::warn!(
        pgdata = %pgdata.display(),
        "a PostgreSQL server from an earlier run is still running on this cluster; stopping it"
    );
    let mut cmd = pg_command(pg_ctl, run_as);
    cmd.arg("stop")
        .arg("-D")
        .arg(pgdata)
        .args(["-m", "fast", "-w"]);
    let output = run(cmd, "run pg_ctl stop").await?;
    if output.status.success() {
        Ok(())
    } else {
        Err(EmbeddedPgError::CommandFailed {
            action: "stopping the PostgreSQL server left over from an earlier run (pg_ctl stop)"
                .to_owned(),
            detail: describe_output(&output),
        })
    }
}

/// A free loopback port: bind `127.0.0.1:0`, read the port, release it.
fn free_port() -> Result<u16, EmbeddedPgError> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(EmbeddedPgError::NoFreePort)?;
    let port = listener
        .local_addr()
        .map_err(EmbeddedPgError::NoFreePort)?
        .port();
    drop(listener);
    Ok(port)
}

/// Quotes `s` for `/bin/sh` (pg_ctl runs the server through the shell with `-o` verbatim).
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Starts the server with `pg_ctl start -w` on a free port, retrying with another port
/// when the chosen one was taken in the meantime. Returns the port.
async fn start_server(
    pg_ctl: &Path,
    layout: &Layout,
    run_as: Option<SystemUser>,
) -> Result<u16, EmbeddedPgError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = free_port()?;
        let log_offset = fs::metadata(&layout.log_file).map_or(0, |m| m.len());
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            shell_quote(&layout.socket_dir.to_string_lossy())
        );
        let mut cmd = pg_command(pg_ctl, run_as);
        cmd.arg("start")
            .arg("-D")
            .arg(&layout.pgdata)
            .args(["-w", "-t", "30", "-l"])
            .arg(&layout.log_file)
            .arg("-o")
            .arg(options);
        tracing::debug!(port, attempt, "starting embedded PostgreSQL");
        let output = run(cmd, "run pg_ctl start").await?;
        if output.status.success() {
            return Ok(port);
        }

        let log = read_log_since(&layout.log_file, log_offset);
        // `-w -t` can give up on a server that is still coming up: do not leave it behind.
        if pg_ctl_status(pg_ctl, &layout.pgdata, run_as).await == Some(ServerStatus::Running) {
            let mut stop = pg_command(pg_ctl, run_as);
            stop.arg("stop")
                .arg("-D")
                .arg(&layout.pgdata)
                .args(["-m", "immediate", "-w"]);
            if let Err(e) = run(stop, "run pg_ctl stop").await {
                tracing::warn!(error = %e, "could not stop a half-started PostgreSQL");
            }
        }
        let port_taken = log.contains("Address already in use") || log.contains("could not bind");
        if port_taken && attempt < PORT_ATTEMPTS {
            tracing::debug!(
                port,
                "port was taken before PostgreSQL could bind it; retrying"
            );
            continue;
        }

        let mut detail = describe_output(&output);
        let log_tail = last_lines(&log, 5);
        if !log_tail.is_empty() {
            detail.push_str(&format!(
                "; server log {}: {log_tail}",
                layout.log_file.display()
            ));
        }
        return Err(EmbeddedPgError::CommandFailed {
            action: format!("starting PostgreSQL on 127.0.0.1:{port} (pg_ctl start)"),
            detail,
        });
    }
}

/// What was appended to the log file after byte `offset` (lossy UTF-8; empty on error).
fn read_log_since(log_file: &Path, offset: u64) -> String {
    let bytes = fs::read(log_file).unwrap_or_default();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

// ---------------------------------------------------------------------------------------
// Readiness and the application database
// ---------------------------------------------------------------------------------------

/// Connects to `url`, retrying until [`READY_TIMEOUT`] has passed.
async fn wait_until_ready(url: &str, port: u16) -> Result<PgConnection, EmbeddedPgError> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await;
        let error = match attempt {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => e,
            Err(_) => sqlx::Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection attempt timed out",
            )),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(EmbeddedPgError::NotReady {
                port,
                source: error,
            });
        }
        tracing::debug!(error = %error, "embedded PostgreSQL not ready yet");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates database `switchboard` unless it exists; returns whether it was created.
async fn ensure_database(conn: &mut PgConnection) -> Result<bool, EmbeddedPgError> {
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = 'switchboard'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(EmbeddedPgError::CreateDatabase)?;
    if exists.is_some() {
        return Ok(false);
    }
    sqlx::query("CREATE DATABASE switchboard")
        .execute(&mut *conn)
        .await
        .map_err(EmbeddedPgError::CreateDatabase)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_effective_uid_from_proc_status() {
        let status = "Name:\tx\nUid:\t1000\t0\t1000\t1000\nGid:\t1\t1\t1\t1\n";
        assert_eq!(parse_effective_uid(status), Some(0));
        assert_eq!(parse_effective_uid("Name:\tx\n"), None);
    }

    #[test]
    fn parses_passwd_lines() {
        let user = parse_passwd_line(
            "postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash",
            "postgres",
        );
        assert!(matches!(user, Some(SystemUser { uid: 101, gid: 104 })));
        assert!(parse_passwd_line("postgresql:x:1:1::/:/bin/sh", "postgres").is_none());
        assert!(parse_passwd_line("postgres:x:abc:1::/:/bin/sh", "postgres").is_none());
    }

    #[test]
    fn orders_versions_numerically() {
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("common"), None);
        assert!(parse_version("10") > parse_version("9.6"));
    }

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("/a b"), "'/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn summarises_to_one_line() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(last_lines("", 3), "");
    }

    #[test]
    fn errors_display_on_one_line() {
        let errors = [
            EmbeddedPgError::BinariesNotFound.to_string(),
            EmbeddedPgError::NoPostgresUser.to_string(),
            EmbeddedPgError::DirectoryNotTraversable {
                dir: PathBuf::from("/root"),
                data_dir: PathBuf::from("/root/data"),
            }
            .to_string(),
        ];
        for message in errors {
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
