//! The Admin UI's own files at `/admin/ui/`, for installs that cannot load it from the
//! package's hosted copy: `ADMIN_UI_DIR` names an installed `@socket.io/admin-ui/ui/dist`.
//!
//! As with the socket.io client files (`http::client_bundle`), everything is read once at
//! start and answered from memory; a request names a file only by an exact match of
//! its path against the names read, so no request reaches the file system (`..`,
//! encoded or not, names nothing). Symbolic links are not followed, and the folder is
//! bounded ([`MAX_FILES`], [`MAX_BYTES`]). Served only while `ADMIN_UI=true`.
//!
//! The package's `index.html` links two stylesheets on public CDNs (fonts and icons);
//! without them the UI works, in a fallback font and without its icons.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::static_file::{StaticFile, is_read, not_found};

/// Where the UI is served.
pub const PREFIX: &str = "/admin/ui";

/// Most files read from the folder (the package has about ten).
const MAX_FILES: usize = 500;
/// Most bytes read from the folder (the package has about 5 MB).
const MAX_BYTES: u64 = 64 << 20;
/// Deepest folder read.
const MAX_DEPTH: usize = 8;

/// The UI's files by path below [`PREFIX`], or none (not configured).
pub struct UiFiles {
    files: Option<HashMap<String, StaticFile>>,
}

/// A folder that cannot be served as configured.
#[derive(Debug, thiserror::Error)]
#[error("ADMIN_UI_DIR {dir}: {problem}")]
pub struct UiFilesError {
    dir: String,
    problem: String,
}

impl UiFiles {
    /// Reads `dir` (none: nothing served); it must hold `index.html`.
    pub fn load(dir: Option<&Path>) -> Result<Arc<Self>, UiFilesError> {
        let Some(dir) = dir else {
            return Ok(Arc::new(UiFiles { files: None }));
        };
        let fail = |problem: String| UiFilesError {
            dir: dir.display().to_string(),
            problem,
        };
        let mut files = HashMap::new();
        let mut total = 0_u64;
        let mut pending = vec![(dir.to_path_buf(), String::new(), 0_usize)];
        while let Some((folder, prefix, depth)) = pending.pop() {
            let entries = std::fs::read_dir(&folder).map_err(|e| fail(e.to_string()))?;
            for entry in entries {
                let entry = entry.map_err(|e| fail(e.to_string()))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let kind = entry.file_type().map_err(|e| fail(e.to_string()))?;
                let relative = format!("{prefix}{name}");
                if kind.is_dir() && depth < MAX_DEPTH {
                    pending.push((entry.path(), format!("{relative}/"), depth + 1));
                } else if kind.is_file() {
                    let body = std::fs::read(entry.path())
                        .map_err(|e| fail(format!("{relative}: {e}")))?;
                    total += body.len() as u64;
                    if files.len() >= MAX_FILES || total > MAX_BYTES {
                        return Err(fail(format!(
                            "more than {MAX_FILES} files or {MAX_BYTES} bytes: point it at the package's ui/dist"
                        )));
                    }
                    let file = StaticFile::new(body, content_type(&relative))
                        .map_err(|e| fail(e.to_string()))?;
                    files.insert(relative, file);
                }
            }
        }
        if !files.contains_key("index.html") {
            return Err(fail(
                "no index.html: point it at @socket.io/admin-ui's ui/dist folder".into(),
            ));
        }
        Ok(Arc::new(UiFiles { files: Some(files) }))
    }
}

fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit('.').next().unwrap_or_default();
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" => "application/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "map" | "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Middleware in front of everything: answers `/admin/ui` and below, passes the rest on.
pub async fn serve(State(ui): State<Arc<UiFiles>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return next.run(req).await;
    };
    let Some(files) = &ui.files else {
        return next.run(req).await;
    };
    if rest.is_empty() {
        // The UI loads its files relative to the page: it must end with a slash.
        return (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, format!("{PREFIX}/"))],
        )
            .into_response();
    }
    let Some(name) = rest.strip_prefix('/') else {
        return next.run(req).await;
    };
    if !is_read(&req) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let name = if name.is_empty() { "index.html" } else { name };
    match files.get(name) {
        Some(file) => file.answer(&req),
        None => not_found("not a file of the Admin UI\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_read_whole_and_needs_index_html() {
        let dir = std::env::temp_dir().join(format!("sb-admin-ui-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("js")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("js/app.js"), "app").unwrap_or_else(|e| panic!("{e}"));
        let err = UiFiles::load(Some(&dir))
            .err()
            .unwrap_or_else(|| panic!("a folder without index.html was accepted"));
        assert!(err.to_string().contains("no index.html"), "{err}");
        std::fs::write(dir.join("index.html"), "<html>").unwrap_or_else(|e| panic!("{e}"));
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap_or_else(|e| panic!("{e}"));
        let ui = UiFiles::load(Some(&dir)).unwrap_or_else(|e| panic!("{e}"));
        let files = ui.files.as_ref().unwrap_or_else(|| panic!("no files"));
        let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["index.html", "js/app.js"], "links are not followed");
        assert_eq!(
            files["js/app.js"].content_type,
            "application/javascript; charset=utf-8"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
