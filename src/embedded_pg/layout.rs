//! The files and directories under `data_dir` (listed in [`super`]'s documentation):
//! created with private permissions, given to the user the server runs as.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::users::{SystemUser, check_traversable, chown_recursive};
use super::{EmbeddedPgError, io_err};

/// Longest socket directory we use; PostgreSQL appends `/.s.PGSQL.<port>` (up to 15 bytes)
/// and the whole path must fit in `sun_path` (108 bytes including the NUL).
const MAX_SOCKET_DIR_LEN: usize = 80;

/// Files and directories prepared before the server is started.
#[derive(Debug)]
pub(super) struct Layout {
    pub(super) data_dir: PathBuf,
    pub(super) pgdata: PathBuf,
    pub(super) log_file: PathBuf,
    pub(super) socket_dir: PathBuf,
    pub(super) temp_socket_dir: bool,
    pub(super) initialised: bool,
}

/// Creates the directories and log file the server needs (owned by `run_as` when given)
/// and reports whether the cluster is already initialised.
pub(super) fn prepare_layout(
    requested: &Path,
    run_as: Option<SystemUser>,
) -> Result<Layout, EmbeddedPgError> {
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
pub(super) fn create_private_dir(dir: &Path) -> Result<(), EmbeddedPgError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err(format!("create {}", dir.display()), e))
}
