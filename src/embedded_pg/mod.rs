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
//!
//! The steps live in their own files: `users` (who runs the binaries), `layout` (the
//! files under `data_dir`), `binaries` (finding them), `tools` (running `initdb` and
//! `pg_ctl`), `ready` (waiting for connections, the application database).

mod binaries;
mod layout;
mod ready;
mod tools;
mod users;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sqlx::Connection;

use binaries::find_binaries;
use layout::prepare_layout;
use ready::{ensure_database, wait_until_ready};
use tools::{
    ServerStatus, describe_output, init_cluster, pg_command, pg_ctl_status, run, start_server,
    stop_leftover_server,
};
use users::{SystemUser, effective_uid_is_root, lookup_postgres_user};

/// Name of the database (and of the superuser) created in the embedded cluster.
const DB_NAME: &str = "switchboard";
/// How long to wait for the server to accept connections after `pg_ctl start`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

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

#[cfg(test)]
mod tests {
    use super::*;

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
