//! The shared benchmark database, through `psql` and `pgbench` (as an operator would).

use std::path::Path;

use tokio::process::Command;

use crate::util::Result;

/// Runs SQL with `psql` and returns its unaligned output.
pub async fn psql(url: &str, sql: &str) -> Result<String> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            sql,
        ])
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!("psql: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The database name at the end of a URL (letters, digits, `_` only).
pub fn database_name(url: &str) -> Result<String> {
    let path = url
        .rsplit('/')
        .next()
        .ok_or("database URL without a name")?;
    let name = path.split('?').next().unwrap_or(path);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("unexpected database name in {url}").into());
    }
    Ok(name.to_owned())
}

/// Creates database `name` through `admin_url` if it does not exist.
pub async fn ensure_database(admin_url: &str, name: &str) -> Result<()> {
    let exists = psql(
        admin_url,
        &format!("select 1 from pg_database where datname = '{name}'"),
    )
    .await?;
    if exists != "1" {
        psql(admin_url, &format!("create database \"{name}\"")).await?;
    }
    Ok(())
}

/// Drops database `name` (used when its migration history no longer matches).
pub async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    psql(
        admin_url,
        &format!("drop database if exists \"{name}\" with (force)"),
    )
    .await?;
    Ok(())
}

/// Empties every application table (the schema and migration history stay), so each
/// run starts from the same state. Backends the previous server left behind (statements
/// still running after it was stopped) are ended first: TRUNCATE would deadlock with them.
pub async fn reset(url: &str) -> Result<()> {
    psql(
        url,
        "select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid()",
    )
    .await?;
    psql(
        url,
        "do $$ declare t text; begin
           select string_agg(format('%I.%I', schemaname, tablename), ', ') into t
           from pg_tables where schemaname = 'public' and tablename <> '_sqlx_migrations';
           if t is not null then execute 'truncate ' || t || ' restart identity cascade'; end if;
         end $$",
    )
    .await?;
    Ok(())
}

/// Runs `pgbench` with the given script files (one chosen at random per transaction)
/// and returns the transactions per second (without connection time).
pub async fn pgbench(
    url: &str,
    scripts: &[&Path],
    clients: u32,
    threads: u32,
    seconds: u64,
) -> Result<f64> {
    let mut cmd = Command::new("pgbench");
    cmd.args(["-n", "-M", "prepared"])
        .arg(format!("-c{clients}"))
        .arg(format!("-j{threads}"))
        .arg(format!("-T{seconds}"));
    for s in scripts {
        cmd.arg("-f").arg(s);
    }
    cmd.arg(url);
    let out = cmd.output().await?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "pgbench: {} {}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .ok_or_else(|| format!("pgbench printed no tps: {text}").into())
}
