//! What reports and compliance packages are made of: a scan's [`Report`] gathered from the read
//! models (its findings with their triage, the diff with the previous scan and the titles of what it
//! fixed, the domain's trend), a domain's completed scans over a period, the badge of a domain, and a
//! scan's evidence from the log (its events with their chain links, and the hashes of every other
//! event in between).

use chrono::{DateTime, Utc};
use vantage_reports::package::{ChainLink, ScanEvidence};
use vantage_reports::{Change, FixedFinding, Report, ReportDiff, ReportFinding, TrendPoint};
use vantage_store::{EventStore, StreamName};

use crate::ProjectionError;
use crate::db::ReadDb;
use crate::model::{BadgeDoc, DomainScanDoc};
use crate::query::FindingFilter;

/// The trend chart shows at most this many of the domain's scans, up to the reported one.
pub const TREND_POINTS: u32 = 30;
/// A period package holds at most this many scans; a longer period is refused.
pub const MAX_PERIOD_SCANS: usize = 500;
/// Events read from the log per batch while collecting chain links.
const LINK_BATCH: usize = 2_000;

impl ReadDb {
    /// The report of scan `scan_id` of `tenant` as of now (`None`: no such scan).
    pub async fn report(
        &self,
        tenant: &str,
        scan_id: &str,
        generated_at: DateTime<Utc>,
    ) -> Result<Option<Report>, ProjectionError> {
        let Some(read) = self.scan_at(tenant, scan_id).await? else {
            return Ok(None);
        };
        let mut views = self
            .findings_of(&read, &FindingFilter::default(), None)
            .await?;
        let scan = read.doc;
        views.sort_by(|a, b| vantage_rules::by_priority(&a.finding.finding, &b.finding.finding));
        let diff = self.diff(tenant, scan_id).await?;
        let change = |fingerprint: &str| {
            diff.as_ref().map(|d| {
                if d.regressions.iter().any(|f| f == fingerprint) {
                    Change::Regression
                } else if d.new.iter().any(|f| f == fingerprint) {
                    Change::New
                } else {
                    Change::Unchanged
                }
            })
        };
        let findings = views
            .into_iter()
            .map(|view| ReportFinding {
                change: change(&view.finding.finding.fingerprint),
                triage: view.triage,
                finding: view.finding.finding,
            })
            .collect();
        let diff = match diff {
            None => None,
            Some(d) => {
                let previous = match &d.previous_scan_id {
                    Some(previous) => self
                        .findings(tenant, previous, &FindingFilter::default(), None)
                        .await?
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                let fixed = previous
                    .into_iter()
                    .filter(|f| d.fixed.contains(&f.finding.finding.fingerprint))
                    .map(|f| FixedFinding {
                        fingerprint: f.finding.finding.fingerprint,
                        title: f.finding.finding.title,
                        severity: f.finding.finding.severity,
                        asset: f.finding.finding.asset,
                    })
                    .collect();
                Some(ReportDiff {
                    previous_scan_id: d.previous_scan_id,
                    new: d.new.len() as u32,
                    regressions: d.regressions.len() as u32,
                    unchanged: d.unchanged.len() as u32,
                    fixed,
                })
            }
        };
        let before = scan.completed_position.map(|p| p + 1);
        let mut history = self
            .domain_history(tenant, &scan.domain, before, TREND_POINTS)
            .await?;
        history.reverse();
        let trend = history
            .into_iter()
            .map(|h| TrendPoint {
                grade: h.overall.as_ref().and_then(|o| o.grade.clone()),
                scan_id: h.scan_id,
                completed_at: h.completed_at,
                score: h.score,
            })
            .collect();
        Ok(Some(Report {
            target: scan.spec.target.as_str().to_owned(),
            status: scan.status,
            trigger: scan.spec.trigger,
            created_at: scan.created_at,
            finished_at: scan.finished_at,
            failure_reason: scan.failure_reason.clone(),
            ruleset_version: scan.ruleset_version.clone(),
            overall: scan.overall.clone(),
            grades: scan.grades.clone(),
            analysis: scan.analysis.clone(),
            counts: scan.findings.unwrap_or_default(),
            findings,
            diff,
            trend,
            generated_at,
            scan_id: scan.id,
            domain: scan.domain,
        }))
    }

    /// The completed scans of a domain of `tenant` that completed in `[since, until)`, oldest first;
    /// more than [`MAX_PERIOD_SCANS`] is an error that asks for a shorter period.
    pub async fn domain_scans_between(
        &self,
        tenant: &str,
        domain: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DomainScanDoc>, ProjectionError> {
        let rows: Vec<DomainScanDoc> = self
            .docs(
                "SELECT doc FROM rm_domain_history WHERE tenant = $1 AND domain = $2 \
                 ORDER BY position",
                &[tenant.into(), domain.into()],
            )
            .await?;
        let scans: Vec<DomainScanDoc> = rows
            .into_iter()
            .filter(|r| r.completed_at >= since && r.completed_at < until)
            .collect();
        if scans.len() > MAX_PERIOD_SCANS {
            return Err(ProjectionError::BadInput(format!(
                "{domain} has {} completed scans in that period; a package holds at most \
                 {MAX_PERIOD_SCANS}: choose a shorter period",
                scans.len()
            )));
        }
        Ok(scans)
    }

    /// The latest completed scan of `domain` among the tenants that show its badge (`None`: nobody
    /// opted the domain in; `Some(None)`: opted in, not graded yet).
    pub async fn badge(
        &self,
        domain: &str,
    ) -> Result<Option<Option<DomainScanDoc>>, ProjectionError> {
        let owners: Vec<BadgeDoc> = self
            .docs(
                "SELECT doc FROM rm_badges WHERE domain = $1 ORDER BY tenant",
                &[domain.into()],
            )
            .await?;
        if owners.is_empty() {
            return Ok(None);
        }
        let mut latest: Option<DomainScanDoc> = None;
        for owner in owners {
            if let Some(scan) = self.domain_latest(&owner.tenant, domain, None).await?
                && latest
                    .as_ref()
                    .is_none_or(|l| scan.completed_at > l.completed_at)
            {
                latest = Some(scan);
            }
        }
        Ok(Some(latest))
    }

    /// Whether `tenant` shows the badge of `domain`.
    pub async fn badge_enabled(&self, tenant: &str, domain: &str) -> Result<bool, ProjectionError> {
        Ok(self
            .get::<BadgeDoc>(&[domain.into(), tenant.into()])
            .await?
            .is_some())
    }
}

/// A scan's evidence from the log: every globally ordered event of its stream, and the position and
/// hashes of every event of other streams between its first and last.
pub async fn scan_evidence(
    store: &dyn EventStore,
    stream: &StreamName,
) -> Result<ScanEvidence, ProjectionError> {
    let events = store.read_stream_after(stream, 0).await?;
    let mut links = Vec::new();
    if let (Some(first), Some(last)) = (events.first(), events.last()) {
        let (first, last) = (first.global_position, last.global_position);
        let mut after = first;
        while after < last {
            let limit = LINK_BATCH.min(usize::try_from(last - after).unwrap_or(LINK_BATCH));
            let batch = store.read_all(after, limit).await?;
            let Some(end) = batch.last().map(|e| e.global_position) else {
                break;
            };
            links.extend(
                batch
                    .into_iter()
                    .filter(|e| e.global_position <= last && e.event.stream != stream.as_str())
                    .map(|e| ChainLink {
                        position: e.global_position,
                        content_hash: e.event.content_hash,
                        hash: e.hash,
                    }),
            );
            after = end;
        }
    }
    Ok(ScanEvidence { events, links })
}
