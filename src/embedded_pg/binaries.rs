//! Finding `initdb`, `pg_ctl` and `postgres`: the cluster's own PostgreSQL version when
//! installed, else the newest (Debian's `/usr/lib/postgresql/<version>/bin`), else
//! `PATH` (`scripts/lib.sh`'s `pg_bin_dir` looks in the same places).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::EmbeddedPgError;

/// Directory holding one directory per installed PostgreSQL major version (Debian layout).
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

/// Paths of the PostgreSQL binaries used.
#[derive(Debug)]
pub(super) struct Binaries {
    pub(super) initdb: PathBuf,
    pub(super) pg_ctl: PathBuf,
}

/// Finds the binaries: `/usr/lib/postgresql/<version>/bin` (the cluster's own version if
/// installed, else the highest version with `initdb`, `pg_ctl` and `postgres`), else a
/// `PATH` directory holding both `initdb` and `pg_ctl`.
pub(super) fn find_binaries(cluster_version: Option<&str>) -> Result<Binaries, EmbeddedPgError> {
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
pub(super) fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

pub(super) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_versions_numerically() {
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("common"), None);
        assert!(parse_version("10") > parse_version("9.6"));
    }
}
