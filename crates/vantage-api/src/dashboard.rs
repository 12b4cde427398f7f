//! The dashboard: tenant (or project) totals, trends per day, and the command center — a health
//! score, the top priorities and what happened in a period.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_domain::project::ProjectId;
use vantage_projections::model::TrendDoc;
use vantage_projections::query::{CommandCenter, Stats};

use crate::AppState;
use crate::auth::{Authorized, project_scope};
use crate::domains::domain_name;
use crate::error::ApiError;
use crate::extract::{QueryParams, invalid_field};

/// Query of `GET /api/v1/dashboard/stats` and `GET /api/v1/notifications/unread-count`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// One project's; the whole tenant's without (a key limited to one project: its own).
    pub project: Option<String>,
}

/// `GET /api/v1/dashboard/stats`: the tenant's totals, or a project's.
pub(crate) async fn stats(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<StatsQuery>,
) -> Result<Json<Stats>, ApiError> {
    let principal = caller.principal();
    let project = project_scope(principal, query.project.as_deref())?;
    let stats = state
        .read
        .stats(
            principal.tenant.as_str(),
            project.as_ref().map(ProjectId::as_str),
        )
        .await?;
    Ok(Json(stats))
}

/// Most days one trends request covers.
const MAX_TREND_DAYS: u32 = 366;

/// Query of `GET /api/v1/dashboard/trends`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrendsQuery {
    /// One domain's days; the whole tenant's without.
    pub domain: Option<String>,
    /// One project's scans only (a key limited to one project: its own).
    pub project: Option<String>,
    /// How many days back from today (default 30, at most 366).
    #[schemars(range(min = 1, max = 366))]
    pub days: Option<u32>,
}

/// Days of the tenant, or of one domain.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Trends {
    pub domain: Option<String>,
    /// The first day covered (`YYYY-MM-DD`, UTC).
    pub since: String,
    pub items: Vec<TrendDoc>,
}

/// `GET /api/v1/dashboard/trends`: per day, oldest first: scans, score and counts by severity.
pub(crate) async fn trends(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<TrendsQuery>,
) -> Result<Json<Trends>, ApiError> {
    let principal = caller.principal();
    let project = project_scope(principal, query.project.as_deref())?;
    let days = match query.days {
        None => 30,
        Some(d) if (1..=MAX_TREND_DAYS).contains(&d) => d,
        Some(_) => {
            return Err(invalid_field(
                "days",
                format!("must be between 1 and {MAX_TREND_DAYS}"),
            ));
        }
    };
    let today = state.services.pipeline.clock().now();
    let since = (today - chrono::Duration::days(i64::from(days) - 1))
        .format("%Y-%m-%d")
        .to_string();
    let domain = query.domain.as_deref().map(domain_name);
    let items = state
        .read
        .trends(
            principal.tenant.as_str(),
            project.as_ref().map(ProjectId::as_str),
            domain.as_deref(),
            &since,
        )
        .await?;
    Ok(Json(Trends {
        domain,
        since,
        items,
    }))
}

/// Query of `GET /api/v1/dashboard/command-center`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandCenterQuery {
    /// Start of the period: an RFC 3339 time or a date (midnight UTC) [default: seven days before
    /// `date_to`].
    pub date_from: Option<String>,
    /// End of the period, exclusive: an RFC 3339 time or a date (midnight UTC) [default: now,
    /// rounded up to the whole second].
    pub date_to: Option<String>,
    /// One project's (a finding counts in the project of the latest scan that saw it); a key
    /// limited to one project: its own.
    pub project: Option<String>,
}

/// The longest period a command center covers.
const MAX_PERIOD_DAYS: i64 = 366;

/// The first whole second after `now` (`now` itself if it is one): the default end of a period,
/// so that the requests of one second ask the same question and share its answer.
fn next_whole_second(now: DateTime<Utc>) -> DateTime<Utc> {
    let whole = now.timestamp() + i64::from(now.timestamp_subsec_nanos() > 0);
    DateTime::from_timestamp(whole, 0).unwrap_or(now)
}

/// An RFC 3339 time, or a date meaning its midnight UTC.
fn moment(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    vantage_projections::query::parse_moment(raw)
        .ok_or_else(|| invalid_field(field, "must be an RFC 3339 time or a YYYY-MM-DD date"))
}

/// `GET /api/v1/dashboard/command-center`: health score and the five top priorities now, and what
/// happened between `date_from` and `date_to` (the last seven days by default).
pub(crate) async fn command_center(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<CommandCenterQuery>,
) -> Result<Json<CommandCenter>, ApiError> {
    let principal = caller.principal();
    let project = project_scope(principal, query.project.as_deref())?;
    let date_to = match &query.date_to {
        Some(raw) => moment("date_to", raw)?,
        None => next_whole_second(state.services.pipeline.clock().now()),
    };
    let date_from = match &query.date_from {
        Some(raw) => moment("date_from", raw)?,
        None => date_to - chrono::Duration::days(7),
    };
    if date_from >= date_to {
        return Err(invalid_field("date_from", "must be before date_to"));
    }
    if date_to - date_from > chrono::Duration::days(MAX_PERIOD_DAYS) {
        return Err(invalid_field(
            "date_from",
            format!("the period is at most {MAX_PERIOD_DAYS} days"),
        ));
    }
    let mut center = state
        .read
        .command_center(
            principal.tenant.as_str(),
            project.as_ref().map(ProjectId::as_str),
            date_from,
            date_to,
        )
        .await?;
    let mut opened = Vec::with_capacity(center.top_priorities.len());
    for doc in center.top_priorities {
        opened.push(crate::triage::note_opened(&state, doc).await?);
    }
    center.top_priorities = opened;
    Ok(Json(center))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_ends_at_the_next_whole_second() {
        let at = |raw: &str| DateTime::parse_from_rfc3339(raw).unwrap().to_utc();
        assert_eq!(
            next_whole_second(at("2026-12-06T10:00:00.000001Z")),
            at("2026-12-06T10:00:01Z")
        );
        assert_eq!(
            next_whole_second(at("2026-12-06T10:00:00.999999Z")),
            at("2026-12-06T10:00:01Z")
        );
        assert_eq!(
            next_whole_second(at("2026-12-06T10:00:00Z")),
            at("2026-12-06T10:00:00Z")
        );
    }
}
