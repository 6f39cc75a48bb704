//! Who runs the PostgreSQL binaries: this process, or the `postgres` system user when
//! this process is root (PostgreSQL refuses to run as root), and whether that user can
//! reach the data directory and own what is made for it.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

use super::{EmbeddedPgError, io_err};

/// uid/gid of the system user the PostgreSQL binaries run as.
#[derive(Debug, Clone, Copy)]
pub(super) struct SystemUser {
    pub(super) uid: u32,
    pub(super) gid: u32,
}

/// Whether this process's effective uid is 0 (from `/proc/self/status`, else `id -u`).
pub(super) fn effective_uid_is_root() -> bool {
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
pub(super) fn parse_effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
}

/// The `postgres` system user, from `/etc/passwd` or else `getent passwd postgres`.
pub(super) fn lookup_postgres_user() -> Result<SystemUser, EmbeddedPgError> {
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
pub(super) fn parse_passwd_line(line: &str, name: &str) -> Option<SystemUser> {
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
pub(super) fn may_traverse(meta: &fs::Metadata, user: SystemUser) -> bool {
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
pub(super) fn check_traversable(data_dir: &Path, user: SystemUser) -> Result<(), EmbeddedPgError> {
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
pub(super) fn chown_recursive(path: &Path, user: SystemUser) -> io::Result<()> {
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
}
