//! Projects of a tenant (see `vantage_domain::project`): created and deleted through the
//! `projects-<tenant>` registry, and checked before anything is put in one.

use vantage_domain::DomainError;
use vantage_domain::project::{ProjectCommand, ProjectId, Projects};
use vantage_domain::tenant::TenantId;

use crate::streams::projects_stream;
use crate::{AppError, CommandContext, Services};

impl Services {
    /// CreateProject in the context's tenant.
    pub async fn create_project(
        &self,
        context: &CommandContext,
        project: ProjectId,
        name: String,
    ) -> Result<Result<(), DomainError>, AppError> {
        self.command_projects(context, ProjectCommand::Create { project, name })
            .await
    }

    /// DeleteProject in the context's tenant (the caller has checked that nothing acts in its
    /// name any more: no schedule, no webhook).
    pub async fn delete_project(
        &self,
        context: &CommandContext,
        project: ProjectId,
    ) -> Result<Result<(), DomainError>, AppError> {
        self.command_projects(context, ProjectCommand::Delete { project })
            .await
    }

    async fn command_projects(
        &self,
        context: &CommandContext,
        command: ProjectCommand,
    ) -> Result<Result<(), DomainError>, AppError> {
        Ok(self
            .pipeline
            .execute::<Projects>(&projects_stream(&context.tenant), context, command)
            .await?
            .map(|_| ()))
    }

    /// The projects of `tenant`.
    pub async fn projects(&self, tenant: &TenantId) -> Result<Projects, AppError> {
        Ok(self
            .pipeline
            .load::<Projects>(&projects_stream(tenant))
            .await?
            .state)
    }

    /// Refuses `project` unless it exists in `tenant` now.
    pub(crate) async fn vet_project(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<Result<(), DomainError>, AppError> {
        if project.is_default() || self.projects(tenant).await?.exists(project) {
            Ok(Ok(()))
        } else {
            Ok(Err(DomainError::Invalid {
                field: "project",
                reason: format!("tenant {tenant} has no project {project}"),
            }))
        }
    }
}
