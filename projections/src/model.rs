//! Every read model's table and document: what a query returns is exactly what a projector stored.
//!
//! Documents derive only from events (their positions, recorded times and payloads), never from the
//! time or place they were projected, so a rebuild produces them byte for byte again — which is what
//! `vantage replay` checks. Times in indexed columns are microseconds since the Unix epoch.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vantage_domain::scan::{ScanSpec, ScanStatus};
use vantage_domain::triage::{TriageReason, TriageState};
use vantage_rules::grade::ScanGrades;
use vantage_rules::{Finding, Overall, Severity, SeverityCounts};

use crate::db::{Cell, Doc, Table, int, text};

/// Microseconds since the epoch, for indexed time columns.
pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

// ---- scans ---------------------------------------------------------------------------------------

pub static SCANS: Table = Table {
    name: "rm_scans",
    columns: &[
        text("scan_id"),
        text("tenant"),
        text("domain"),
        text("status"),
        text("trigger_kind"),
        int("created_us"),
        text("project"),
    ],
    key: 1,
    indexes: &[
        &["tenant", "created_us", "scan_id"],
        &["tenant", "project", "created_us"],
        &["tenant", "domain", "created_us"],
        &["tenant", "status", "created_us"],
        // Unfinished scans across tenants, where scan dispatchers pick up at start.
        &["status", "created_us"],
    ],
};

/// One scan and its summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScanDoc {
    pub id: String,
    pub tenant: String,
    pub status: ScanStatus,
    pub domain: String,
    #[serde(flatten)]
    pub spec: ScanSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub worker_id: Option<String>,
    pub observation_count: u32,
    pub failed_probes: u32,
    pub failure_reason: Option<String>,
    pub cancel_reason: Option<String>,
    pub ruleset_version: Option<String>,
    pub grades: Option<ScanGrades>,
    /// The overall verdict under the scan's ruleset (completed scans).
    pub overall: Option<Overall>,
    /// Counts of the scan's findings by severity (completed scans).
    pub findings: Option<SeverityCounts>,
    /// The overall score (completed scans that reached their target).
    pub score: Option<u32>,
    /// The previous completed scan of the same target, if any.
    pub previous_scan_id: Option<String>,
    /// What the scan saw, summarised (completed scans; absent in read models built before it
    /// existed: rebuild them).
    #[serde(default)]
    pub analysis: Option<vantage_rules::analysis::Analysis>,
    pub requested_position: u64,
    pub completed_position: Option<u64>,
}

impl Doc for ScanDoc {
    const TABLE: &'static Table = &SCANS;
    fn key(&self) -> Vec<Cell> {
        vec![self.id.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![
            self.tenant.as_str().into(),
            self.domain.as_str().into(),
            self.status.as_str().into(),
            wire_name(&self.spec.trigger).into(),
            micros(self.created_at).into(),
            self.spec.project.as_str().into(),
        ]
    }
}

/// The wire name of a unit enum value, as it serialises (`post_deploy`, `headers`, …).
pub fn wire_name(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

// ---- findings of a scan --------------------------------------------------------------------------

pub static FINDINGS: Table = Table {
    name: "rm_findings",
    columns: &[text("scan_id"), text("fingerprint"), text("tenant")],
    key: 2,
    indexes: &[],
};

/// One finding of one scan, exactly as the rules derived it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FindingDoc {
    pub scan_id: String,
    pub tenant: String,
    #[serde(flatten)]
    pub finding: Finding,
}

impl Doc for FindingDoc {
    const TABLE: &'static Table = &FINDINGS;
    fn key(&self) -> Vec<Cell> {
        vec![
            self.scan_id.as_str().into(),
            self.finding.fingerprint.as_str().into(),
        ]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![self.tenant.as_str().into()]
    }
}

// ---- fingerprint state across scans --------------------------------------------------------------

pub static FINGERPRINTS: Table = Table {
    name: "rm_fingerprints",
    columns: &[
        text("tenant"),
        text("fingerprint"),
        int("unresolved"),
        int("priority"),
        int("first_seen_us"),
        text("project"),
        // Counted by the command center's period, so it needs no document decoded.
        text("severity"),
    ],
    key: 2,
    // In the order the command center reads them: its top priorities straight off an index
    // (highest priority, then oldest), its period's counts from the index alone.
    indexes: &[
        &["tenant", "unresolved", "priority DESC", "first_seen_us"],
        &["tenant", "first_seen_us", "severity"],
        &[
            "tenant",
            "project",
            "unresolved",
            "priority DESC",
            "first_seen_us",
        ],
        &["tenant", "project", "first_seen_us", "severity"],
    ],
};

/// What is known of one fingerprint (a rule on an asset of a target) across scans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FingerprintDoc {
    pub tenant: String,
    pub fingerprint: String,
    pub rule_id: Option<String>,
    pub title: Option<String>,
    pub severity: Option<Severity>,
    pub priority: u8,
    pub asset: Option<String>,
    pub target: Option<String>,
    pub domain: Option<String>,
    pub first_seen_at: Option<DateTime<Utc>>,
    pub first_scan_id: Option<String>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub last_scan_id: Option<String>,
    /// Whether the latest completed scan of its target still has it.
    pub present: bool,
    pub fixed_at: Option<DateTime<Utc>>,
    pub times_seen: u32,
    pub regressions: u32,
    pub triage: TriageState,
    pub triage_note: Option<String>,
    pub triage_updated_at: Option<DateTime<Utc>>,
    pub triage_actor: Option<String>,
    /// Why the triage was last set: somebody's decision, or the system reopening a regression.
    #[serde(default)]
    pub triage_reason: TriageReason,
    pub comment_count: u32,
    /// The project of the latest scan that saw it (targets are the tenant's, so two projects
    /// scanning one target share its findings; each belongs to the project that saw it last).
    #[serde(default = "default_project")]
    pub project: String,
    /// The log position of the last change.
    pub position: u64,
}

fn default_project() -> String {
    vantage_domain::project::ProjectId::default_project().to_string()
}

impl FingerprintDoc {
    pub fn new(tenant: &str, fingerprint: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            fingerprint: fingerprint.to_owned(),
            rule_id: None,
            title: None,
            severity: None,
            priority: 0,
            asset: None,
            target: None,
            domain: None,
            first_seen_at: None,
            first_scan_id: None,
            last_seen_at: None,
            last_scan_id: None,
            present: false,
            fixed_at: None,
            times_seen: 0,
            regressions: 0,
            triage: TriageState::Open,
            triage_note: None,
            triage_updated_at: None,
            triage_actor: None,
            triage_reason: TriageReason::Decision,
            comment_count: 0,
            project: default_project(),
            position: 0,
        }
    }

    /// Present in the latest scan and not triaged away (open or acknowledged).
    pub fn unresolved(&self) -> bool {
        self.present && matches!(self.triage, TriageState::Open | TriageState::Acknowledged)
    }
}

impl Doc for FingerprintDoc {
    const TABLE: &'static Table = &FINGERPRINTS;
    fn key(&self) -> Vec<Cell> {
        vec![
            self.tenant.as_str().into(),
            self.fingerprint.as_str().into(),
        ]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![
            self.unresolved().into(),
            i64::from(self.priority).into(),
            self.first_seen_at.map_or(0, micros).into(),
            self.project.as_str().into(),
            self.severity
                .as_ref()
                .map(wire_name)
                .unwrap_or_default()
                .into(),
        ]
    }
}

pub static FINGERPRINT_HISTORY: Table = Table {
    name: "rm_fingerprint_history",
    columns: &[text("tenant"), text("fingerprint"), int("position")],
    key: 3,
    indexes: &[],
};

/// A fingerprint's state as it stood from `position` on (kept for `as_of` queries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FingerprintVersion {
    pub position: u64,
    pub state: FingerprintDoc,
}

impl Doc for FingerprintVersion {
    const TABLE: &'static Table = &FINGERPRINT_HISTORY;
    fn key(&self) -> Vec<Cell> {
        vec![
            self.state.tenant.as_str().into(),
            self.state.fingerprint.as_str().into(),
            self.position.into(),
        ]
    }
    fn columns(&self) -> Vec<Cell> {
        Vec::new()
    }
}

pub static COMMENTS: Table = Table {
    name: "rm_comments",
    columns: &[
        text("tenant"),
        text("comment_id"),
        text("fingerprint"),
        int("position"),
    ],
    key: 2,
    indexes: &[&["tenant", "fingerprint", "position"]],
};

/// A comment on a fingerprint (deleted comments are dropped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CommentDoc {
    pub tenant: String,
    pub id: String,
    pub fingerprint: String,
    pub body: String,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub position: u64,
}

impl Doc for CommentDoc {
    const TABLE: &'static Table = &COMMENTS;
    fn key(&self) -> Vec<Cell> {
        vec![self.tenant.as_str().into(), self.id.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![self.fingerprint.as_str().into(), self.position.into()]
    }
}

// ---- scan diffs ----------------------------------------------------------------------------------

pub static DIFFS: Table = Table {
    name: "rm_scan_diffs",
    columns: &[text("scan_id"), text("tenant")],
    key: 1,
    indexes: &[],
};

/// A completed scan against the previous completed scan of its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DiffDoc {
    pub scan_id: String,
    pub tenant: String,
    pub previous_scan_id: Option<String>,
    pub new: Vec<String>,
    pub fixed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Fingerprints that were fixed (absent from an earlier scan, or triaged fixed) and came back.
    pub regressions: Vec<String>,
}

impl Doc for DiffDoc {
    const TABLE: &'static Table = &DIFFS;
    fn key(&self) -> Vec<Cell> {
        vec![self.scan_id.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![self.tenant.as_str().into()]
    }
}

// ---- targets, domains and their history ----------------------------------------------------------

pub static TARGETS: Table = Table {
    name: "rm_targets",
    columns: &[text("tenant"), text("target")],
    key: 2,
    indexes: &[],
};

/// The latest completed scan of one target and its fingerprints (what the next scan is diffed
/// against).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetDoc {
    pub tenant: String,
    pub target: String,
    pub latest_scan_id: String,
    pub fingerprints: Vec<String>,
}

impl Doc for TargetDoc {
    const TABLE: &'static Table = &TARGETS;
    fn key(&self) -> Vec<Cell> {
        vec![self.tenant.as_str().into(), self.target.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        Vec::new()
    }
}

pub static DOMAINS: Table = Table {
    name: "rm_domains",
    columns: &[text("tenant"), text("domain")],
    key: 2,
    indexes: &[],
};

/// A domain of a tenant and how many of its completed scans are in its history (a key lookup, so the
/// projector learns whether a domain is new without querying, which would flush its batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DomainDoc {
    pub tenant: String,
    pub domain: String,
    pub completed_scans: u32,
}

impl Doc for DomainDoc {
    const TABLE: &'static Table = &DOMAINS;
    fn key(&self) -> Vec<Cell> {
        vec![self.tenant.as_str().into(), self.domain.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        Vec::new()
    }
}

pub static DOMAIN_HISTORY: Table = Table {
    name: "rm_domain_history",
    columns: &[
        text("tenant"),
        text("domain"),
        int("position"),
        text("scan_id"),
    ],
    key: 3,
    indexes: &[&["scan_id"]],
};

/// One completed scan of a domain: a row of its history, and the domain's latest scan from
/// `position` until the next row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DomainScanDoc {
    pub tenant: String,
    pub domain: String,
    pub position: u64,
    pub scan_id: String,
    pub target: String,
    pub completed_at: DateTime<Utc>,
    /// The overall score (absent when the target could not be reached).
    pub score: Option<u32>,
    /// The overall verdict (absent in read models built before it existed: rebuild them).
    pub overall: Option<Overall>,
    pub findings: SeverityCounts,
    pub grades: ScanGrades,
    pub ruleset_version: String,
}

impl Doc for DomainScanDoc {
    const TABLE: &'static Table = &DOMAIN_HISTORY;
    fn key(&self) -> Vec<Cell> {
        vec![
            self.tenant.as_str().into(),
            self.domain.as_str().into(),
            self.position.into(),
        ]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![self.scan_id.as_str().into()]
    }
}

// ---- trends --------------------------------------------------------------------------------------

pub static TRENDS: Table = Table {
    name: "rm_trends",
    columns: &[text("tenant"), text("project"), text("domain"), text("day")],
    key: 4,
    indexes: &[],
};

/// One day of one domain (or of the whole tenant, domain `""`): scans completed and the latest
/// score and finding counts that day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrendDoc {
    pub tenant: String,
    /// `""` for the whole tenant, else one project's scans only.
    #[serde(default)]
    pub project: String,
    pub domain: String,
    pub day: String,
    pub scans: u32,
    /// The domain's overall score in its latest scan that day (none while it could not be
    /// reached); for the tenant row, 100 minus the penalty of every domain's latest findings.
    pub score: Option<u32>,
    pub findings: SeverityCounts,
    /// For the tenant row: the latest counts per domain that day, summed into `findings`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_domain: BTreeMap<String, SeverityCounts>,
}

impl Doc for TrendDoc {
    const TABLE: &'static Table = &TRENDS;
    fn key(&self) -> Vec<Cell> {
        vec![
            self.tenant.as_str().into(),
            self.project.as_str().into(),
            self.domain.as_str().into(),
            self.day.as_str().into(),
        ]
    }
    fn columns(&self) -> Vec<Cell> {
        Vec::new()
    }
}

// ---- compliance coverage -------------------------------------------------------------------------

pub static COVERAGE: Table = Table {
    name: "rm_coverage",
    columns: &[text("scan_id"), text("framework"), text("tenant")],
    key: 2,
    indexes: &[],
};

/// One framework's coverage by one completed scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CoverageDoc {
    pub scan_id: String,
    pub tenant: String,
    #[serde(flatten)]
    pub coverage: vantage_rules::compliance::Coverage,
}

impl Doc for CoverageDoc {
    const TABLE: &'static Table = &COVERAGE;
    fn key(&self) -> Vec<Cell> {
        vec![
            self.scan_id.as_str().into(),
            self.coverage.framework.as_str().into(),
        ]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![self.tenant.as_str().into()]
    }
}

// ---- tenant stats --------------------------------------------------------------------------------

pub static TENANTS: Table = Table {
    name: "rm_tenant_stats",
    columns: &[text("tenant"), text("project")],
    key: 2,
    indexes: &[],
};

/// Running totals of one tenant, for the dashboard and command center.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TenantStatsDoc {
    pub tenant: String,
    /// `""` for the whole tenant, else one project's totals.
    #[serde(default)]
    pub project: String,
    pub scans_total: u32,
    pub scans_by_status: BTreeMap<String, u32>,
    pub domains: u32,
    /// Unresolved findings (present in the latest scan of their target, open or acknowledged).
    pub unresolved: SeverityCounts,
    pub notifications_read_up_to: u64,
    pub last_scan_at: Option<DateTime<Utc>>,
    /// For a project's totals: the domains it completed scans of (`domains` counts them).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub project_domains: BTreeSet<String>,
}

impl TenantStatsDoc {
    /// The totals of the whole tenant (`project` `""`) or of one of its projects.
    pub fn new(tenant: &str, project: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            project: project.to_owned(),
            project_domains: BTreeSet::new(),
            scans_total: 0,
            scans_by_status: BTreeMap::new(),
            domains: 0,
            unresolved: SeverityCounts::default(),
            notifications_read_up_to: 0,
            last_scan_at: None,
        }
    }
}

impl Doc for TenantStatsDoc {
    const TABLE: &'static Table = &TENANTS;
    fn key(&self) -> Vec<Cell> {
        vec![self.tenant.as_str().into(), self.project.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        Vec::new()
    }
}

// ---- notifications -------------------------------------------------------------------------------

pub static REOPEN_DUE: Table = Table {
    name: "rm_reopen_due",
    columns: &[text("tenant"), text("fingerprint"), int("position")],
    key: 2,
    indexes: &[&["position"]],
};

/// A finding triaged `fixed` that a scan saw again, until the system's reopening of it (a
/// `TriageSet`, or anybody's) is projected: the to-do list of `vantage_app::reopen_regressions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReopenDueDoc {
    pub tenant: String,
    pub fingerprint: String,
    /// The scan that saw it again.
    pub scan_id: String,
    /// The log position of that scan's completion.
    pub position: u64,
}

impl Doc for ReopenDueDoc {
    const TABLE: &'static Table = &REOPEN_DUE;
    fn key(&self) -> Vec<Cell> {
        vec![
            self.tenant.as_str().into(),
            self.fingerprint.as_str().into(),
        ]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![self.position.into()]
    }
}

pub static CONTENT_DUE: Table = Table {
    name: "rm_content_due",
    columns: &[text("scan_id"), int("expires_at")],
    key: 1,
    indexes: &[&["expires_at"]],
};

/// A scan that keeps content samples, until its content key is destroyed: the to-do list of
/// `vantage_app::shred_expired_content`, by the time its retention ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContentDueDoc {
    pub scan_id: String,
    pub tenant: String,
    pub expires_at: DateTime<Utc>,
}

impl Doc for ContentDueDoc {
    const TABLE: &'static Table = &CONTENT_DUE;
    fn key(&self) -> Vec<Cell> {
        vec![self.scan_id.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![self.expires_at.timestamp().into()]
    }
}

pub static NOTIFICATIONS: Table = Table {
    name: "rm_notifications",
    columns: &[
        text("notification_id"),
        text("tenant"),
        int("position"),
        int("is_read"),
        text("project"),
    ],
    key: 1,
    indexes: &[
        &["tenant", "position"],
        &["tenant", "is_read", "position"],
        &["tenant", "project", "position"],
        &["tenant", "project", "is_read", "position"],
    ],
};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    NewFinding,
    Regression,
    ScanFailed,
    CertificateExpiring,
}

/// One notification, derived from the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotificationDoc {
    pub id: String,
    pub tenant: String,
    pub kind: NotificationKind,
    pub title: String,
    pub scan_id: String,
    pub domain: String,
    pub fingerprint: Option<String>,
    pub severity: Option<Severity>,
    /// The project of the scan it is about.
    #[serde(default = "default_project")]
    pub project: String,
    pub created_at: DateTime<Utc>,
    pub position: u64,
    /// Read one by one (`read-all` is kept as a tenant watermark and applied on query).
    pub read: bool,
}

impl Doc for NotificationDoc {
    const TABLE: &'static Table = &NOTIFICATIONS;
    fn key(&self) -> Vec<Cell> {
        vec![self.id.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![
            self.tenant.as_str().into(),
            self.position.into(),
            self.read.into(),
            self.project.as_str().into(),
        ]
    }
}

// ---- audit trail ---------------------------------------------------------------------------------

pub static AUDIT: Table = Table {
    name: "rm_audit",
    columns: &[
        int("position"),
        text("tenant"),
        int("recorded_us"),
        text("actor"),
        text("action"),
        text("stream"),
    ],
    key: 1,
    indexes: &[
        &["tenant", "position"],
        &["tenant", "recorded_us", "position"],
    ],
};

/// One command event, public-safe: who did what to which stream, when, under which request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditDoc {
    pub position: u64,
    pub event_id: String,
    pub tenant: String,
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    /// The event type, e.g. `ScanRequested`.
    pub action: String,
    pub stream: String,
    /// What the event was about (scan id, fingerprint, key id, …), from the stream name.
    pub target: String,
    pub request_id: Option<String>,
    pub correlation_id: String,
    /// The payload, except for events that carry credentials (key and webhook events), which are
    /// summarised instead.
    pub details: serde_json::Value,
    pub hash: String,
}

impl Doc for AuditDoc {
    const TABLE: &'static Table = &AUDIT;
    fn key(&self) -> Vec<Cell> {
        vec![self.position.into()]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![
            self.tenant.as_str().into(),
            micros(self.recorded_at).into(),
            self.actor.as_str().into(),
            self.action.as_str().into(),
            self.stream.as_str().into(),
        ]
    }
}

// ---- webhooks and their deliveries ---------------------------------------------------------------

pub static WEBHOOKS: Table = Table {
    name: "rm_webhooks",
    columns: &[text("webhook_id"), text("tenant"), int("position")],
    key: 1,
    indexes: &[&["tenant", "position"]],
};

/// A webhook subscription as its events tell it (its secret's hash is not shown; deleted webhooks are
/// dropped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookDoc {
    pub id: String,
    pub tenant: String,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    /// The project whose scans it reports.
    pub project: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The log position of its creation (the list's order).
    pub position: u64,
}

impl Doc for WebhookDoc {
    const TABLE: &'static Table = &WEBHOOKS;
    fn key(&self) -> Vec<Cell> {
        vec![self.id.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![self.tenant.as_str().into(), self.position.into()]
    }
}

pub static DELIVERIES: Table = Table {
    name: "rm_webhook_deliveries",
    columns: &[
        text("delivery_id"),
        text("tenant"),
        text("webhook_id"),
        int("position"),
    ],
    key: 1,
    indexes: &[&["webhook_id", "position"]],
};

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeliveryAttemptDoc {
    pub attempt: u32,
    pub outcome: vantage_domain::webhook::DeliveryOutcome,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// One outbound event's delivery to one webhook, with every attempt, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeliveryDoc {
    pub id: String,
    pub tenant: String,
    pub webhook_id: String,
    pub event_type: String,
    /// The latest attempt's outcome.
    pub status: vantage_domain::webhook::DeliveryOutcome,
    pub attempts: Vec<DeliveryAttemptDoc>,
    pub first_attempt_at: DateTime<Utc>,
    pub last_attempt_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The log position of the latest attempt (the list's order: most recently active first).
    pub position: u64,
}

impl Doc for DeliveryDoc {
    const TABLE: &'static Table = &DELIVERIES;
    fn key(&self) -> Vec<Cell> {
        vec![self.id.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![
            self.tenant.as_str().into(),
            self.webhook_id.as_str().into(),
            self.position.into(),
        ]
    }
}

// ---- schedules ----------------------------------------------------------------------------------

pub static SCHEDULES: Table = Table {
    name: "rm_schedules",
    columns: &[text("schedule_id"), text("tenant"), int("position")],
    key: 1,
    indexes: &[&["tenant", "position"]],
};

/// A live schedule as its creation tells it (deleted schedules are dropped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduleDoc {
    pub id: String,
    pub tenant: String,
    /// The creation, as logged: the scan spec, the cadence and whether it is enabled.
    pub schedule: vantage_domain::schedule::ScheduleCreated,
    /// When the schedule was recorded; interval slots count from here, and no slot is before it.
    pub created_at: DateTime<Utc>,
    /// The log position of its creation (the list's order).
    pub position: u64,
}

impl Doc for ScheduleDoc {
    const TABLE: &'static Table = &SCHEDULES;
    fn key(&self) -> Vec<Cell> {
        vec![self.id.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        vec![self.tenant.as_str().into(), self.position.into()]
    }
}

// ---- badges -------------------------------------------------------------------------------------

pub static BADGES: Table = Table {
    name: "rm_badges",
    columns: &[text("domain"), text("tenant")],
    key: 2,
    indexes: &[],
};

/// A domain whose owner shows its latest grade on the public badge (a disabled badge's row is
/// dropped; the log keeps it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BadgeDoc {
    pub domain: String,
    pub tenant: String,
    pub enabled_at: DateTime<Utc>,
    pub position: u64,
}

impl Doc for BadgeDoc {
    const TABLE: &'static Table = &BADGES;
    fn key(&self) -> Vec<Cell> {
        vec![self.domain.as_str().into(), self.tenant.as_str().into()]
    }
    fn columns(&self) -> Vec<Cell> {
        Vec::new()
    }
}
