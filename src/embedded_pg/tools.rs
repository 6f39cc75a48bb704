//! Running the PostgreSQL tools: `initdb`, `pg_ctl status`/`stop`/`start` (on a free
//! port, retried when it is taken), and turning their output into one-line errors.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Output, Stdio};

use super::layout::Layout;
use super::users::SystemUser;
use super::{DB_NAME, EmbeddedPgError, io_err};

/// How many ports to try when another process grabs the chosen port first.
const PORT_ATTEMPTS: usize = 5;

/// A command for a PostgreSQL tool, run as `run_as` when given, from `/` (the caller's
/// working directory may be unreadable for the `postgres` user), without stdin.
pub(super) fn pg_command(program: &Path, run_as: Option<SystemUser>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.current_dir("/").stdin(Stdio::null());
    if let Some(user) = run_as {
        // std drops root's supplementary groups before switching uid.
        cmd.gid(user.gid).uid(user.uid);
    }
    cmd
}

/// Runs `cmd` to completion capturing stdout and stderr.
pub(super) async fn run(cmd: std::process::Command, what: &str) -> Result<Output, EmbeddedPgError> {
    tokio::process::Command::from(cmd)
        .output()
        .await
        .map_err(|e| io_err(what, e))
}

/// One line: exit status and the last lines of stderr (or stdout if stderr is empty).
pub(super) fn describe_output(output: &Output) -> String {
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
pub(super) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Creates the cluster: superuser `switchboard`, trust authentication, UTF-8, C locale.
pub(super) async fn init_cluster(
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
pub(super) enum ServerStatus {
    Running,
    NotRunning,
}

/// `pg_ctl status`: exit 0 means running, 3 not running; anything else is unknown.
pub(super) async fn pg_ctl_status(
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
pub(super) async fn stop_leftover_server(
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
pub(super) fn free_port() -> Result<u16, EmbeddedPgError> {
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
pub(super) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Starts the server with `pg_ctl start -w` on a free port, retrying with another port
/// when the chosen one was taken in the meantime. Returns the port.
pub(super) async fn start_server(
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
pub(super) fn read_log_since(log_file: &Path, offset: u64) -> String {
    let bytes = fs::read(log_file).unwrap_or_default();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
