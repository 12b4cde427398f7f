//! The exposure probe: well-known files and pages that should, or should not, be public.
//!
//! Each check fetches one path on the target's origin (no redirects followed) and inspects the body
//! in memory. Nothing of a body is stored except facts about it: a `.env` file is reported by the
//! *kinds* of secrets it holds and their line numbers, never by a value.

use std::net::SocketAddr;

use url::Url;
use vantage_observations::exposure::{
    EnvSecret, ExposureCheck, ExposureDetails, ExposureObservation, MAX_EXPOSURE_REDIRECTS,
};
use vantage_observations::http::RefusedRedirect;

use crate::http::fetch;
use crate::ssrf::SsrfGuard;
use crate::tls::TlsRoots;

/// Key names whose values are secrets, by kind.
const SECRET_KINDS: [(&str, &str); 8] = [
    ("AWS_SECRET_ACCESS_KEY", "aws_secret_key"),
    ("DATABASE_URL", "database_url"),
    ("PASSWORD", "password"),
    ("PASSWD", "password"),
    ("SECRET", "secret"),
    ("TOKEN", "token"),
    ("API_KEY", "api_key"),
    ("PRIVATE_KEY", "private_key"),
];

/// What a `.env` body holds, without its values: (kind, 1-based line) of every secret-looking key.
pub fn env_secrets(body: &str) -> (usize, Vec<(String, usize)>) {
    let mut assignments = 0;
    let mut secrets = Vec::new();
    for (index, line) in body.lines().enumerate() {
        let line = line.trim().trim_start_matches("export ");
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let is_key = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            && !key.starts_with(|c: char| c.is_ascii_digit());
        if !is_key {
            continue;
        }
        assignments += 1;
        if value.trim().is_empty() {
            continue;
        }
        if let Some((_, kind)) = SECRET_KINDS.iter().find(|(needle, _)| key.contains(needle)) {
            secrets.push(((*kind).to_owned(), index + 1));
        }
    }
    (assignments, secrets)
}

/// RFC 9116 fields of a security.txt: Contact values and the Expires date, as written.
pub fn security_txt(body: &str) -> ExposureDetails {
    let mut contacts = Vec::new();
    let mut expires = None;
    for line in body.lines() {
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        match field.trim().to_ascii_lowercase().as_str() {
            "contact" if contacts.len() < 5 => {
                contacts.push(value.trim().chars().take(200).collect::<String>())
            }
            "expires" => expires = Some(value.trim().chars().take(64).collect::<String>()),
            _ => {}
        }
    }
    // RFC 9116: Expires is required; past it, the file must not be trusted. Judged now, like a
    // certificate's days left.
    let now = crate::unix_now();
    let expired = expires
        .as_deref()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .map(|e| e.timestamp() < now);
    ExposureDetails::SecurityTxt {
        contacts,
        expires,
        expired,
    }
}

fn inspect(
    check: ExposureCheck,
    status: u16,
    content_type: &str,
    body: &str,
) -> (bool, ExposureDetails) {
    let ok = status == 200;
    let lower = body.to_ascii_lowercase();
    match check {
        ExposureCheck::SecurityTxt => {
            let found = ok && lower.contains("contact:");
            (
                found,
                if found {
                    security_txt(body)
                } else {
                    ExposureDetails::None
                },
            )
        }
        ExposureCheck::GitHead => {
            let head = body.trim();
            let found = ok
                && (head.starts_with("ref: refs/")
                    || (head.len() == 40 && head.bytes().all(|b| b.is_ascii_hexdigit())));
            (found, ExposureDetails::None)
        }
        ExposureCheck::EnvFile => {
            let (assignments, secrets) = env_secrets(body);
            let found = ok && !content_type.contains("html") && assignments > 0;
            let secrets: Vec<EnvSecret> = secrets
                .into_iter()
                .take(20)
                .map(|(kind, line)| EnvSecret { kind, line })
                .collect();
            (
                found,
                if found {
                    ExposureDetails::EnvFile {
                        variables: assignments,
                        secrets,
                    }
                } else {
                    ExposureDetails::None
                },
            )
        }
        ExposureCheck::ServerStatus => (
            ok && (lower.contains("apache server status") || lower.contains("server uptime")),
            ExposureDetails::None,
        ),
        ExposureCheck::DirectoryListing => (
            ok && (lower.contains("<title>index of /") || lower.contains("<h1>index of /")),
            ExposureDetails::None,
        ),
        ExposureCheck::OpenApi | ExposureCheck::Swagger => {
            let document: Option<serde_json::Value> = serde_json::from_str(body).ok();
            let version = document.as_ref().and_then(|d| {
                d.get("openapi")
                    .or_else(|| d.get("swagger"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            });
            (
                ok && version.is_some(),
                ExposureDetails::ApiDocument {
                    spec_version: version,
                },
            )
        }
        ExposureCheck::ApiDocsPage => (
            ok && (lower.contains("swagger-ui")
                || lower.contains("redoc")
                || lower.contains("scalar")),
            ExposureDetails::None,
        ),
        ExposureCheck::RobotsTxt => {
            let disallow: Vec<String> = body
                .lines()
                .filter_map(|l| {
                    l.trim()
                        .strip_prefix("Disallow:")
                        .map(|p| p.trim().chars().take(200).collect())
                })
                .filter(|p: &String| !p.is_empty())
                .take(20)
                .collect();
            let found = ok && lower.contains("user-agent");
            (
                found,
                if found {
                    ExposureDetails::RobotsTxt { disallow }
                } else {
                    ExposureDetails::None
                },
            )
        }
    }
}

/// The response a check judges, after following same-site redirects.
struct Judged {
    response: Result<crate::http::Fetched, String>,
    final_url: Url,
    redirects: Vec<String>,
    not_followed: Option<RefusedRedirect>,
}

/// Fetches `url` (on `origin`, at the vetted `address`), following redirects that stay on the
/// origin's site — at most [`MAX_EXPOSURE_REDIRECTS`], each hop's host vetted by the guard — and
/// returns the response it ends on. A redirect off the site, or one the guard refuses, is noted and
/// its response is the one judged.
async fn fetch_on_site(
    guard: &SsrfGuard,
    roots: &TlsRoots,
    origin: &Url,
    url: Url,
    address: SocketAddr,
) -> Judged {
    let site = origin.host_str().unwrap_or_default().to_owned();
    let mut current = url;
    let mut address = address;
    let mut redirects = Vec::new();
    loop {
        let host = current.host_str().unwrap_or_default().to_owned();
        let response = fetch(&host, address, &current, roots).await;
        let next = match &response {
            Ok(fetched)
                if (300..400).contains(&fetched.status)
                    && redirects.len() < MAX_EXPOSURE_REDIRECTS =>
            {
                fetched
                    .location
                    .as_deref()
                    .and_then(|location| current.join(location).ok())
                    .filter(|next| matches!(next.scheme(), "http" | "https"))
            }
            _ => None,
        };
        let Some(next) = next else {
            return Judged {
                response,
                final_url: current,
                redirects,
                not_followed: None,
            };
        };
        let next_host = next.host_str().unwrap_or_default().to_owned();
        let refusal = if crate::site::same_site(&next_host, &site) {
            match guard.vet_host(&next_host).await {
                Ok(vetted) => match vetted.first() {
                    Some(ip) => {
                        address = SocketAddr::new(*ip, next.port_or_known_default().unwrap_or(80));
                        None
                    }
                    None => Some("no vetted address".to_owned()),
                },
                Err(refused) => Some(refused.to_string()),
            }
        } else {
            Some("the redirect leaves the site".to_owned())
        };
        if let Some(reason) = refusal {
            return Judged {
                response,
                final_url: current,
                redirects,
                not_followed: Some(RefusedRedirect {
                    url: next.to_string(),
                    reason,
                }),
            };
        }
        redirects.push(next.to_string());
        current = next;
    }
}

/// Runs every check against `origin` (scheme, host and port), connecting to `address`.
pub async fn probe_exposure(
    guard: &SsrfGuard,
    roots: &TlsRoots,
    origin: &Url,
    address: SocketAddr,
) -> Vec<ExposureObservation> {
    let checks = ExposureCheck::ALL.iter().map(|check| async move {
        let url = origin.join(check.path()).unwrap_or_else(|_| origin.clone());
        let judged = fetch_on_site(guard, roots, origin, url.clone(), address).await;
        let (status, found, details, final_url) = match judged.response {
            Ok(response) => {
                let content_type = response
                    .headers
                    .get("content-type")
                    .cloned()
                    .unwrap_or_default();
                let body = String::from_utf8_lossy(&response.body);
                let (found, details) = inspect(*check, response.status, &content_type, &body);
                (
                    Some(response.status),
                    found,
                    details,
                    Some(judged.final_url.to_string()),
                )
            }
            Err(error) => (None, false, ExposureDetails::Error { error }, None),
        };
        ExposureObservation {
            check: *check,
            url: url.to_string(),
            status,
            found,
            details,
            final_url,
            redirects: judged.redirects,
            not_followed: judged.not_followed,
        }
    });
    futures::future::join_all(checks).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_secrets_are_kinds_and_lines_never_values() {
        let body = "# comment\nAPP_NAME=shop\nDB_PASSWORD=hunter2\nexport STRIPE_API_KEY=sk_live_123\nEMPTY_TOKEN=\nnot a line\n";
        let (assignments, secrets) = env_secrets(body);
        assert_eq!(assignments, 4);
        assert_eq!(
            secrets,
            vec![("password".to_owned(), 3), ("api_key".to_owned(), 4)]
        );
        let (found, details) = inspect(ExposureCheck::EnvFile, 200, "text/plain", body);
        assert!(found);
        let text = serde_json::to_string(&details).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("sk_live_123"),
            "{text}"
        );
    }

    #[test]
    fn soft_404_pages_are_not_exposures() {
        let page = "<html><head><title>Not found</title></head><body>nothing here</body></html>";
        for check in ExposureCheck::ALL {
            if check == ExposureCheck::DirectoryListing {
                continue;
            }
            let (found, _) = inspect(check, 200, "text/html", page);
            assert!(
                !found,
                "{check:?} fired on an HTML 'not found' page served with 200"
            );
        }
    }
}
