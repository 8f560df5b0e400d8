//! The OpenAPI document of every route (`GET /api/openapi.json`): the admin API, the operator
//! page, the webhook, health and metrics. Kept apart so that no handler module imports another
//! for it.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use super::error::{ApiError, ErrorBody};
use super::{admin, audit, health, metrics, operator, webhook};
use crate::domain::{ChangeId, KnvbId};

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // The read-only token (`admin.read_token`), also a bearer token: member status only.
        components.add_security_scheme(
            "read_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The read-only token: opens /api/member-status and nothing else",
                    ))
                    .build(),
            ),
        );
        // The operator page's session cookie, set by `POST /login`.
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(operator::SESSION_COOKIE))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rondo-reverse-sync",
        description = "Pushes corrections made in Rondo Club back into Sportlink Club: webhook, admin API, operator page, health and metrics."
    ),
    paths(
        admin::replay_delivery,
        admin::redetect_member,
        admin::requeue_change,
        admin::requeue_changes,
        admin::trigger_poll,
        admin::resume_executor,
        admin::list_changes,
        admin::get_member,
        admin::list_conflicts,
        admin::list_runs,
        admin::get_status,
        admin::forward_sync_report,
        admin::history::history,
        admin::member_status::member_status,
        admin::member_status::attention,
        openapi_json,
        metrics::scrape,
        webhook::receive,
        health::healthz,
        health::readyz,
        operator::page,
        operator::login,
        operator::logout,
        operator::ui_requeue,
        operator::ui_resume,
        operator::history,
        operator::member,
        operator::confirm_requeue,
        operator::ui_requeue_filter,
    ),
    components(schemas(ErrorBody, ChangeId, KnvbId)),
    modifiers(&BearerAuth),
    tags(
        (name = "admin", description = "Admin API (bearer token)"),
        (name = "member status", description = "Read-only: what became of a member's edits (the read-only token or the admin token)"),
        (name = "operator", description = "Operator page (HTML; token or login cookie)"),
        (name = "operations", description = "Health and metrics"),
        (name = "webhook", description = "Signed deliveries from Rondo Club"),
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "admin",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json"),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn openapi_json() -> Response {
    let mut doc = ApiDoc::openapi();
    doc.merge(<audit::AuditDoc as OpenApi>::openapi());
    match doc.to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => ApiError::Internal(Box::new(e)).into_response(),
    }
}
