//! Erasing the caller's tenant: `DELETE /api/v1/tenant` by an admin key. The first request (without
//! `confirm`, or with a token that is not valid any more) changes nothing and answers 428 with a
//! confirmation token for that key, valid five minutes; repeating the request with
//! `?confirm=<token>` erases the tenant (see `vantage_app::Services::erase_tenant`) and answers what
//! was destroyed. From then on no key of the tenant authenticates.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::Deserialize;
use vantage_app::{ERASURE_TOKEN_SECONDS, KeyringError, TenantHoldings};

use crate::auth::{Authorized, command_context};
use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::request_id::RequestId;
use crate::{AppState, NO_STORE};

/// Query of `DELETE /api/v1/tenant`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseTenantQuery {
    /// The `confirmation_token` of a 428 reply to the same key, within five minutes.
    #[schemars(length(min = 1, max = 200))]
    pub confirm: Option<String>,
}

/// `DELETE /api/v1/tenant`: 428 with a confirmation token, then, confirmed, 200 with what erasing
/// the tenant destroyed.
pub(crate) async fn erase_tenant(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    QueryParams(query): QueryParams<EraseTenantQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.principal();
    let checked = query.confirm.as_deref().map(|token| {
        state
            .services
            .check_erasure_token(token, &principal.tenant, principal.key_id)
    });
    if !matches!(checked, Some(Ok(()))) {
        let why = match checked {
            None => "erasing a tenant cannot be undone",
            Some(Err(KeyringError::Expired)) => "the confirmation token has expired",
            Some(_) => "the confirmation token was not issued to this key",
        };
        let fresh = state
            .services
            .erasure_token(&principal.tenant, principal.key_id);
        return Err(ApiError::ConfirmationRequired {
            detail: format!(
                "{why}: to erase tenant {} and make its notes, comments, key names and content \
                 samples unreadable for good, repeat this request with \
                 ?confirm=<confirmation_token> within {ERASURE_TOKEN_SECONDS} s",
                principal.tenant
            ),
            token: fresh.token,
            expires_at: fresh.expires_at,
        });
    }
    let tenant = principal.tenant.as_str();
    let corrupt = |what: &str| {
        tracing::error!("a read model holds an invalid {what} id");
        ApiError::Internal
    };
    let holdings = TenantHoldings {
        sampled_scans: state.primary.content_kept(tenant).await?,
        schedules: state
            .primary
            .schedules(tenant)
            .await?
            .into_iter()
            .map(|doc| doc.id.parse().map_err(|_| corrupt("schedule")))
            .collect::<Result<_, _>>()?,
        webhooks: state
            .primary
            .webhooks(tenant)
            .await?
            .into_iter()
            .map(|doc| doc.id.parse().map_err(|_| corrupt("webhook")))
            .collect::<Result<_, _>>()?,
    };
    let context = command_context(principal, &request_id);
    let erased = state.services.erase_tenant(&context, holdings).await??;
    Ok((NO_STORE, Json(erased)))
}
