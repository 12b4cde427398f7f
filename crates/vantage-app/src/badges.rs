//! The trust badge opt-in: one stream per domain of a tenant (`badge-<tenant>-<domain>`), named by
//! the tenant so one tenant can never switch another's badge.

use vantage_domain::DomainError;
use vantage_domain::badge::{Badge, SetBadge, badge_domain};

use crate::Services;
use crate::pipeline::{AppError, CommandContext};
use crate::streams::badge_stream;

impl Services {
    /// Shows (or stops showing) the latest grade of one of the context tenant's domains on the
    /// public badge; returns the normalised domain.
    pub async fn set_badge(
        &self,
        context: &CommandContext,
        domain: &str,
        enabled: bool,
    ) -> Result<Result<String, DomainError>, AppError> {
        let domain = match badge_domain(domain) {
            Ok(domain) => domain,
            Err(refused) => return Ok(Err(refused)),
        };
        let stream = badge_stream(&context.tenant, &domain);
        let command = SetBadge {
            tenant: context.tenant.clone(),
            domain: domain.clone(),
            enabled,
        };
        Ok(self
            .pipeline
            .execute::<Badge>(&stream, context, command)
            .await?
            .map(|_| domain))
    }
}
