//! What the API hands out for people and tools outside: a scan's report (HTML, PDF, JSON, SARIF,
//! JUnit), its technology inventory (CycloneDX, SPDX), its signed compliance package, the key that
//! signs packages, and the public trust badge with its opt-in. The documents themselves are made by
//! `vantage-reports`; these handlers gather the input and pick the media type.

use axum::extract::{Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vantage_domain::badge::badge_domain;
use vantage_domain::scan::ScanStatus;
use vantage_reports::inventory::{self, InventorySubject};
use vantage_reports::package::{self, PackageInput, Subject};
use vantage_reports::{Report, badge, html, junit, pdf, sarif};
use vantage_rules::Severity;

use crate::AppState;
use crate::auth::{Authorized, command_context};
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, invalid_field};
use crate::request_id::RequestId;
use crate::scans::{parse_scan_id, visible_scan_id};

/// A report's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    /// One self-contained page (`text/html`).
    #[default]
    Html,
    /// The same content as PDF (`application/pdf`).
    Pdf,
    /// The report's data (`application/json`).
    Json,
    /// SARIF 2.1.0 for code-scanning tools (`application/sarif+json`).
    Sarif,
    /// JUnit XML for CI systems (`application/xml`).
    Junit,
}

/// Query of `GET /api/v1/scans/{id}/report`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `html` (default), `pdf`, `json`, `sarif` or `junit`.
    pub format: Option<ReportFormat>,
    /// JUnit only: findings at or above this severity (and not triaged away) fail their rule's test
    /// case [default: high].
    pub fail_on: Option<Severity>,
}

fn with_type(content_type: &'static str, body: impl IntoResponse) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

fn attachment(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

async fn report_of(state: &AppState, caller: &Authorized, id: &str) -> Result<Report, ApiError> {
    let principal = caller.principal();
    let id = visible_scan_id(state, principal, id).await?;
    let now = state.services.pipeline.clock().now();
    state
        .read
        .report(principal.tenant.as_str(), &id.to_string(), now)
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))
}

/// The rules a report's ruleset evaluated (the current ruleset for a scan that did not complete).
fn rules_of(report: &Report) -> Vec<vantage_rules::RuleInfo> {
    let ruleset = report
        .ruleset_version
        .as_deref()
        .unwrap_or(vantage_rules::RULESET_VERSION);
    vantage_rules::rule_catalog(ruleset).unwrap_or_default()
}

/// `GET /api/v1/scans/{id}/report`: the scan's report in the asked format.
pub(crate) async fn scan_report(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<ReportQuery>,
) -> Result<Response, ApiError> {
    let report = report_of(&state, &caller, &id).await?;
    let name = format!("vantage-report-{}", report.scan_id);
    Ok(match query.format.unwrap_or_default() {
        ReportFormat::Html => with_type("text/html; charset=utf-8", html::render(&report)),
        ReportFormat::Pdf => {
            let bytes = tokio::task::spawn_blocking(move || pdf::render(&report))
                .await
                .map_err(|_| ApiError::Internal)?;
            (
                [
                    (CONTENT_TYPE, HeaderValue::from_static("application/pdf")),
                    (CONTENT_DISPOSITION, attachment(&format!("{name}.pdf"))),
                ],
                bytes,
            )
                .into_response()
        }
        ReportFormat::Json => Json(report).into_response(),
        ReportFormat::Sarif => with_type(
            "application/sarif+json",
            Json(sarif::render(&report, &rules_of(&report))),
        ),
        ReportFormat::Junit => with_type(
            "application/xml",
            junit::render(
                &report,
                &rules_of(&report),
                query.fail_on.unwrap_or(Severity::High),
            ),
        ),
    })
}

/// A technology inventory's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InventoryFormat {
    /// CycloneDX 1.5 JSON (`application/vnd.cyclonedx+json`).
    #[default]
    Cyclonedx,
    /// SPDX 2.3 JSON (`application/spdx+json`).
    Spdx,
}

/// Query of `GET /api/v1/scans/{id}/sbom`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryQuery {
    /// `cyclonedx` (default) or `spdx`.
    pub format: Option<InventoryFormat>,
}

/// `GET /api/v1/scans/{id}/sbom`: the software the scan saw from outside, each component with the
/// evidence that named it.
pub(crate) async fn scan_inventory(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<InventoryQuery>,
) -> Result<Response, ApiError> {
    let principal = caller.principal();
    let scan_id = visible_scan_id(&state, principal, &id).await?;
    let Some(scan) = state
        .read
        .scan(principal.tenant.as_str(), &scan_id.to_string())
        .await?
    else {
        return Err(ApiError::not_found("scan"));
    };
    let observations: Vec<_> = crate::scans::observed(&state, scan_id)
        .await?
        .into_iter()
        .map(|(observed, _)| observed)
        .collect();
    let components = inventory::components(&observations);
    let subject = InventorySubject {
        scan_id: scan_id.0,
        target: scan.spec.target.as_str(),
        domain: &scan.domain,
        observed_at: scan.finished_at.unwrap_or(scan.updated_at),
    };
    Ok(match query.format.unwrap_or_default() {
        InventoryFormat::Cyclonedx => with_type(
            "application/vnd.cyclonedx+json",
            Json(inventory::cyclonedx(&subject, &components)),
        ),
        InventoryFormat::Spdx => with_type(
            "application/spdx+json",
            Json(inventory::spdx(&subject, &components)),
        ),
    })
}

/// Query of `GET /api/v1/scans/{id}/compliance-package`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageQuery {
    /// A framework id (`owasp-asvs`, `pci-dss`, `nist-sp-800-52`, `iso-27001`, `soc2`) for
    /// `coverage.json`; every framework when absent.
    pub framework: Option<String>,
}

/// `GET /api/v1/scans/{id}/compliance-package`: the signed evidence package of a completed scan.
pub(crate) async fn compliance_package(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<PackageQuery>,
) -> Result<Response, ApiError> {
    let frameworks = package::frameworks(query.framework.as_deref())
        .map_err(|reason| invalid_field("framework", reason))?;
    let report = report_of(&state, &caller, &id).await?;
    if report.status != ScanStatus::Completed {
        return Err(ApiError::Conflict {
            code: "scan_not_completed",
            detail: format!(
                "the scan is {}; only a completed scan has a compliance package",
                report.status.as_str()
            ),
        });
    }
    let scan_id = parse_scan_id(&report.scan_id)?;
    let evidence = vantage_projections::reporting::scan_evidence(
        state.services.store().as_ref(),
        &vantage_app::scan_stream(scan_id),
    )
    .await?;
    let key = state.services.signing_key.clone();
    let tenant = caller.principal().tenant.as_str().to_owned();
    let created_at = report.generated_at;
    let name = format!(
        "vantage-{}-{}.tar.gz",
        report.scan_id,
        query.framework.as_deref().unwrap_or("all")
    );
    let archive = tokio::task::spawn_blocking(move || {
        package::build(PackageInput {
            tenant,
            subject: Subject::Scan {
                scan_id: report.scan_id.clone(),
            },
            frameworks,
            scans: vec![evidence],
            report_html: html::render(&report),
            created_at,
            key: &key,
        })
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(|error| {
        tracing::error!(%error, "a compliance package could not be made");
        ApiError::Internal
    })?;
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/gzip")),
            (CONTENT_DISPOSITION, attachment(&name)),
        ],
        archive,
    )
        .into_response())
}

/// The key that signs compliance packages.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SigningKeyView {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The public key as an SPKI PEM document (what `openssl pkeyutl -verify -pubin` reads).
    pub public_key_pem: String,
    /// SHA-256 of the raw 32-byte key, hex: compare it with a package's `public_key_sha256`.
    pub sha256: String,
}

/// `GET /api/v1/compliance/signing-key`: the public key that signs this server's packages.
pub(crate) async fn signing_key(State(state): State<AppState>) -> Json<SigningKeyView> {
    let public = state.services.signing_key.public_key();
    Json(SigningKeyView {
        algorithm: "Ed25519",
        public_key_pem: public.to_pem(),
        sha256: public.fingerprint(),
    })
}

/// Body of `PUT /api/v1/domains/{domain}/badge`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({ "enabled": true }))]
pub struct BadgeRequest {
    /// Show the domain's latest grade on the public badge (`true`) or stop (`false`).
    pub enabled: bool,
}

/// A domain's badge setting.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BadgeSetting {
    pub domain: String,
    pub enabled: bool,
    /// Where the badge is served (no authentication; 404 while disabled).
    pub badge_url: String,
}

/// `PUT /api/v1/domains/{domain}/badge`: opt a domain's badge in or out.
pub(crate) async fn set_badge(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(domain): Path<String>,
    body: JsonBody<BadgeRequest>,
) -> Result<Json<BadgeSetting>, ApiError> {
    let principal = caller.principal();
    let context = command_context(principal, &request_id);
    let enabled = body.value.enabled;
    let domain = state
        .services
        .set_badge(&context, &domain, enabled)
        .await??;
    Ok(Json(BadgeSetting {
        badge_url: format!("/badge/{domain}.svg"),
        domain,
        enabled,
    }))
}

/// How long browsers and proxies may keep a badge.
const BADGE_MAX_AGE_SECONDS: u32 = 300;

/// `GET /badge/{domain}.svg`: the latest grade of a domain whose owner opted in (404 otherwise).
pub(crate) async fn badge_svg(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("badge");
    let domain = file
        .strip_suffix(".svg")
        .and_then(|name| badge_domain(name).ok())
        .ok_or_else(not_found)?;
    let latest = state.read.badge(&domain).await?.ok_or_else(not_found)?;
    let grade = latest
        .as_ref()
        .and_then(|scan| scan.overall.as_ref())
        .and_then(|overall| overall.grade.as_deref());
    let svg = badge::render(grade);
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(svg.as_bytes())[..16]));
    let etag_value = HeaderValue::from_str(&etag).map_err(|_| ApiError::Internal)?;
    let common = [
        (
            CACHE_CONTROL,
            HeaderValue::from_str(&format!("public, max-age={BADGE_MAX_AGE_SECONDS}"))
                .map_err(|_| ApiError::Internal)?,
        ),
        (ETAG, etag_value),
        (
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        ),
    ];
    let unchanged = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    Ok((
        common,
        [(CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"))],
        svg,
    )
        .into_response())
}
