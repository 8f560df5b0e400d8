//! The one mapping from errors to HTTP answers, for every route (webhook, health, admin API,
//! operator page): JSON `{"error": "<reason>"}` with the status the variant names. A 500 tells
//! the caller nothing and is logged once, with its cause chain.

use std::error::Error as StdError;
use std::fmt::Write as _;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::ops::OperationError;
use crate::store::StoreError;

/// What a caller learns when the database cannot be used now (the log has the details).
pub const DATABASE_UNAVAILABLE: &str = "the database is not available now; see the service log";

/// A failed request, mapped to its status in one place ([`ApiError::status`]).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// The admin token is missing or wrong (answered with a `Bearer` challenge).
    #[error("missing or wrong admin token")]
    Unauthorized,
    /// A webhook whose signature or timestamp does not verify, with the reason.
    #[error("{0}")]
    Unverified(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The body did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// The body is larger than allowed; the connection is closed after the answer, as the rest
    /// of the body is never read.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    BadGateway(String),
    #[error("internal error; see the service log")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Why the request failed.
    pub error: String,
}

impl ApiError {
    pub fn internal(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::Unverified(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Logs an internal error once, with its cause chain; the caller learns nothing internal.
    pub fn log_if_internal(&self) {
        if let ApiError::Internal(source) = self {
            tracing::error!(error = %cause_chain(source.as_ref()), "request failed");
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log_if_internal();
        let status = self.status();
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"rondo-reverse-sync\""),
                );
            }
            ApiError::TooLarge(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Rejected(reason) => ApiError::Conflict(reason),
            other if other.is_unavailable() => {
                tracing::error!(error = %other, "database unavailable");
                ApiError::Unavailable(DATABASE_UNAVAILABLE.into())
            }
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<OperationError> for ApiError {
    fn from(e: OperationError) -> Self {
        match e {
            OperationError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            OperationError::NotFound(m) => ApiError::NotFound(m),
            OperationError::Busy(m) => ApiError::Conflict(m),
            OperationError::Upstream(m) => ApiError::BadGateway(m),
            OperationError::Store(s) => s.into(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}

/// `error: cause: cause…`
pub fn cause_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}
