//! `/socket.io/socket.io.js` and its siblings, as Node's `serveClient` serves them: web
//! apps that load the client from the server (`<script src="/socket.io/socket.io.js">`)
//! keep working. The files come from an installed `socket.io-client/dist`
//! (`SOCKETIO_CLIENT_DIR`), read once at start and answered from memory with an ETag.
//! Without the setting, those names answer 404 with a message saying what to set,
//! instead of engine.io's 400 for a request it cannot read.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::static_file::{StaticFile, is_read, not_found};

/// The files Node's `serveClient` answers, under the socket.io path.
const FILES: [&str; 8] = [
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
];

struct File {
    name: &'static str,
    file: StaticFile,
}

/// The bundle, or why there is none.
pub struct ClientBundle {
    /// `SOCKETIO_PATH`.
    engine_path: String,
    /// `None`: not configured.
    files: Option<Vec<File>>,
}

/// A bundle that cannot be served as configured.
#[derive(Debug, thiserror::Error)]
#[error("SOCKETIO_CLIENT_DIR {dir}: {problem}")]
pub struct BundleError {
    dir: String,
    problem: String,
}

impl ClientBundle {
    /// Reads the files of `dir` (none configured: `None`); `socket.io.js` must be there.
    pub fn load(engine_path: &str, dir: Option<&Path>) -> Result<Arc<Self>, BundleError> {
        let files = match dir {
            None => None,
            Some(dir) => {
                let fail = |problem: String| BundleError {
                    dir: dir.display().to_string(),
                    problem,
                };
                let mut files = Vec::new();
                for name in FILES {
                    let path = dir.join(name);
                    match std::fs::read(&path) {
                        Ok(body) => {
                            let content_type = if name.ends_with(".map") {
                                "application/json"
                            } else {
                                "application/javascript; charset=utf-8"
                            };
                            let file = StaticFile::new(body, content_type)
                                .map_err(|e| fail(format!("{name}: {e}")))?;
                            files.push(File { name, file });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(fail(format!("{name}: {e}"))),
                    }
                }
                if !files.iter().any(|f| f.name == "socket.io.js") {
                    return Err(fail(
                        "no socket.io.js: point it at socket.io-client's dist folder".into(),
                    ));
                }
                Some(files)
            }
        };
        Ok(Arc::new(ClientBundle {
            engine_path: engine_path.to_owned(),
            files,
        }))
    }

    fn name_of<'a>(&self, path: &'a str) -> Option<&'a str> {
        let name = path
            .strip_prefix(self.engine_path.as_str())?
            .strip_prefix('/')?;
        FILES.contains(&name).then_some(name)
    }
}

/// Middleware in front of socket.io: answers the client files, passes the rest on.
pub async fn serve(State(bundle): State<Arc<ClientBundle>>, req: Request, next: Next) -> Response {
    let Some(name) = bundle.name_of(req.uri().path()) else {
        return next.run(req).await;
    };
    if !is_read(&req) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let Some(files) = &bundle.files else {
        return not_found(
            "the socket.io client is not served here: set SOCKETIO_CLIENT_DIR to an installed \
             socket.io-client/dist folder, or load the client from your bundle or a CDN\n",
        );
    };
    match files.iter().find(|f| f.name == name) {
        Some(f) => f.file.answer(&req),
        None => not_found(format!("{name} is not in SOCKETIO_CLIENT_DIR\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_without_socket_io_js_is_refused_and_names_map_under_the_path() {
        let dir = std::env::temp_dir().join(format!("sb-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("socket.io.min.js"), "min").unwrap_or_else(|e| panic!("{e}"));
        let err = ClientBundle::load("/socket.io", Some(&dir))
            .err()
            .unwrap_or_else(|| panic!("a dir without socket.io.js was accepted"));
        assert!(err.to_string().contains("no socket.io.js"), "{err}");
        std::fs::write(dir.join("socket.io.js"), "full").unwrap_or_else(|e| panic!("{e}"));
        let bundle = ClientBundle::load("/rt", Some(&dir)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bundle.name_of("/rt/socket.io.js"), Some("socket.io.js"));
        assert_eq!(
            bundle.name_of("/rt/socket.io.min.js.map"),
            Some("socket.io.min.js.map")
        );
        assert_eq!(bundle.name_of("/socket.io/socket.io.js"), None);
        assert_eq!(bundle.name_of("/rt/../etc/passwd"), None);
        assert_eq!(bundle.name_of("/rt/"), None);
        let files = bundle.files.as_ref().map_or(0, Vec::len);
        assert_eq!(files, 2, "only the files that exist");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
