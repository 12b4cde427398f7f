//! Every read the API and CLI make, each an index lookup on a read model (none reads the log).
//!
//! **Time travel.** Fingerprint state, findings (with their triage), the audit trail and a domain's
//! latest scan answer `as_of` from kept history rows: fingerprint versions (one row per change, keyed
//! by log position), domain history (one row per completed scan) and the audit trail itself. An
//! `as_of` time means "every event recorded at or before it": it resolves to the last audited
//! position recorded by then (worker progress between audited events changes none of these models).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use vantage_domain::content::ExpiredContent;
use vantage_domain::ids::ScanId;
use vantage_domain::scan::{ScanSpec, ScanStatus};
use vantage_domain::tenant::TenantId;
use vantage_domain::triage::{DueReopen, Fingerprint, TriageState};
use vantage_rules::{Severity, SeverityCounts};

use crate::ProjectionError;
use crate::cache::CheckpointCache;
use crate::db::{Cell, ReadDb};
use crate::model::*;

/// An RFC 3339 time, or a `YYYY-MM-DD` date meaning its midnight UTC (the bounds of periods).
pub fn parse_moment(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        return Some(time.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// "As it stood then": a log position or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Position(u64),
    Time(DateTime<Utc>),
}

impl AsOf {
    /// Parses `as_of`: digits are a log position, anything else an RFC 3339 time.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
            return raw
                .parse()
                .map(Self::Position)
                .map_err(|_| format!("as_of position {raw} is too large"));
        }
        DateTime::parse_from_rfc3339(raw)
            .map(|t| Self::Time(t.with_timezone(&Utc)))
            .map_err(|_| format!("as_of must be a log position or an RFC 3339 time, not {raw:?}"))
    }
}

/// Filters of a findings list.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub severity: Option<Severity>,
    pub category: Option<String>,
    pub compliance: Option<String>,
    pub triage: Option<TriageState>,
}

impl FindingFilter {
    /// Whether `doc` passes the filters that do not depend on triage.
    fn admits(&self, doc: &FindingDoc) -> bool {
        let f = &doc.finding;
        self.severity.is_none_or(|s| s == f.severity)
            && self
                .category
                .as_deref()
                .is_none_or(|c| wire_name(&f.category) == c)
            && self
                .compliance
                .as_deref()
                .is_none_or(|c| f.compliance.iter().any(|id| id.starts_with(c)))
    }

    /// Whether `view` passes every filter.
    fn admits_view(&self, view: &FindingView) -> bool {
        self.admits(&view.finding) && self.triage.is_none_or(|t| t == view.triage)
    }
}

/// What a [`ReadDb`] keeps of the scans read models until the scans projector's checkpoint moves
/// (see the `cache` module).
#[derive(Debug)]
pub(crate) struct Cached {
    /// By (tenant, scan id).
    scans: CheckpointCache<(String, String), ScanDoc>,
    /// Every finding of a completed scan with its current triage, by (tenant, scan id).
    findings: CheckpointCache<(String, String), Vec<FindingView>>,
    command_centers: CheckpointCache<CommandCenterKey, CommandCenter>,
}

/// (tenant, project, date_from, date_to) of a command center.
type CommandCenterKey = (String, Option<String>, DateTime<Utc>, DateTime<Utc>);

impl Default for Cached {
    fn default() -> Self {
        Self {
            scans: CheckpointCache::new(1024),
            findings: CheckpointCache::new(256),
            command_centers: CheckpointCache::new(64),
        }
    }
}

/// A finding with its fingerprint's current (or `as_of`) triage.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FindingView {
    #[serde(flatten)]
    pub finding: FindingDoc,
    pub triage: TriageState,
    pub first_seen_at: Option<DateTime<Utc>>,
}

/// A scan as the read model held it at the scans projector's checkpoint `at`, read once per
/// request: what else the request reads of the scan ([`ReadDb::findings_of`]) is asked at the same
/// checkpoint instead of reading it again, and answers consistently with it.
#[derive(Debug, Clone)]
pub struct ScanAt {
    pub doc: ScanDoc,
    at: u64,
}

/// Filters of a scan list.
#[derive(Debug, Clone, Default)]
pub struct ScanFilter {
    pub status: Option<String>,
    pub domain: Option<String>,
    pub trigger: Option<String>,
    /// Only scans of these projects (`None`: every project).
    pub projects: Option<Vec<String>>,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Two scans of one target compared.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Comparison {
    pub scan_a: String,
    pub scan_b: String,
    /// In b, not in a.
    pub new: Vec<FindingDoc>,
    /// In a, not in b.
    pub fixed: Vec<FindingDoc>,
    pub unchanged: Vec<FindingDoc>,
}

/// The command center: a health score and what to fix first.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CommandCenter {
    /// 100 minus the penalty of unresolved findings (25 per critical, 10 per high, 4 per medium,
    /// 1 per low), the penalty capped at 95. Now, whatever the period.
    pub health_score: u32,
    pub unresolved: SeverityCounts,
    /// The five unresolved fingerprints with the highest priority score, oldest first among equals
    /// (now: an old critical finding stays a top priority whatever the period).
    pub top_priorities: Vec<FingerprintDoc>,
    /// The period `period` describes, `[date_from, date_to)`.
    pub date_from: DateTime<Utc>,
    pub date_to: DateTime<Utc>,
    pub period: PeriodActivity,
}

/// What happened in a command center's period.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PeriodActivity {
    /// Scans completed on the days the period touches (by day, UTC).
    pub scans_completed: u32,
    /// Findings first seen in the period, by severity.
    pub new_findings: SeverityCounts,
}

/// Dashboard totals.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Stats {
    #[serde(flatten)]
    pub totals: TenantStatsDoc,
    pub unread_notifications: i64,
}

/// Narrows a query to one project's rows when `project` is given (its value the last parameter).
fn and_project(sql: &mut String, params: &mut Vec<Cell>, project: Option<&str>) {
    if let Some(project) = project {
        params.push(project.into());
        sql.push_str(&format!(" AND project = ${}", params.len()));
    }
}

fn position_cell(p: u64) -> Cell {
    p.into()
}

/// A scan that had not ended, as a dispatcher needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnfinishedScan {
    /// The log position of its request.
    pub requested_position: u64,
    pub scan_id: ScanId,
    pub tenant: TenantId,
    pub spec: ScanSpec,
}

impl ReadDb {
    /// The log position an `as_of` stands for.
    pub async fn resolve_as_of(&self, tenant: &str, as_of: AsOf) -> Result<u64, ProjectionError> {
        match as_of {
            AsOf::Position(p) => Ok(p),
            AsOf::Time(t) => {
                let p = self
                    .scalar(
                        "SELECT MAX(position) FROM rm_audit WHERE tenant = $1 AND recorded_us <= $2",
                        &[tenant.into(), micros(t).into()],
                    )
                    .await?;
                Ok(u64::try_from(p).unwrap_or(0))
            }
        }
    }

    /// The scans projection's checkpoint and the scans of every tenant that had not ended by it,
    /// in the order they were requested: where a scan dispatcher picks up at start instead of reading
    /// the log from its beginning. The checkpoint is read first, so a scan the projection records
    /// meanwhile is also in the log after it (dispatchers name each scan once).
    pub async fn unfinished_scans(&self) -> Result<(u64, Vec<UnfinishedScan>), ProjectionError> {
        let position = self.checkpoint("scans").await?;
        let unfinished: Vec<Cell> = [
            ScanStatus::Queued,
            ScanStatus::Running,
            ScanStatus::Finalizing,
        ]
        .iter()
        .map(|status| wire_name(status).into())
        .collect();
        let docs: Vec<ScanDoc> = self
            .docs(
                "SELECT doc FROM rm_scans WHERE status IN ($1, $2, $3)",
                &unfinished,
            )
            .await?;
        let mut scans = docs
            .into_iter()
            .map(|doc| {
                let corrupt = |what: &str| {
                    ProjectionError::Corrupt(format!("rm_scans holds an invalid {what}"))
                };
                Ok(UnfinishedScan {
                    requested_position: doc.requested_position,
                    scan_id: doc.id.parse().map_err(|_| corrupt("scan id"))?,
                    tenant: TenantId::parse(&doc.tenant).map_err(|_| corrupt("tenant"))?,
                    spec: doc.spec,
                })
            })
            .collect::<Result<Vec<_>, ProjectionError>>()?;
        scans.sort_by_key(|scan| scan.requested_position);
        Ok((position, scans))
    }

    /// The scans projector's checkpoint, which the answers it keeps are valid at.
    async fn scans_checkpoint(&self) -> Result<u64, ProjectionError> {
        self.checkpoint(crate::scans::NAME).await
    }

    /// One scan of `tenant`.
    pub async fn scan(&self, tenant: &str, id: &str) -> Result<Option<ScanDoc>, ProjectionError> {
        Ok(self.scan_at(tenant, id).await?.map(|scan| scan.doc))
    }

    /// One scan of `tenant`, with the checkpoint it was read at (for [`ReadDb::findings_of`]).
    pub async fn scan_at(&self, tenant: &str, id: &str) -> Result<Option<ScanAt>, ProjectionError> {
        let at = self.scans_checkpoint().await?;
        let key = (tenant.to_owned(), id.to_owned());
        if let Some(doc) = self.cached.scans.get(&key, at) {
            let doc = ScanDoc::clone(&doc);
            return Ok(Some(ScanAt { doc, at }));
        }
        let doc = self
            .get::<ScanDoc>(&[id.into()])
            .await?
            .filter(|s| s.tenant == tenant);
        if let Some(doc) = &doc {
            self.cached.scans.insert(key, at, Arc::new(doc.clone()));
        }
        Ok(doc.map(|doc| ScanAt { doc, at }))
    }

    /// Scans of `tenant`, newest first, `limit` per page.
    pub async fn scans(
        &self,
        tenant: &str,
        filter: &ScanFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<ScanDoc>, ProjectionError> {
        let mut sql =
            String::from("SELECT doc, created_us, scan_id FROM rm_scans WHERE tenant = $1");
        let mut params: Vec<Cell> = vec![tenant.into()];
        let mut push = |sql: &mut String, column: &str, value: &str| {
            params.push(value.into());
            sql.push_str(&format!(" AND {column} = ${}", params.len()));
        };
        if let Some(status) = &filter.status {
            push(&mut sql, "status", status);
        }
        if let Some(domain) = &filter.domain {
            push(&mut sql, "domain", domain);
        }
        if let Some(trigger) = &filter.trigger {
            push(&mut sql, "trigger_kind", trigger);
        }
        if let Some(projects) = &filter.projects {
            if projects.is_empty() {
                return Ok(Page {
                    items: Vec::new(),
                    next_cursor: None,
                });
            }
            let mut placeholders = Vec::with_capacity(projects.len());
            for project in projects {
                params.push(project.as_str().into());
                placeholders.push(format!("${}", params.len()));
            }
            sql.push_str(&format!(" AND project IN ({})", placeholders.join(", ")));
        }
        if let Some(cursor) = cursor {
            let (us, id) = decode_cursor(cursor)?;
            params.push(us.into());
            params.push(id.into());
            sql.push_str(&format!(
                " AND (created_us < ${0} OR (created_us = ${0} AND scan_id < ${1}))",
                params.len() - 1,
                params.len()
            ));
        }
        sql.push_str(&format!(
            " ORDER BY created_us DESC, scan_id DESC LIMIT {}",
            limit + 1
        ));
        let mut items: Vec<ScanDoc> = self.docs(&sql, &params).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items
                .last()
                .map(|s| encode_cursor(micros(s.created_at), &s.id))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Create-or-reuse: the newest completed scan of `tenant` with the same target and options as
    /// `spec` (ports, paths, profile, vantage point; the trigger is not an option) that finished at or
    /// after `not_before`. Looks at the domain's 50 newest completed scans at most.
    pub async fn reusable_scan(
        &self,
        tenant: &str,
        spec: &ScanSpec,
        not_before: DateTime<Utc>,
    ) -> Result<Option<ScanDoc>, ProjectionError> {
        let recent: Vec<ScanDoc> = self
            .docs(
                "SELECT doc FROM rm_scans WHERE tenant = $1 AND domain = $2 AND status = $3 \
                 ORDER BY created_us DESC LIMIT 50",
                &[
                    tenant.into(),
                    spec.target.host().into(),
                    ScanStatus::Completed.as_str().into(),
                ],
            )
            .await?;
        Ok(recent.into_iter().find(|scan| {
            scan.spec.target == spec.target
                && scan.spec.ports == spec.ports
                && scan.spec.paths == spec.paths
                && scan.spec.profile == spec.profile
                && scan.spec.vantage_point == spec.vantage_point
                && scan.spec.project == spec.project
                && scan.finished_at.is_some_and(|at| at >= not_before)
        }))
    }

    /// A fingerprint's state now, or as it stood at `as_of`.
    pub async fn fingerprint(
        &self,
        tenant: &str,
        fingerprint: &str,
        as_of: Option<AsOf>,
    ) -> Result<Option<FingerprintDoc>, ProjectionError> {
        let position = match as_of {
            Some(as_of) => Some(self.resolve_as_of(tenant, as_of).await?),
            None => None,
        };
        self.fingerprint_at(tenant, fingerprint, position).await
    }

    /// The current states of some fingerprints of `tenant`, by fingerprint (one query).
    async fn fingerprints_now(
        &self,
        tenant: &str,
        fingerprints: &[&str],
    ) -> Result<HashMap<String, FingerprintDoc>, ProjectionError> {
        if fingerprints.is_empty() {
            return Ok(HashMap::new());
        }
        let placeholders: Vec<String> = (0..fingerprints.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let mut params: Vec<Cell> = vec![tenant.into()];
        params.extend(fingerprints.iter().map(|f| Cell::from(*f)));
        let docs: Vec<FingerprintDoc> = self
            .docs(
                &format!(
                    "SELECT doc FROM rm_fingerprints WHERE tenant = $1 AND fingerprint IN ({})",
                    placeholders.join(", ")
                ),
                &params,
            )
            .await?;
        Ok(docs
            .into_iter()
            .map(|doc| (doc.fingerprint.clone(), doc))
            .collect())
    }

    /// A fingerprint's state now, or as it stood at log `position`.
    async fn fingerprint_at(
        &self,
        tenant: &str,
        fingerprint: &str,
        position: Option<u64>,
    ) -> Result<Option<FingerprintDoc>, ProjectionError> {
        let Some(position) = position else {
            return self
                .get::<FingerprintDoc>(&[tenant.into(), fingerprint.into()])
                .await;
        };
        let versions: Vec<FingerprintVersion> = self
            .docs(
                "SELECT doc FROM rm_fingerprint_history WHERE tenant = $1 AND fingerprint = $2 \
                 AND position <= $3 ORDER BY position DESC LIMIT 1",
                &[tenant.into(), fingerprint.into(), position_cell(position)],
            )
            .await?;
        Ok(versions.into_iter().next().map(|v| v.state))
    }

    /// Findings of a completed scan with their triage, highest priority first; `as_of` gives the
    /// scan's findings only if it had completed by then, with the triage of then.
    pub async fn findings(
        &self,
        tenant: &str,
        scan_id: &str,
        filter: &FindingFilter,
        as_of: Option<AsOf>,
    ) -> Result<Option<Vec<FindingView>>, ProjectionError> {
        let Some(scan) = self.scan_at(tenant, scan_id).await? else {
            return Ok(None);
        };
        self.findings_of(&scan, filter, as_of).await.map(Some)
    }

    /// [`ReadDb::findings`] of a scan already read ([`ReadDb::scan_at`]), at its checkpoint.
    pub async fn findings_of(
        &self,
        scan: &ScanAt,
        filter: &FindingFilter,
        as_of: Option<AsOf>,
    ) -> Result<Vec<FindingView>, ProjectionError> {
        if as_of.is_some() {
            return self.findings_read(&scan.doc, filter, as_of).await;
        }
        // Now: every finding with its triage, kept until the projector moves, then filtered.
        let key = (scan.doc.tenant.clone(), scan.doc.id.clone());
        let all = match self.cached.findings.get(&key, scan.at) {
            Some(all) => all,
            None => {
                let unfiltered = FindingFilter::default();
                let all = Arc::new(self.findings_read(&scan.doc, &unfiltered, None).await?);
                self.cached.findings.insert(key, scan.at, Arc::clone(&all));
                all
            }
        };
        Ok(all
            .iter()
            .filter(|view| filter.admits_view(view))
            .cloned()
            .collect())
    }

    /// [`ReadDb::findings_of`] read from the tables.
    async fn findings_read(
        &self,
        scan: &ScanDoc,
        filter: &FindingFilter,
        as_of: Option<AsOf>,
    ) -> Result<Vec<FindingView>, ProjectionError> {
        let (tenant, scan_id) = (scan.tenant.as_str(), scan.id.as_str());
        // Resolved once: a time `as_of` costs a query.
        let position = match as_of {
            Some(as_of) => Some(self.resolve_as_of(tenant, as_of).await?),
            None => None,
        };
        if let Some(position) = position
            && scan.completed_position.is_none_or(|p| p > position)
        {
            return Ok(Vec::new());
        }
        let docs: Vec<FindingDoc> = self
            .docs(
                "SELECT doc FROM rm_findings WHERE scan_id = $1 AND tenant = $2",
                &[scan_id.into(), tenant.into()],
            )
            .await?;
        self.triaged_at(tenant, docs, filter, position).await
    }

    /// `docs` — findings derived anywhere, e.g. a scan regraded under another ruleset — filtered by
    /// `filter`, each with its fingerprint's triage (as of `as_of` when given), highest priority
    /// first.
    pub async fn triaged(
        &self,
        tenant: &str,
        docs: Vec<FindingDoc>,
        filter: &FindingFilter,
        as_of: Option<AsOf>,
    ) -> Result<Vec<FindingView>, ProjectionError> {
        let position = match as_of {
            Some(as_of) => Some(self.resolve_as_of(tenant, as_of).await?),
            None => None,
        };
        self.triaged_at(tenant, docs, filter, position).await
    }

    async fn triaged_at(
        &self,
        tenant: &str,
        docs: Vec<FindingDoc>,
        filter: &FindingFilter,
        position: Option<u64>,
    ) -> Result<Vec<FindingView>, ProjectionError> {
        let docs: Vec<FindingDoc> = docs.into_iter().filter(|doc| filter.admits(doc)).collect();
        // Current states in one query; states as of a position need one history lookup each.
        let mut states = match position {
            None => {
                let fingerprints: Vec<&str> = docs
                    .iter()
                    .map(|d| d.finding.fingerprint.as_str())
                    .collect();
                self.fingerprints_now(tenant, &fingerprints).await?
            }
            Some(_) => {
                let mut states = HashMap::with_capacity(docs.len());
                for doc in &docs {
                    let fingerprint = doc.finding.fingerprint.as_str();
                    if let Some(state) = self.fingerprint_at(tenant, fingerprint, position).await? {
                        states.insert(fingerprint.to_owned(), state);
                    }
                }
                states
            }
        };
        let mut views = Vec::with_capacity(docs.len());
        for doc in docs {
            let state = states.remove(&doc.finding.fingerprint);
            let triage = state.as_ref().map_or(TriageState::Open, |s| s.triage);
            if filter.triage.is_some_and(|t| t != triage) {
                continue;
            }
            views.push(FindingView {
                triage,
                first_seen_at: state.and_then(|s| s.first_seen_at),
                finding: doc,
            });
        }
        views.sort_by(|a, b| {
            b.finding
                .finding
                .priority
                .score
                .cmp(&a.finding.finding.priority.score)
                .then_with(|| {
                    a.finding
                        .finding
                        .fingerprint
                        .cmp(&b.finding.finding.fingerprint)
                })
        });
        Ok(views)
    }

    /// Regressions of findings triaged `fixed` waiting to be reopened, oldest first, across tenants.
    /// Scans whose content retention ended at or before `now` and whose key is not yet destroyed,
    /// soonest first.
    pub async fn content_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ExpiredContent>, ProjectionError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let docs: Vec<ContentDueDoc> = self
            .docs(
                "SELECT doc FROM rm_content_due WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2",
                &[now.timestamp().into(), limit.into()],
            )
            .await?;
        docs.into_iter()
            .map(|doc| {
                let corrupt = |what: &str| {
                    ProjectionError::Corrupt(format!("rm_content_due holds an invalid {what}"))
                };
                Ok(ExpiredContent {
                    tenant: TenantId::parse(&doc.tenant).map_err(|_| corrupt("tenant"))?,
                    scan_id: doc.scan_id.parse().map_err(|_| corrupt("scan id"))?,
                })
            })
            .collect()
    }

    /// The scans of `tenant` whose content key is still to be destroyed (erasing the tenant records
    /// why for each). The table holds only scans within their retention (at most 30 days), so it is
    /// read whole and filtered here.
    pub async fn content_kept(&self, tenant: &str) -> Result<Vec<ScanId>, ProjectionError> {
        let docs: Vec<ContentDueDoc> = self
            .docs("SELECT doc FROM rm_content_due ORDER BY expires_at", &[])
            .await?;
        docs.into_iter()
            .filter(|doc| doc.tenant == tenant)
            .map(|doc| {
                doc.scan_id.parse().map_err(|_| {
                    ProjectionError::Corrupt("rm_content_due holds an invalid scan id".into())
                })
            })
            .collect()
    }

    pub async fn reopen_due(&self, limit: usize) -> Result<Vec<DueReopen>, ProjectionError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let docs: Vec<ReopenDueDoc> = self
            .docs(
                "SELECT doc FROM rm_reopen_due ORDER BY position LIMIT $1",
                &[limit.into()],
            )
            .await?;
        docs.into_iter()
            .map(|doc| {
                let corrupt = |what: &str| {
                    ProjectionError::Corrupt(format!("rm_reopen_due holds an invalid {what}"))
                };
                Ok(DueReopen {
                    tenant: TenantId::parse(&doc.tenant).map_err(|_| corrupt("tenant"))?,
                    fingerprint: Fingerprint::parse(&doc.fingerprint)
                        .map_err(|_| corrupt("fingerprint"))?,
                    scan_id: doc.scan_id.parse().map_err(|_| corrupt("scan id"))?,
                })
            })
            .collect()
    }

    /// The diff of a completed scan against the previous scan of its target.
    pub async fn diff(
        &self,
        tenant: &str,
        scan_id: &str,
    ) -> Result<Option<DiffDoc>, ProjectionError> {
        Ok(self
            .get::<DiffDoc>(&[scan_id.into()])
            .await?
            .filter(|d| d.tenant == tenant))
    }

    /// Any two completed scans of a tenant compared by fingerprint.
    pub async fn compare(
        &self,
        tenant: &str,
        scan_a: &str,
        scan_b: &str,
    ) -> Result<Option<Comparison>, ProjectionError> {
        let (Some(a), Some(b)) = (
            self.findings(tenant, scan_a, &FindingFilter::default(), None)
                .await?,
            self.findings(tenant, scan_b, &FindingFilter::default(), None)
                .await?,
        ) else {
            return Ok(None);
        };
        let in_a: std::collections::HashSet<&str> = a
            .iter()
            .map(|f| f.finding.finding.fingerprint.as_str())
            .collect();
        let in_b: std::collections::HashSet<&str> = b
            .iter()
            .map(|f| f.finding.finding.fingerprint.as_str())
            .collect();
        let mut comparison = Comparison {
            scan_a: scan_a.to_owned(),
            scan_b: scan_b.to_owned(),
            new: Vec::new(),
            fixed: Vec::new(),
            unchanged: Vec::new(),
        };
        for f in &b {
            if in_a.contains(f.finding.finding.fingerprint.as_str()) {
                comparison.unchanged.push(f.finding.clone());
            } else {
                comparison.new.push(f.finding.clone());
            }
        }
        for f in &a {
            if !in_b.contains(f.finding.finding.fingerprint.as_str()) {
                comparison.fixed.push(f.finding.clone());
            }
        }
        Ok(Some(comparison))
    }

    /// The latest completed scan of a domain, now or as of a moment.
    pub async fn domain_latest(
        &self,
        tenant: &str,
        domain: &str,
        as_of: Option<AsOf>,
    ) -> Result<Option<DomainScanDoc>, ProjectionError> {
        let position = match as_of {
            Some(as_of) => self.resolve_as_of(tenant, as_of).await?,
            None => u64::MAX >> 1,
        };
        Ok(self
            .docs(
                "SELECT doc FROM rm_domain_history WHERE tenant = $1 AND domain = $2 \
                 AND position <= $3 ORDER BY position DESC LIMIT 1",
                &[tenant.into(), domain.into(), position_cell(position)],
            )
            .await?
            .into_iter()
            .next())
    }

    /// Completed scans of a domain, newest first.
    pub async fn domain_history(
        &self,
        tenant: &str,
        domain: &str,
        before_position: Option<u64>,
        limit: u32,
    ) -> Result<Vec<DomainScanDoc>, ProjectionError> {
        self.docs(
            &format!(
                "SELECT doc FROM rm_domain_history WHERE tenant = $1 AND domain = $2 \
                 AND position < $3 ORDER BY position DESC LIMIT {limit}"
            ),
            &[
                tenant.into(),
                domain.into(),
                position_cell(before_position.unwrap_or(u64::MAX >> 1)),
            ],
        )
        .await
    }

    /// Comments on a fingerprint, oldest first.
    pub async fn comments(
        &self,
        tenant: &str,
        fingerprint: &str,
    ) -> Result<Vec<CommentDoc>, ProjectionError> {
        self.docs(
            "SELECT doc FROM rm_comments WHERE tenant = $1 AND fingerprint = $2 ORDER BY position",
            &[tenant.into(), fingerprint.into()],
        )
        .await
    }

    /// The totals of `tenant` (project `""`) or of one of its projects; zeros before its first scan.
    async fn totals(&self, tenant: &str, project: &str) -> Result<TenantStatsDoc, ProjectionError> {
        Ok(self
            .get::<TenantStatsDoc>(&[tenant.into(), project.into()])
            .await?
            .unwrap_or_else(|| TenantStatsDoc::new(tenant, project)))
    }

    /// Notifications of `tenant` (of one of its projects when `project` is given), newest first,
    /// with `read` reflecting read-all.
    pub async fn notifications(
        &self,
        tenant: &str,
        project: Option<&str>,
        unread_only: bool,
        limit: u32,
    ) -> Result<Vec<NotificationDoc>, ProjectionError> {
        let watermark = self.totals(tenant, "").await?.notifications_read_up_to;
        let mut sql = String::from("SELECT doc FROM rm_notifications WHERE tenant = $1");
        let mut params: Vec<Cell> = vec![tenant.into()];
        if unread_only {
            params.push(position_cell(watermark));
            sql.push_str(&format!(
                " AND is_read = 0 AND position > ${}",
                params.len()
            ));
        }
        and_project(&mut sql, &mut params, project);
        sql.push_str(&format!(" ORDER BY position DESC LIMIT {limit}"));
        let mut docs: Vec<NotificationDoc> = self.docs(&sql, &params).await?;
        for doc in &mut docs {
            doc.read |= doc.position <= watermark;
        }
        Ok(docs)
    }

    /// How many notifications of `tenant` (of one of its projects when `project` is given) are
    /// unread.
    pub async fn unread_count(
        &self,
        tenant: &str,
        project: Option<&str>,
    ) -> Result<i64, ProjectionError> {
        let watermark = self.totals(tenant, "").await?.notifications_read_up_to;
        self.unread_after(tenant, project, watermark).await
    }

    /// How many notifications after the read-all `watermark` are not read one by one.
    async fn unread_after(
        &self,
        tenant: &str,
        project: Option<&str>,
        watermark: u64,
    ) -> Result<i64, ProjectionError> {
        let mut sql = String::from(
            "SELECT COUNT(*) FROM rm_notifications WHERE tenant = $1 AND is_read = 0 \
             AND position > $2",
        );
        let mut params = vec![tenant.into(), position_cell(watermark)];
        and_project(&mut sql, &mut params, project);
        self.scalar(&sql, &params).await
    }

    /// One notification of `tenant`.
    pub async fn notification(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<NotificationDoc>, ProjectionError> {
        Ok(self
            .get::<NotificationDoc>(&[id.into()])
            .await?
            .filter(|n| n.tenant == tenant))
    }

    /// Days of a domain (or of the tenant with `domain = None`), oldest first, from `since` (day).
    pub async fn trends(
        &self,
        tenant: &str,
        project: Option<&str>,
        domain: Option<&str>,
        since: &str,
    ) -> Result<Vec<TrendDoc>, ProjectionError> {
        self.docs(
            "SELECT doc FROM rm_trends WHERE tenant = $1 AND project = $2 AND domain = $3 \
             AND day >= $4 ORDER BY day",
            &[
                tenant.into(),
                project.unwrap_or("").into(),
                domain.unwrap_or("").into(),
                since.into(),
            ],
        )
        .await
    }

    /// The totals of `tenant`, or of one of its projects.
    pub async fn stats(
        &self,
        tenant: &str,
        project: Option<&str>,
    ) -> Result<Stats, ProjectionError> {
        let totals = self.totals(tenant, project.unwrap_or("")).await?;
        // Read-all is kept with the whole tenant's totals.
        let watermark = match project {
            None => totals.notifications_read_up_to,
            Some(_) => self.totals(tenant, "").await?.notifications_read_up_to,
        };
        Ok(Stats {
            unread_notifications: self.unread_after(tenant, project, watermark).await?,
            totals,
        })
    }

    /// The command center of `tenant`, or of one of its projects (a finding counts in the project
    /// of the latest scan that saw it).
    pub async fn command_center(
        &self,
        tenant: &str,
        project: Option<&str>,
        date_from: DateTime<Utc>,
        date_to: DateTime<Utc>,
    ) -> Result<CommandCenter, ProjectionError> {
        let at = self.scans_checkpoint().await?;
        let key = (
            tenant.to_owned(),
            project.map(str::to_owned),
            date_from,
            date_to,
        );
        if let Some(center) = self.cached.command_centers.get(&key, at) {
            return Ok(CommandCenter::clone(&center));
        }
        let center = self
            .command_center_read(tenant, project, date_from, date_to)
            .await?;
        self.cached
            .command_centers
            .insert(key, at, Arc::new(center.clone()));
        Ok(center)
    }

    /// [`ReadDb::command_center`] read from the tables.
    async fn command_center_read(
        &self,
        tenant: &str,
        project: Option<&str>,
        date_from: DateTime<Utc>,
        date_to: DateTime<Utc>,
    ) -> Result<CommandCenter, ProjectionError> {
        let scope = project.unwrap_or("");
        let stats = self.totals(tenant, scope).await?;
        let only = |sql: &str, mut params: Vec<Cell>| {
            let mut sql = sql.to_owned();
            and_project(&mut sql, &mut params, project);
            (sql, params)
        };
        let (sql, params) = only(
            "SELECT doc FROM rm_fingerprints WHERE tenant = $1 AND unresolved = 1",
            vec![tenant.into()],
        );
        let top_priorities = self
            .docs(
                &format!("{sql} ORDER BY priority DESC, first_seen_us ASC LIMIT 5"),
                &params,
            )
            .await?;
        let days: Vec<TrendDoc> = self
            .docs(
                "SELECT doc FROM rm_trends WHERE tenant = $1 AND project = $2 AND domain = '' \
                 AND day >= $3 AND day <= $4 ORDER BY day",
                &[
                    tenant.into(),
                    scope.into(),
                    date_from.format("%Y-%m-%d").to_string().into(),
                    date_to.format("%Y-%m-%d").to_string().into(),
                ],
            )
            .await?;
        let (sql, params) = only(
            "SELECT severity, COUNT(*) FROM rm_fingerprints WHERE tenant = $1 \
             AND first_seen_us >= $2 AND first_seen_us < $3",
            vec![
                tenant.into(),
                micros(date_from).into(),
                micros(date_to).into(),
            ],
        );
        let mut new_findings = SeverityCounts::default();
        for (name, count) in self
            .counts(&format!("{sql} GROUP BY severity"), &params)
            .await?
        {
            if let Ok(severity) = serde_json::from_value::<Severity>(name.into()) {
                new_findings.add(severity, count);
            }
        }
        Ok(CommandCenter {
            health_score: stats.unresolved.score(),
            unresolved: stats.unresolved,
            top_priorities,
            date_from,
            date_to,
            period: PeriodActivity {
                scans_completed: days.iter().map(|d| d.scans).sum(),
                new_findings,
            },
        })
    }

    /// Compliance coverage of a completed scan: every framework, or one.
    pub async fn coverage(
        &self,
        tenant: &str,
        scan_id: &str,
        framework: Option<&str>,
    ) -> Result<Vec<CoverageDoc>, ProjectionError> {
        let docs: Vec<CoverageDoc> = self
            .docs(
                "SELECT doc FROM rm_coverage WHERE scan_id = $1 AND tenant = $2 ORDER BY framework",
                &[scan_id.into(), tenant.into()],
            )
            .await?;
        Ok(docs
            .into_iter()
            .filter(|d| framework.is_none_or(|f| d.coverage.framework == f))
            .collect())
    }

    /// The audit trail after `after` (exclusive), up to `as_of`, oldest first.
    pub async fn audit(
        &self,
        tenant: &str,
        after: u64,
        filter: &AuditFilter,
        as_of: Option<AsOf>,
        limit: u32,
    ) -> Result<Vec<AuditDoc>, ProjectionError> {
        let upto = match as_of {
            Some(as_of) => self.resolve_as_of(tenant, as_of).await?,
            None => u64::MAX >> 1,
        };
        let mut sql = String::from(
            "SELECT doc FROM rm_audit WHERE tenant = $1 AND position > $2 AND position <= $3",
        );
        let mut params: Vec<Cell> = vec![tenant.into(), position_cell(after), position_cell(upto)];
        for (column, value) in [
            ("action", &filter.action),
            ("actor", &filter.actor),
            ("stream", &filter.stream),
        ] {
            if let Some(value) = value {
                params.push(value.as_str().into());
                sql.push_str(&format!(" AND {column} = ${}", params.len()));
            }
        }
        if let Some(since) = filter.since {
            params.push(micros(since).into());
            sql.push_str(&format!(" AND recorded_us >= ${}", params.len()));
        }
        if let Some(until) = filter.until {
            params.push(micros(until).into());
            sql.push_str(&format!(" AND recorded_us <= ${}", params.len()));
        }
        sql.push_str(&format!(" ORDER BY position LIMIT {limit}"));
        self.docs(&sql, &params).await
    }
}

impl ReadDb {
    /// One live webhook of `tenant`.
    pub async fn webhook(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<WebhookDoc>, ProjectionError> {
        Ok(self
            .get::<WebhookDoc>(&[id.into()])
            .await?
            .filter(|w| w.tenant == tenant))
    }

    /// Live webhooks of `tenant`, oldest first.
    pub async fn webhooks(&self, tenant: &str) -> Result<Vec<WebhookDoc>, ProjectionError> {
        self.docs(
            "SELECT doc FROM rm_webhooks WHERE tenant = $1 ORDER BY position",
            &[tenant.into()],
        )
        .await
    }

    /// Every live webhook of every tenant (for the delivery engine).
    pub async fn all_webhooks(&self) -> Result<Vec<WebhookDoc>, ProjectionError> {
        self.docs("SELECT doc FROM rm_webhooks ORDER BY position", &[])
            .await
    }

    /// Deliveries to one webhook of `tenant`, most recently attempted first, those attempted before
    /// log position `before` (exclusive) when given; `None` if the webhook does not exist.
    pub async fn deliveries(
        &self,
        tenant: &str,
        webhook_id: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Option<Vec<DeliveryDoc>>, ProjectionError> {
        if self.webhook(tenant, webhook_id).await?.is_none() {
            return Ok(None);
        }
        self.docs(
            &format!(
                "SELECT doc FROM rm_webhook_deliveries WHERE webhook_id = $1 AND position < $2 \
                 ORDER BY position DESC LIMIT {limit}"
            ),
            &[
                webhook_id.into(),
                position_cell(before.unwrap_or(u64::MAX >> 1)),
            ],
        )
        .await
        .map(Some)
    }
}

impl ReadDb {
    /// One live schedule of `tenant`.
    pub async fn schedule(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ScheduleDoc>, ProjectionError> {
        Ok(self
            .get::<ScheduleDoc>(&[id.into()])
            .await?
            .filter(|s| s.tenant == tenant))
    }

    /// Live schedules of `tenant`, oldest first.
    pub async fn schedules(&self, tenant: &str) -> Result<Vec<ScheduleDoc>, ProjectionError> {
        self.docs(
            "SELECT doc FROM rm_schedules WHERE tenant = $1 ORDER BY position",
            &[tenant.into()],
        )
        .await
    }

    /// Every live schedule of every tenant, oldest first (for the scheduler).
    pub async fn all_schedules(&self) -> Result<Vec<ScheduleDoc>, ProjectionError> {
        self.docs("SELECT doc FROM rm_schedules ORDER BY position", &[])
            .await
    }
}

/// Filters of the audit trail.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub stream: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

fn encode_cursor(created_us: i64, id: &str) -> String {
    hex::encode(format!("{created_us}|{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(i64, String), ProjectionError> {
    let bad = || ProjectionError::BadInput("the cursor is not one this server issued".into());
    let text = String::from_utf8(hex::decode(cursor).map_err(|_| bad())?).map_err(|_| bad())?;
    let (us, id) = text.split_once('|').ok_or_else(bad)?;
    Ok((us.parse().map_err(|_| bad())?, id.to_owned()))
}
