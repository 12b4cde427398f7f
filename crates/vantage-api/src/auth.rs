//! Authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>`, resolved to a [`Principal`].

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use vantage_app::Principal;
use vantage_domain::project::ProjectId;
use vantage_domain::scope::Scope;

use crate::AppState;
use crate::error::ApiError;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl Authenticated {
    /// Fails with 403 unless the key has `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<&Principal, ApiError> {
        if self.0.scopes.allows(scope) {
            Ok(&self.0)
        } else {
            Err(ApiError::Forbidden {
                scope: scope.as_str(),
            })
        }
    }

    /// As [`Self::require`], for routes whose answer spans every project of the tenant (dashboards,
    /// triage, audit, key management …): a key limited to some projects is refused (403
    /// `project_limited`).
    pub fn require_tenant_wide(&self, scope: Scope) -> Result<&Principal, ApiError> {
        let principal = self.require(scope)?;
        if principal.projects.limited_to().is_some() {
            Err(ApiError::ProjectLimited)
        } else {
            Ok(principal)
        }
    }
}

/// What an operation of the route table asks of its caller; the router enforces it before the
/// handler runs ([`authorize`]), so handlers never check scopes themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Requirement {
    /// The scope the key needs (`None`: any valid key).
    pub scope: Option<Scope>,
    /// The answer spans every project of the tenant: a key limited to some projects is refused.
    pub tenant_wide: bool,
    /// An `event_token` query parameter may stand in for a key; the handler checks it.
    pub event_token: bool,
}

impl Requirement {
    fn admits(&self, caller: &Authenticated) -> Result<Authorized, ApiError> {
        let principal = match self.scope {
            Some(scope) if self.tenant_wide => caller.require_tenant_wide(scope)?,
            Some(scope) => caller.require(scope)?,
            None => &caller.0,
        };
        Ok(Authorized(principal.clone()))
    }
}

/// The caller of an operation, as the router admitted it for what the route table requires.
#[derive(Debug, Clone)]
pub struct Authorized(Principal);

impl Authorized {
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Authorized>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Option<Self>, ApiError> {
        Ok(parts.extensions.get::<Authorized>().cloned())
    }
}

/// The route layer of every authenticated operation: the caller must present a valid key with what
/// `requirement` asks (401, 403), or — where the operation allows it — an event token, which its
/// handler checks. The admitted caller reaches the handler as [`Authorized`].
pub(crate) async fn authorize(
    state: AppState,
    requirement: Requirement,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // A token, where one may stand in for a key, is the handler's to check (it wins over a key).
    if requirement.event_token && has_event_token(request.uri()) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let admitted = Authenticated::from_request_parts(&mut parts, &state)
        .await
        .and_then(|caller| requirement.admits(&caller));
    match admitted {
        Ok(admitted) => {
            parts.extensions.insert(admitted);
        }
        Err(refused) => return refused.into_response(),
    }
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

fn has_event_token(uri: &axum::http::Uri) -> bool {
    uri.query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("event_token"))
    })
}

/// The command context of a request made by `principal`.
pub(crate) fn command_context(
    principal: &Principal,
    request_id: &crate::RequestId,
) -> vantage_app::CommandContext {
    vantage_app::CommandContext {
        tenant: principal.tenant.clone(),
        actor: format!("apikey:{}", principal.key_id),
        request_id: Some(request_id.0.clone()),
        correlation_id: vantage_app::new_id(),
        causation_id: None,
    }
}

/// The key a request presents: `Authorization: Bearer <key>`, else `X-API-Key: <key>`.
pub(crate) fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers.get("x-api-key")?.to_str().ok().map(str::trim)
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The rate limiter authenticated the request already (API routes).
        if let Some(proven) = parts.extensions.get::<Authenticated>() {
            return Ok(proven.clone());
        }
        let key = presented_key(&parts.headers).ok_or(ApiError::Unauthorized)?;
        state
            .services
            .authenticate(key)
            .await?
            .map(Authenticated)
            .ok_or(ApiError::Unauthorized)
    }
}

/// Which project a dashboard or the notifications answer for: the one asked for, if the caller may see it (another
/// is not found); without one, the whole tenant, or for a key limited to exactly one project that
/// project (a key limited to several must name one).
pub(crate) fn project_scope(
    principal: &vantage_app::Principal,
    asked: Option<&str>,
) -> Result<Option<ProjectId>, ApiError> {
    match (asked, principal.projects.limited_to()) {
        (Some(raw), _) => {
            let project = ProjectId::parse(raw).map_err(ApiError::from)?;
            if principal.projects.allows(project.as_str()) {
                Ok(Some(project))
            } else {
                Err(ApiError::not_found("project"))
            }
        }
        (None, None) => Ok(None),
        (None, Some(only)) if only.len() == 1 => Ok(only.iter().next().cloned()),
        (None, Some(_)) => Err(ApiError::ProjectLimited),
    }
}
