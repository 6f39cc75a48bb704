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

/// The caller, from `Authorization: Bearer …`; 401 otherwise.
#[derive(Debug)]
pub struct Authenticated(pub Principal);

impl<A: Adapter> FromRequestParts<AppState<A>> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<A>) -> Result<Self, AppError> {
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
