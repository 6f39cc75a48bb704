//! Request extractors whose rejections are our error shape.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use socketioxide::adapter::Adapter;
use validator::Validate;

use crate::auth::{Principal, bearer_from_headers};
use crate::domain::input::decode;
use crate::error::AppError;
use crate::state::AppState;

/// A path id: a UUID, else 400 `id: not a UUID` (every route's rule, PROTOCOL §6).
pub fn parse_id(raw: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(raw).map_err(|_| AppError::bad_request("id: not a UUID"))
}

/// The caller, from `Authorization: Bearer …`; 401 otherwise.
#[derive(Debug)]
pub struct Authenticated(pub Principal);

impl<A: Adapter> FromRequestParts<AppState<A>> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<A>) -> Result<Self, AppError> {
        // Verified once already by the REST rate limit, in front of every /api route.
        if let Some(principal) = parts.extensions.get::<Principal>().cloned() {
            return Ok(Authenticated(principal));
        }
        let token = bearer_from_headers(&parts.headers).ok_or(AppError::Unauthenticated)?;
        state.verifier.verify(token).map(Authenticated)
    }
}

/// A caller with role `service` or `admin`; 403 otherwise (checked before the body).
#[derive(Debug)]
pub struct ServiceCaller(pub Principal);

impl<A: Adapter> FromRequestParts<AppState<A>> for ServiceCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<A>) -> Result<Self, AppError> {
        let Authenticated(me) = Authenticated::from_request_parts(parts, state).await?;
        if me.is_service_or_admin() {
            Ok(ServiceCaller(me))
        } else {
            Err(AppError::forbidden(
                "only service or admin tokens may call this route",
            ))
        }
    }
}

/// A JSON body parsed but not yet decoded, for routes that authorize against the path
/// first and decode after ([`JsonBody::decode`]), so a caller without rights learns
/// nothing from validation errors.
#[derive(Debug)]
pub struct JsonBody(pub serde_json::Value);

impl JsonBody {
    /// Decodes and validates like [`ApiJson`].
    pub fn decode<T: DeserializeOwned + Validate>(self) -> Result<T, AppError> {
        decode(self.0)
    }
}

impl<A: Adapter> FromRequest<AppState<A>> for JsonBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState<A>) -> Result<Self, AppError> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::PayloadTooLarge
                } else {
                    AppError::bad_request(rejection.body_text())
                }
            })?;
        Ok(JsonBody(value))
    }
}

/// A JSON body decoded and validated like socket payloads (errors name the field).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<A: Adapter, T> FromRequest<AppState<A>> for ApiJson<T>
where
    T: DeserializeOwned + Validate,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState<A>) -> Result<Self, AppError> {
        JsonBody::from_request(req, state)
            .await?
            .decode()
            .map(ApiJson)
    }
}

/// Query parameters, to be read as a socket payload would be ([`ApiQuery::object`]), so
/// a REST twin validates its query with the socket event's own rules and messages.
#[derive(Debug)]
pub struct ApiQuery(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(pairs)| ApiQuery(pairs))
            .map_err(|rejection| AppError::bad_request(format!("query: {}", rejection.body_text())))
    }
}

impl ApiQuery {
    /// The parameters as a JSON object under the payload's field names: `names` maps a
    /// query name to its field (unknown names are ignored, as unknown payload fields
    /// are). `true`/`false` and integers become JSON booleans and numbers. A field in
    /// `lists` is an array: the name repeated, or values separated by commas.
    pub fn object(&self, names: &[(&str, &str)], lists: &[&str]) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        for (name, raw) in &self.0 {
            let Some((_, field)) = names.iter().find(|(n, _)| n == name) else {
                continue;
            };
            if lists.contains(field) {
                let entry = object
                    .entry((*field).to_owned())
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                if let serde_json::Value::Array(items) = entry {
                    items.extend(
                        raw.split(',')
                            .filter(|v| !v.is_empty())
                            .map(|v| serde_json::Value::String(v.to_owned())),
                    );
                }
            } else {
                object.insert((*field).to_owned(), scalar(raw));
            }
        }
        serde_json::Value::Object(object)
    }

    /// [`Self::object`], decoded and validated like the socket payload `T`.
    pub fn decode<T: DeserializeOwned + Validate>(
        &self,
        names: &[(&str, &str)],
        lists: &[&str],
    ) -> Result<T, AppError> {
        decode(self.object(names, lists))
    }
}

fn scalar(raw: &str) -> serde_json::Value {
    match raw {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        _ => raw
            .parse::<i64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| serde_json::Value::String(raw.to_owned())),
    }
}
