//! `/socket.io/socket.io.js` and its siblings, as Node's `serveClient` serves them: web
//! apps that load the client from the server (`<script src="/socket.io/socket.io.js">`)
//! keep working. The files come from an installed `socket.io-client/dist`
//! (`SOCKETIO_CLIENT_DIR`), read once at start and answered from memory with an ETag.
//! Without the setting, those names answer 404 with a message saying what to set,
//! instead of engine.io's 400 for a request it cannot read.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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
    body: axum::body::Bytes,
    etag: HeaderValue,
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
                            let etag = format!("W/\"{:x}-{:x}\"", body.len(), fnv1a(&body));
                            let etag = HeaderValue::from_str(&etag)
                                .map_err(|e| fail(format!("{name}: {e}")))?;
                            files.push(File {
                                name,
                                body: body.into(),
                                etag,
                            });
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

/// 32-bit FNV-1a: a content tag for the ETag (not a security measure).
pub(crate) fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Middleware in front of socket.io: answers the client files, passes the rest on.
pub async fn serve(State(bundle): State<Arc<ClientBundle>>, req: Request, next: Next) -> Response {
    let Some(name) = bundle.name_of(req.uri().path()) else {
        return next.run(req).await;
    };
    if req.method() != axum::http::Method::GET && req.method() != axum::http::Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let Some(files) = &bundle.files else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "the socket.io client is not served here: set SOCKETIO_CLIENT_DIR to an installed \
             socket.io-client/dist folder, or load the client from your bundle or a CDN\n",
        )
            .into_response();
    };
    let Some(file) = files.iter().find(|f| f.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{name} is not in SOCKETIO_CLIENT_DIR\n"),
        )
            .into_response();
    };
    let content_type = if name.ends_with(".map") {
        "application/json"
    } else {
        "application/javascript; charset=utf-8"
    };
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag == file.etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // hyper leaves the body out of a HEAD answer itself.
        let mut response = Response::new(Body::from(file.body.clone()));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, file.etag.clone());
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0"),
    );
    response
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
