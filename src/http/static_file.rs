//! A file read once at start and answered from memory: the socket.io client bundle
//! (`client_bundle.rs`) and the Admin UI (`admin::files`) serve theirs through it, with
//! an ETag, `If-None-Match` answered 304, and `Cache-Control: public, max-age=0` (the
//! browser revalidates, the body crosses the network only when it changed).

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::InvalidHeaderValue;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One file's body, type and content tag.
pub(crate) struct StaticFile {
    body: Bytes,
    pub(crate) content_type: &'static str,
    etag: HeaderValue,
}

impl StaticFile {
    /// The file, tagged by its length and content.
    pub(crate) fn new(
        body: Vec<u8>,
        content_type: &'static str,
    ) -> Result<Self, InvalidHeaderValue> {
        let etag = HeaderValue::from_str(&format!("W/\"{:x}-{:x}\"", body.len(), fnv1a(&body)))?;
        Ok(StaticFile {
            body: body.into(),
            content_type,
            etag,
        })
    }

    /// The answer to `req` (a GET or HEAD): 304 when its `If-None-Match` names this
    /// version, else the body. hyper leaves the body out of a HEAD answer itself.
    pub(crate) fn answer(&self, req: &Request) -> Response {
        let fresh = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .is_some_and(|tag| tag == self.etag);
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = Response::new(Body::from(self.body.clone()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
            response
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=0"),
        );
        response
    }
}

/// Whether `req` may read a file (GET or HEAD).
pub(crate) fn is_read(req: &Request) -> bool {
    req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD
}

/// A plain-text 404 saying what is missing.
pub(crate) fn not_found(message: impl Into<String>) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

/// 32-bit FNV-1a: a content tag for the ETag (not a security measure).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}
