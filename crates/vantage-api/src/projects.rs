//! Project routes (Krafter's org → project): `POST /api/v1/projects` and `DELETE
//! /api/v1/projects/{id}` by an admin key of the whole tenant, `GET /api/v1/projects` by any
//! reading key (a key limited to some projects lists only those). A project that still has
//! schedules or webhooks is not deleted (409 `project_not_empty`): they act in its name.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_domain::project::ProjectId;

use crate::AppState;
use crate::Items;
use crate::auth::{Authorized, command_context};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::request_id::RequestId;

/// The body of `POST /api/v1/projects`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({ "id": "web-shop", "name": "Web shop" }))]
pub struct CreateProjectRequest {
    /// 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit; never reused.
    pub id: String,
    /// 1-100 characters.
    pub name: String,
}

/// A project.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(example = serde_json::json!({ "id": "web-shop", "name": "Web shop" }))]
pub struct ProjectResource {
    pub id: ProjectId,
    pub name: String,
}

/// `POST /api/v1/projects`: 201.
pub(crate) async fn create_project(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    body: JsonBody<CreateProjectRequest>,
) -> Result<(StatusCode, Json<ProjectResource>), ApiError> {
    let principal = caller.principal();
    let CreateProjectRequest { id, name } = body.value;
    let project = ProjectId::parse(&id)?;
    let context = command_context(principal, &request_id);
    state
        .services
        .create_project(&context, project.clone(), name.clone())
        .await??;
    Ok((
        StatusCode::CREATED,
        Json(ProjectResource {
            id: project,
            name: name.trim().to_owned(),
        }),
    ))
}

/// `GET /api/v1/projects`: `default` first, then by id.
pub(crate) async fn list_projects(
    State(state): State<AppState>,
    caller: Authorized,
) -> Result<Json<Items<ProjectResource>>, ApiError> {
    let principal = caller.principal();
    let projects = state.services.projects(&principal.tenant).await?;
    let default = ProjectResource {
        id: ProjectId::default_project(),
        name: "Default project".to_owned(),
    };
    let items = std::iter::once(default)
        .chain(
            projects
                .projects
                .into_iter()
                .map(|(id, name)| ProjectResource { id, name }),
        )
        .filter(|p| principal.projects.allows(p.id.as_str()))
        .collect();
    Ok(Json(Items { items }))
}

/// `DELETE /api/v1/projects/{id}`: 204; 404 for an unknown project, 409 while it has schedules or
/// webhooks, 422 for `default`.
pub(crate) async fn delete_project(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.principal();
    let project = ProjectId::parse(&id).map_err(|_| ApiError::not_found("project"))?;
    let tenant = principal.tenant.as_str();
    let schedules = state.primary.schedules(tenant).await?;
    let webhooks = state.primary.webhooks(tenant).await?;
    let busy = schedules
        .iter()
        .filter(|s| s.schedule.spec.project == project)
        .count();
    let hooks = webhooks
        .iter()
        .filter(|w| w.project == project.as_str())
        .count();
    if busy + hooks > 0 {
        return Err(ApiError::Conflict {
            code: "project_not_empty",
            detail: format!(
                "project {project} still has {busy} schedule(s) and {hooks} webhook(s); delete \
                 them first"
            ),
        });
    }
    let context = command_context(principal, &request_id);
    state.services.delete_project(&context, project).await??;
    Ok(StatusCode::NO_CONTENT)
}
