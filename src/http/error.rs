//! The one mapping from errors to HTTP answers: `{"error": "<reason>"}` with the right status.
//! A 500 tells the caller nothing and is logged once, with its cause chain.

use std::error::Error as StdError;
use std::fmt::Write as _;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub enum ApiError {
    /// 4xx/503 with a reason that is safe to show.
    Client { status: StatusCode, reason: String },
    /// Anything we did not expect; the cause is logged, never shown.
    Internal(Box<dyn StdError + Send + Sync>),
}

impl ApiError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self::Client {
            status,
            reason: reason.into(),
        }
    }

    pub fn internal(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            // The rest of an oversized body is never read, so the connection cannot carry another
            // request: say so, and hyper closes it after the answer.
            Self::Client { status, reason } if status == StatusCode::PAYLOAD_TOO_LARGE => (
                status,
                [(header::CONNECTION, "close")],
                Json(json!({ "error": reason })),
            )
                .into_response(),
            Self::Client { status, reason } => {
                (status, Json(json!({ "error": reason }))).into_response()
            }
            Self::Internal(error) => {
                tracing::error!(error = %cause_chain(error.as_ref()), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({ "error": "internal error; see the service log" })),
                )
                    .into_response()
            }
        }
    }
}
