//! The route table: every operation of the API with its handler, its stable `operationId`, its scope
//! and the types it takes and returns. [`crate::router`] and the OpenAPI document are both built from
//! it, so they cannot drift apart.

use axum::http::Method;
use vantage_app::KeySummary;
use vantage_domain::scope::Scope;
use vantage_projections::model::{
    CommentDoc, DeliveryDoc, DomainScanDoc, FingerprintDoc, NotificationDoc, ScanDoc,
};
use vantage_projections::query::{CommandCenter, FindingView, Page, Stats};

use crate::openapi::Operation;
use crate::{
    audit, compliance, dashboard, domains, health, keys, live, notifications, outbound, projects,
    reports, scans, tenant, triage,
};

const SCAN: &str = "Scan id (UUID).";
/// A link parameter: the scan id of the response.
const SCAN_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
const WEBHOOK: &str = "Webhook id (UUID).";
/// A link parameter: the webhook id of the response.
const WEBHOOK_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
const FINGERPRINT: &str =
    "A finding's fingerprint (stable across scans: tenant, target, rule, asset).";

/// Every operation, in the order the document lists them.
pub fn operations() -> Vec<Operation> {
    use crate::Items;
    use Method as M;
    vec![
        // ---- meta ----
        Operation::new(M::GET, "/", "getApiRoot", "What this server is", health::root)
            .tag("meta")
            .public()
            .reply::<health::ApiRoot>(200, "Name, version and links to the docs and the document."),
        Operation::new(M::GET, "/health", "getHealth", "Liveness", health::health)
            .tag("meta")
            .public()
            .reply::<health::Health>(200, "The process answers."),
        Operation::new(
            M::GET,
            "/ready",
            "getReadiness",
            "Readiness and projector lag",
            health::ready,
        )
        .tag("meta")
        .public()
        .reply::<health::Readiness>(200, "The event store answers.")
        .errors(&[503]),
        Operation::new(
            M::GET,
            "/metrics",
            "getMetrics",
            "Prometheus metrics",
            health::metrics,
        )
        .tag("meta")
        .public()
        .text(200, "Prometheus text exposition.", "text/plain"),
        // ---- scans ----
        Operation::new(
            M::POST,
            "/api/v1/scans",
            "createScan",
            "Start a scan (or reuse a young one)",
            scans::create_scan,
        )
        .tag("scans")
        .scope(Scope::ScanWrite)
        .idempotent()
        .body::<scans::CreateScanRequest>()
        .reply::<scans::ScanResource>(202, "Queued; poll its status (Location, Retry-After).")
        .link(202, "getScan", SCAN_ID)
        .link(202, "getScanStatus", SCAN_ID)
        .link(202, "getScanSummary", SCAN_ID)
        .link(202, "getScanHistory", SCAN_ID)
        .link(202, "listScanObservations", SCAN_ID)
        .link(202, "listScanFindings", SCAN_ID)
        .link(202, "cancelScan", SCAN_ID)
        .link(202, "deleteScan", SCAN_ID)
        .reply::<scans::ScanResource>(
            200,
            "A completed scan young enough was reused (max_age_seconds).",
        )
        .errors(&[422]),
        Operation::new(
            M::GET,
            "/api/v1/scans",
            "listScans",
            "List scans",
            scans::list_scans,
        )
        .tag("scans")
        .scope(Scope::ScanRead)
        .query::<scans::ListScansQuery>()
        .reply::<Page<ScanDoc>>(200, "Newest first.")
        .errors(&[422]),
        Operation::new(
            M::POST,
            "/api/v1/scans/batch",
            "createScanBatch",
            "Start up to 50 scans",
            scans::create_batch,
        )
        .tag("scans")
        .scope(Scope::ScanWrite)
        .idempotent()
        .body::<scans::BatchCreateRequest>()
        .reply::<scans::BatchResult>(200, "One result per item, in order."),
        Operation::new(
            M::GET,
            "/api/v1/scans/compare",
            "compareScans",
            "Compare two scans",
            scans::compare_scans,
        )
        .tag("scans")
        .scope(Scope::ScanRead)
        .query::<scans::CompareQuery>()
        .reply::<scans::ScanComparison>(200, "New, fixed and unchanged findings.")
        .errors(&[404]),
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}",
            "getScan",
            "One scan",
            scans::get_scan,
        )
        .tag("scans")
        .scope(Scope::ScanRead)
        .param("id", SCAN)
        .reply::<scans::ScanResource>(200, "The scan as its events tell it.")
        .errors(&[404]),
        Operation::new(
            M::DELETE,
            "/api/v1/scans/{id}",
            "deleteScan",
            "Delete a scan",
            scans::delete_scan,
        )
        .tag("scans")
        .scope(Scope::ScanWrite)
        .param("id", SCAN)
        .empty(204, "Deleted from the read models (the log keeps it).")
        .errors(&[404, 409]),
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}/content-samples",
            "getScanContentSamples",
            "The content samples a scan kept",
            scans::content_samples,
        )
        .tag("scans")
        .scope(Scope::ContentRead)
        .param("id", SCAN)
        .reply::<vantage_app::ContentSamples>(
            200,
            "The samples, opened; readable until expires_at, then destroyed.",
        )
        .errors(&[404, 410]),
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}/status",
            "getScanStatus",
            "A scan's status",
            scans::scan_status,
        )
        .tag("scans")
        .scope(Scope::ScanRead)
        .param("id", SCAN)
        .reply::<scans::ScanProgress>(200, "Retry-After is sent while the scan has not ended.")
        .errors(&[404]),
        Operation::new(
            M::POST,
            "/api/v1/scans/{id}/cancel",
            "cancelScan",
            "Cancel a scan",
            scans::cancel_scan,
        )
        .tag("scans")
        .scope(Scope::ScanWrite)
        .idempotent()
        .param("id", SCAN)
        .reply::<scans::ScanResource>(200, "Cancelled.")
        .errors(&[400, 404, 409, 413, 415, 422]),
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}/summary",
            "getScanSummary",
            "A scan's summary and release gate",
            scans::scan_summary,
        )
        .tag("scans")
        .scope(Scope::ScanRead)
        .param("id", SCAN)
        .query::<scans::SummaryQuery>()
        .reply::<scans::ScanSummary>(200, "Counts, score, grades, diff and gate.")
        .errors(&[404, 422]),
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}/observations",
            "listScanObservations",
            "What the probes saw",
            scans::scan_observations,
        )
        .tag("scans")
        .scope(Scope::ScanRead)
        .param("id", SCAN)
        .query::<scans::ObservationsQuery>()
        .reply::<scans::Observations>(200, "In log order.")
        .errors(&[404]),
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}/findings",
            "listScanFindings",
            "A scan's findings",
            scans::scan_findings,
        )
        .tag("scans")
        .scope(Scope::ScanRead)
        .param("id", SCAN)
        .query::<scans::FindingsQuery>()
        .reply::<scans::Findings>(200, "Highest priority first, with triage.")
        .errors(&[404, 422]),
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}/findings/{finding_id}",
            "getScanFinding",
            "One finding of a scan",
            scans::scan_finding,
        )
        .tag("scans")
        .scope(Scope::ScanRead)
        .param("id", SCAN)
        .param("finding_id", FINGERPRINT)
        .reply::<FindingView>(200, "The finding with its triage.")
        .errors(&[404]),
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}/history",
            "getScanHistory",
            "A scan's lifecycle",
            scans::scan_history,
        )
        .tag("scans")
        .scope(Scope::ScanRead)
        .param("id", SCAN)
        .reply::<scans::ScanHistory>(200, "Every event but the observations.")
        .errors(&[404]),
        // ---- reports ----
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}/report",
            "getScanReport",
            "A scan's report (HTML, PDF, JSON, SARIF or JUnit)",
            reports::scan_report,
        )
        .tag("reports")
        .scope(Scope::ScanRead)
        .param("id", SCAN)
        .query::<reports::ReportQuery>()
        .text(200, "format=html: one self-contained page.", "text/html; charset=utf-8")
        .binary(200, "format=pdf: the same content as PDF.", "application/pdf")
        .reply::<vantage_reports::Report>(200, "format=json: the report's data.")
        .reply_as::<serde_json::Value>(200, "format=sarif: SARIF 2.1.0.", "application/sarif+json")
        .text(200, "format=junit: JUnit XML.", "application/xml")
        .errors(&[404]),
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}/sbom",
            "getScanInventory",
            "The technology seen from outside (CycloneDX or SPDX)",
            reports::scan_inventory,
        )
        .tag("reports")
        .scope(Scope::ScanRead)
        .param("id", SCAN)
        .query::<reports::InventoryQuery>()
        .reply_as::<serde_json::Value>(
            200,
            "format=cyclonedx: a CycloneDX 1.5 BOM.",
            "application/vnd.cyclonedx+json",
        )
        .reply_as::<serde_json::Value>(
            200,
            "format=spdx: an SPDX 2.3 document.",
            "application/spdx+json",
        )
        .errors(&[404]),
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}/compliance-package",
            "getCompliancePackage",
            "A completed scan's signed compliance package",
            reports::compliance_package,
        )
        .tag("compliance")
        .scope(Scope::ScanRead)
        .param("id", SCAN)
        .query::<reports::PackageQuery>()
        .binary(
            200,
            "A .tar.gz: manifest.json, manifest.sig, signing-key.pem, events.jsonl, chain.jsonl, \
             findings.json, coverage.json, report.html (check it with `vantage verify-package`).",
            "application/gzip",
        )
        .errors(&[404, 409, 422]),
        // ---- live ----
        Operation::new(
            M::GET,
            "/api/v1/scans/{id}/events",
            "streamScanEvents",
            "A scan's events, live (server-sent events)",
            live::scan_events,
        )
        .tag("live")
        .scope(Scope::ScanRead)
        .or_event_token()
        .param("id", SCAN)
        .query::<live::ScanEventsQuery>()
        .event_stream::<live::LiveData<'static>>(
            200,
            "Server-sent events until the scan ends: `id` is the log position, `event` the event \
             type (ScanStarted, ProbeObserved, ScanCompleted with the verdict, …), `data` the event \
             as JSON; `overflow` ends a stream whose client reads too slowly. Resume with \
             Last-Event-ID. An API key or `event_token` authenticates.",
        )
        .errors(&[404]),
        Operation::new(
            M::POST,
            "/api/v1/scans/{id}/event-token",
            "createScanEventToken",
            "A short-lived token for a scan's live stream",
            live::event_token,
        )
        .tag("live")
        .scope(Scope::ScanRead)
        .param("id", SCAN)
        .reply::<live::EventToken>(201, "Valid five minutes, for this scan's stream only.")
        .errors(&[404]),
        Operation::new(
            M::GET,
            "/api/v1/events",
            "streamEvents",
            "Every event of the tenant, live (server-sent events)",
            live::tenant_events,
        )
        .tag("live")
        .scope(Scope::AuditRead)
        .tenant_wide()
        .query::<live::EventsQuery>()
        .event_stream::<live::LiveData<'static>>(
            200,
            "Server-sent events from now (or after Last-Event-ID): `id` is the log position, \
             `event` the event type, `data` the event as the audit trail shows it; `overflow` \
             ends a stream whose client reads too slowly.",
        )
        .errors(&[]),
        // ---- domains ----
        Operation::new(
            M::GET,
            "/api/v1/domains/{domain}/latest",
            "getDomainLatest",
            "A domain's latest scan",
            domains::domain_latest,
        )
        .tag("domains")
        .scope(Scope::ScanRead)
        .tenant_wide()
        .param("domain", "A host name, e.g. example.com.")
        .query::<domains::AsOfQuery>()
        .reply::<domains::DomainLatest>(200, "The latest completed scan (as of as_of).")
        .errors(&[404, 422]),
        Operation::new(
            M::GET,
            "/api/v1/domains/{domain}/history",
            "listDomainHistory",
            "A domain's completed scans",
            domains::domain_history,
        )
        .tag("domains")
        .scope(Scope::ScanRead)
        .tenant_wide()
        .param("domain", "A host name, e.g. example.com.")
        .query::<domains::HistoryQuery>()
        .reply::<Page<DomainScanDoc>>(200, "Newest first.")
        .errors(&[422]),
        Operation::new(
            M::PUT,
            "/api/v1/domains/{domain}/badge",
            "setDomainBadge",
            "Show a domain's grade on the public badge, or stop",
            reports::set_badge,
        )
        .tag("domains")
        .scope(Scope::ScanWrite)
        .tenant_wide()
        .param("domain", "A host name, e.g. example.com.")
        .body::<reports::BadgeRequest>()
        .reply::<reports::BadgeSetting>(200, "The setting now.")
        .errors(&[422]),
        Operation::new(
            M::GET,
            "/badge/{file}",
            "getDomainBadge",
            "A domain's trust badge",
            reports::badge_svg,
        )
        .tag("domains")
        .public()
        .param(
            "file",
            "The domain name followed by `.svg`, e.g. `example.com.svg`.",
        )
        .text(200, "A shields-style SVG with the latest grade.", "image/svg+xml")
        .empty(304, "Unchanged since the ETag sent in If-None-Match.")
        .errors(&[404]),
        // ---- triage ----
        Operation::new(
            M::GET,
            "/api/v1/findings/{fingerprint}",
            "getFingerprint",
            "A finding across scans",
            triage::get_fingerprint,
        )
        .tag("triage")
        .scope(Scope::ScanRead)
        .tenant_wide()
        .param("fingerprint", FINGERPRINT)
        .query::<triage::FingerprintQuery>()
        .reply::<FingerprintDoc>(200, "First and last seen, triage, comments (as of as_of).")
        .errors(&[404, 422]),
        Operation::new(
            M::PATCH,
            "/api/v1/findings/{fingerprint}/state",
            "setTriageState",
            "Triage a finding",
            triage::set_state,
        )
        .tag("triage")
        .scope(Scope::TriageWrite)
        .tenant_wide()
        .param("fingerprint", FINGERPRINT)
        .body::<triage::SetTriageRequest>()
        .reply::<triage::TriageRecorded>(200, "Recorded.")
        .errors(&[404]),
        Operation::new(
            M::GET,
            "/api/v1/findings/{fingerprint}/comments",
            "listComments",
            "Comments on a finding",
            triage::list_comments,
        )
        .tag("triage")
        .scope(Scope::ScanRead)
        .tenant_wide()
        .param("fingerprint", FINGERPRINT)
        .reply::<Items<CommentDoc>>(200, "Oldest first.")
        .errors(&[404]),
        Operation::new(
            M::POST,
            "/api/v1/findings/{fingerprint}/comments",
            "addComment",
            "Comment on a finding",
            triage::add_comment,
        )
        .tag("triage")
        .scope(Scope::TriageWrite)
        .tenant_wide()
        .idempotent()
        .param("fingerprint", FINGERPRINT)
        .body::<triage::AddCommentRequest>()
        .reply::<triage::CommentAdded>(201, "Added.")
        .link(
            201,
            "deleteComment",
            &[
                ("fingerprint", "$response.body#/fingerprint"),
                ("id", "$response.body#/id"),
            ],
        )
        .errors(&[404]),
        Operation::new(
            M::DELETE,
            "/api/v1/findings/{fingerprint}/comments/{id}",
            "deleteComment",
            "Delete a comment",
            triage::delete_comment,
        )
        .tag("triage")
        .scope(Scope::TriageWrite)
        .tenant_wide()
        .param("fingerprint", FINGERPRINT)
        .param("id", "Comment id (UUID).")
        .empty(204, "Deleted.")
        .errors(&[404]),
        // ---- notifications ----
        Operation::new(
            M::GET,
            "/api/v1/notifications",
            "listNotifications",
            "Notifications",
            notifications::notifications,
        )
        .tag("notifications")
        .scope(Scope::ScanRead)
        .query::<notifications::NotificationsQuery>()
        .reply::<Items<NotificationDoc>>(200, "Newest first.")
        .errors(&[404, 422]),
        Operation::new(
            M::GET,
            "/api/v1/notifications/unread-count",
            "countUnreadNotifications",
            "Unread notifications",
            notifications::unread_count,
        )
        .tag("notifications")
        .scope(Scope::ScanRead)
        .query::<dashboard::StatsQuery>()
        .reply::<notifications::UnreadCount>(200, "How many are unread.")
        .errors(&[404, 422]),
        Operation::new(
            M::PATCH,
            "/api/v1/notifications/read-all",
            "markAllNotificationsRead",
            "Mark every notification read",
            notifications::mark_all_read,
        )
        .tag("notifications")
        .scope(Scope::ScanRead)
        .tenant_wide()
        .reply::<notifications::AllRead>(200, "Everything derived so far is read."),
        Operation::new(
            M::PATCH,
            "/api/v1/notifications/{id}/read",
            "markNotificationRead",
            "Mark a notification read",
            notifications::mark_read,
        )
        .tag("notifications")
        .scope(Scope::ScanRead)
        .param("id", "Notification id (UUID).")
        .reply::<NotificationDoc>(200, "Read.")
        .errors(&[404]),
        // ---- dashboard ----
        Operation::new(
            M::GET,
            "/api/v1/dashboard/stats",
            "getDashboardStats",
            "Totals",
            dashboard::stats,
        )
        .tag("dashboard")
        .scope(Scope::ScanRead)
        .query::<dashboard::StatsQuery>()
        .reply::<Stats>(
            200,
            "Scans by status, domains, unresolved findings, unread notifications.",
        )
        .errors(&[404, 422]),
        Operation::new(
            M::GET,
            "/api/v1/dashboard/trends",
            "getDashboardTrends",
            "Trends per day",
            dashboard::trends,
        )
        .tag("dashboard")
        .scope(Scope::ScanRead)
        .query::<dashboard::TrendsQuery>()
        .reply::<dashboard::Trends>(200, "Oldest day first.")
        .errors(&[404, 422]),
        Operation::new(
            M::GET,
            "/api/v1/dashboard/command-center",
            "getCommandCenter",
            "Health score and top priorities",
            dashboard::command_center,
        )
        .tag("dashboard")
        .scope(Scope::ScanRead)
        .query::<dashboard::CommandCenterQuery>()
        .reply::<CommandCenter>(200, "What to fix first, and what happened in the period.")
        .errors(&[404, 422]),
        // ---- compliance ----
        Operation::new(
            M::GET,
            "/api/v1/compliance/frameworks",
            "listComplianceFrameworks",
            "Compliance frameworks",
            compliance::frameworks,
        )
        .tag("compliance")
        .scope(Scope::ScanRead)
        .reply::<Items<compliance::FrameworkView>>(200, "Every framework with its controls."),
        Operation::new(
            M::GET,
            "/api/v1/compliance/coverage",
            "getComplianceCoverage",
            "A scan's control coverage",
            compliance::coverage,
        )
        .tag("compliance")
        .scope(Scope::ScanRead)
        .query::<compliance::CoverageQuery>()
        .reply::<compliance::CoverageReport>(200, "Per control: passing, failing or not assessed.")
        .errors(&[404, 422]),
        Operation::new(
            M::GET,
            "/api/v1/compliance/signing-key",
            "getSigningKey",
            "The key that signs compliance packages",
            reports::signing_key,
        )
        .tag("compliance")
        .public()
        .reply::<reports::SigningKeyView>(200, "An Ed25519 public key."),
        // ---- audit ----
        Operation::new(
            M::GET,
            "/api/v1/audit/events",
            "listAuditEvents",
            "The audit trail",
            audit::audit_events,
        )
        .tag("audit")
        .scope(Scope::AuditRead)
        .tenant_wide()
        .query::<audit::AuditQuery>()
        .reply::<audit::AuditPage>(200, "Oldest first, by log position.")
        .errors(&[422]),
        Operation::new(
            M::GET,
            "/api/v1/audit/checkpoint",
            "getLogCheckpoint",
            "The log's head, signed",
            audit::checkpoint,
        )
        .tag("audit")
        .scope(Scope::AuditRead)
        .tenant_wide()
        .reply::<vantage_reports::checkpoint::SignedCheckpoint>(
            200,
            "Keep it outside the database; vantage verify --checkpoints proves the log still holds it.",
        ),
        Operation::new(
            M::GET,
            "/api/v1/audit/verify",
            "verifyAuditChain",
            "Verify the hash chain",
            audit::audit_verify,
        )
        .tag("audit")
        .scope(Scope::AuditRead)
        .tenant_wide()
        .reply::<audit::ChainReport>(200, "Whether the chain is intact, and where it breaks."),
        // ---- keys ----
        Operation::new(
            M::POST,
            "/api/v1/keys",
            "createApiKey",
            "Issue an API key",
            keys::issue_key,
        )
        .tag("keys")
        .scope(Scope::Admin)
        .tenant_wide()
        .body::<keys::IssueKeyRequest>()
        .reply::<keys::IssuedKeyView>(201, "The token is shown this once.")
        .link(201, "revokeApiKey", &[("id", "$response.body#/id")]),
        Operation::new(
            M::GET,
            "/api/v1/keys",
            "listApiKeys",
            "The tenant's API keys",
            keys::list_keys,
        )
        .tag("keys")
        .scope(Scope::Admin)
        .tenant_wide()
        .reply::<Items<KeySummary>>(200, "Every key, revoked ones too; never a secret."),
        Operation::new(
            M::GET,
            "/api/v1/keys/me",
            "getCurrentApiKey",
            "The calling key",
            keys::me,
        )
        .tag("keys")
        .reply::<keys::KeyIdentity>(200, "Its id, name, scopes and tenant."),
        Operation::new(
            M::POST,
            "/api/v1/keys/{id}/rotate",
            "rotateApiKey",
            "Give an API key a new secret",
            keys::rotate_key,
        )
        .tag("keys")
        .scope(Scope::Admin)
        .tenant_wide()
        .param("id", "API key id (UUID).")
        .body::<keys::RotateKeyRequest>()
        .reply::<keys::RotatedKeyView>(
            200,
            "The new token, shown this once; the old one works until previous_valid_until.",
        )
        .errors(&[404, 409, 422]),
        Operation::new(
            M::DELETE,
            "/api/v1/keys/{id}",
            "revokeApiKey",
            "Revoke an API key",
            keys::revoke_key,
        )
        .tag("keys")
        .scope(Scope::Admin)
        .tenant_wide()
        .param("id", "API key id (UUID).")
        .empty(204, "Revoked.")
        .errors(&[404, 409]),
        Operation::new(
            M::DELETE,
            "/api/v1/tenant",
            "eraseTenant",
            "Erase the caller's tenant (crypto-shredding)",
            tenant::erase_tenant,
        )
        .tag("keys")
        .scope(Scope::Admin)
        .tenant_wide()
        .query::<tenant::EraseTenantQuery>()
        .reply::<vantage_app::TenantErasure>(
            200,
            "Erased: what was destroyed. No key of the tenant authenticates any more.",
        )
        .errors(&[409, 428]),
        // ---- projects ----
        Operation::new(
            M::POST,
            "/api/v1/projects",
            "createProject",
            "Create a project",
            projects::create_project,
        )
        .tag("projects")
        .scope(Scope::Admin)
        .tenant_wide()
        .body::<projects::CreateProjectRequest>()
        .reply::<projects::ProjectResource>(201, "Created.")
        .link(201, "deleteProject", &[("id", "$response.body#/id")])
        .errors(&[409, 422]),
        Operation::new(
            M::GET,
            "/api/v1/projects",
            "listProjects",
            "The tenant's projects",
            projects::list_projects,
        )
        .tag("projects")
        .scope(Scope::ScanRead)
        .reply::<Items<projects::ProjectResource>>(
            200,
            "`default` first; a key limited to some projects lists those.",
        ),
        Operation::new(
            M::DELETE,
            "/api/v1/projects/{id}",
            "deleteProject",
            "Delete a project",
            projects::delete_project,
        )
        .tag("projects")
        .scope(Scope::Admin)
        .tenant_wide()
        .param("id", "Project id.")
        .empty(204, "Deleted; what it held stays in the log.")
        .errors(&[404, 409, 422]),
        // ---- webhooks ----
        Operation::new(
            M::POST,
            "/api/v1/webhooks",
            "createWebhook",
            "Create a webhook",
            outbound::create_webhook,
        )
        .tag("webhooks")
        .scope(Scope::Admin)
        .body::<outbound::CreateWebhookRequest>()
        .reply::<outbound::CreatedWebhookResource>(201, "The signing secret is shown this once.")
        .link(201, "getWebhook", WEBHOOK_ID)
        .link(201, "listWebhookDeliveries", WEBHOOK_ID)
        .errors(&[422]),
        Operation::new(
            M::GET,
            "/api/v1/webhooks",
            "listWebhooks",
            "The tenant's webhooks",
            outbound::list_webhooks,
        )
        .tag("webhooks")
        .scope(Scope::Admin)
        .query::<outbound::ProjectQuery>()
        .reply::<Items<outbound::WebhookResource>>(200, "Oldest first; never a secret."),
        Operation::new(
            M::GET,
            "/api/v1/webhooks/{id}",
            "getWebhook",
            "One webhook",
            outbound::get_webhook,
        )
        .tag("webhooks")
        .scope(Scope::Admin)
        .param("id", WEBHOOK)
        .reply::<outbound::WebhookResource>(200, "The webhook, never its secret.")
        .errors(&[404]),
        Operation::new(
            M::PATCH,
            "/api/v1/webhooks/{id}",
            "updateWebhook",
            "Change a webhook's URL, event filter or enabled flag",
            outbound::update_webhook,
        )
        .tag("webhooks")
        .scope(Scope::Admin)
        .param("id", WEBHOOK)
        .body::<outbound::UpdateWebhookRequest>()
        .empty(204, "Changed (the secret stays).")
        .errors(&[404, 422]),
        Operation::new(
            M::DELETE,
            "/api/v1/webhooks/{id}",
            "deleteWebhook",
            "Delete a webhook",
            outbound::delete_webhook,
        )
        .tag("webhooks")
        .scope(Scope::Admin)
        .param("id", WEBHOOK)
        .empty(204, "Deleted; nothing more is delivered to it.")
        .errors(&[404]),
        Operation::new(
            M::GET,
            "/api/v1/webhooks/{id}/deliveries",
            "listWebhookDeliveries",
            "A webhook's delivery log",
            outbound::list_deliveries,
        )
        .tag("webhooks")
        .scope(Scope::Admin)
        .param("id", WEBHOOK)
        .reply::<Items<DeliveryDoc>>(
            200,
            "The last 100 deliveries, most recently attempted first, each with every attempt.",
        )
        .errors(&[404]),
        Operation::new(
            M::POST,
            "/api/v1/webhooks/{id}/test",
            "testWebhook",
            "Send a test delivery",
            outbound::test_webhook,
        )
        .tag("webhooks")
        .scope(Scope::Admin)
        .param("id", WEBHOOK)
        .reply::<outbound::TestDelivery>(202, "A `webhook.test` delivery is on its way.")
        .link(202, "listWebhookDeliveries", &[("id", "$request.path.id")])
        .errors(&[404]),
        // ---- schedules ----
        Operation::new(
            M::POST,
            "/api/v1/schedules",
            "createSchedule",
            "Scan a target on a schedule",
            outbound::create_schedule,
        )
        .tag("schedules")
        .scope(Scope::ScanWrite)
        .body::<outbound::CreateScheduleRequest>()
        .reply::<outbound::CreatedSchedule>(
            201,
            "Scans start with trigger `scheduled` at each due time.",
        )
        .link(201, "deleteSchedule", &[("id", "$response.body#/id")])
        .errors(&[422]),
        Operation::new(
            M::GET,
            "/api/v1/schedules",
            "listSchedules",
            "The tenant's schedules",
            outbound::list_schedules,
        )
        .tag("schedules")
        .scope(Scope::ScanRead)
        .query::<outbound::ProjectQuery>()
        .reply::<Items<outbound::ScheduleResource>>(200, "Oldest first, with the next due time."),
        Operation::new(
            M::DELETE,
            "/api/v1/schedules/{id}",
            "deleteSchedule",
            "Delete a schedule",
            outbound::delete_schedule,
        )
        .tag("schedules")
        .scope(Scope::ScanWrite)
        .param("id", "Schedule id (UUID).")
        .empty(204, "Deleted; it starts no more scans.")
        .errors(&[404]),
    ]
    .into_iter()
    .map(Operation::done)
    .collect()
}
