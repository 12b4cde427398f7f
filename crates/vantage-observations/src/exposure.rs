//! What the exposure probe found: well-known files and pages that should, or should not, be public.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One well-known location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExposureCheck {
    SecurityTxt,
    GitHead,
    EnvFile,
    ServerStatus,
    DirectoryListing,
    OpenApi,
    Swagger,
    ApiDocsPage,
    RobotsTxt,
}

impl ExposureCheck {
    pub const ALL: [ExposureCheck; 9] = [
        Self::SecurityTxt,
        Self::GitHead,
        Self::EnvFile,
        Self::ServerStatus,
        Self::DirectoryListing,
        Self::OpenApi,
        Self::Swagger,
        Self::ApiDocsPage,
        Self::RobotsTxt,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Self::SecurityTxt => "/.well-known/security.txt",
            Self::GitHead => "/.git/HEAD",
            Self::EnvFile => "/.env",
            Self::ServerStatus => "/server-status",
            Self::DirectoryListing => "/",
            Self::OpenApi => "/openapi.json",
            Self::Swagger => "/swagger.json",
            Self::ApiDocsPage => "/docs",
            Self::RobotsTxt => "/robots.txt",
        }
    }

    /// A published API description or its documentation page.
    pub fn is_api_document(self) -> bool {
        matches!(self, Self::OpenApi | Self::Swagger | Self::ApiDocsPage)
    }
}

/// A secret-looking variable of an exposed `.env` file: its kind and line, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnvSecret {
    pub kind: String,
    pub line: usize,
}

/// What a check learned beyond found / not found. Its JSON shape depends on the check, and is
/// exactly what version 1 stored: `null`, or one of the objects below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ExposureDetails {
    None,
    /// security.txt (RFC 9116) fields.
    SecurityTxt {
        contacts: Vec<String>,
        expires: Option<String>,
        /// Expires had passed when the file was fetched (`null`: no readable Expires).
        expired: Option<bool>,
    },
    /// An exposed `.env` file.
    EnvFile {
        variables: usize,
        secrets: Vec<EnvSecret>,
    },
    /// An OpenAPI / Swagger document: its declared version.
    ApiDocument {
        spec_version: Option<String>,
    },
    /// robots.txt's Disallow paths.
    RobotsTxt {
        disallow: Vec<String>,
    },
    /// Why the location could not be fetched.
    Error {
        error: String,
    },
}

/// One check and what it found (version 2).
///
/// Version 2 follows redirects that stay on the same site (at most [`MAX_EXPOSURE_REDIRECTS`],
/// each hop vetted like any other) and judges the response it ends on; a redirect off the site, or
/// one the SSRF guard refuses, is recorded and not followed. Version 1 judged the first response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ExposureObservation {
    pub check: ExposureCheck,
    /// The URL asked for.
    pub url: String,
    /// The status of the response judged.
    pub status: Option<u16>,
    /// The thing checked for is there (for security.txt: present; for the others: exposed).
    pub found: bool,
    pub details: ExposureDetails,
    /// The URL of the response judged, after same-site redirects.
    pub final_url: Option<String>,
    /// The URLs redirected to and followed, in order.
    pub redirects: Vec<String>,
    /// A redirect that was not followed (off the site, or refused by the SSRF guard), and why.
    pub not_followed: Option<crate::http::RefusedRedirect>,
}

/// Most same-site redirects an exposure check follows.
pub const MAX_EXPOSURE_REDIRECTS: usize = 3;

impl ExposureObservation {
    /// Where the judged response came from: the final URL, or the URL asked for.
    pub fn judged_url(&self) -> &str {
        self.final_url.as_deref().unwrap_or(&self.url)
    }
}

/// The stored shape, read before the details are typed by their check.
#[derive(Deserialize)]
struct StoredExposure {
    check: ExposureCheck,
    url: String,
    status: Option<u16>,
    found: bool,
    details: serde_json::Value,
    final_url: Option<String>,
    redirects: Vec<String>,
    not_followed: Option<crate::http::RefusedRedirect>,
}

impl<'de> Deserialize<'de> for ExposureObservation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let stored = StoredExposure::deserialize(deserializer)?;
        let details =
            ExposureDetails::decode(stored.check, stored.details).map_err(D::Error::custom)?;
        Ok(Self {
            check: stored.check,
            url: stored.url,
            status: stored.status,
            found: stored.found,
            details,
            final_url: stored.final_url,
            redirects: stored.redirects,
            not_followed: stored.not_followed,
        })
    }
}

impl ExposureDetails {
    /// Types stored details by the check that wrote them: `null` is none, `{"error": …}` a failed
    /// fetch, anything else the check's own shape.
    fn decode(check: ExposureCheck, details: serde_json::Value) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct SecurityTxt {
            contacts: Vec<String>,
            expires: Option<String>,
            expired: Option<bool>,
        }
        #[derive(Deserialize)]
        struct EnvFile {
            variables: usize,
            secrets: Vec<EnvSecret>,
        }
        #[derive(Deserialize)]
        struct ApiDocument {
            spec_version: Option<String>,
        }
        #[derive(Deserialize)]
        struct RobotsTxt {
            disallow: Vec<String>,
        }
        if details.is_null() {
            return Ok(Self::None);
        }
        if let Some(error) = details.get("error").and_then(|e| e.as_str()) {
            return Ok(Self::Error {
                error: error.to_owned(),
            });
        }
        Ok(match check {
            ExposureCheck::SecurityTxt => {
                let d: SecurityTxt = serde_json::from_value(details)?;
                Self::SecurityTxt {
                    contacts: d.contacts,
                    expires: d.expires,
                    expired: d.expired,
                }
            }
            ExposureCheck::EnvFile => {
                let d: EnvFile = serde_json::from_value(details)?;
                Self::EnvFile {
                    variables: d.variables,
                    secrets: d.secrets,
                }
            }
            ExposureCheck::OpenApi | ExposureCheck::Swagger => {
                let d: ApiDocument = serde_json::from_value(details)?;
                Self::ApiDocument {
                    spec_version: d.spec_version,
                }
            }
            ExposureCheck::RobotsTxt => {
                let d: RobotsTxt = serde_json::from_value(details)?;
                Self::RobotsTxt {
                    disallow: d.disallow,
                }
            }
            other => {
                return Err(serde::de::Error::custom(format!(
                    "the {other:?} check records no details"
                )));
            }
        })
    }
}

/// Upcasts version 1 data to version 2: the first response was the one judged, no redirect was
/// followed.
pub(crate) fn upcast_v1(mut data: serde_json::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    let object = data.as_object_mut().ok_or("not an object")?;
    let answered = object.get("status").is_some_and(|s| !s.is_null());
    let url = object.get("url").cloned().unwrap_or(Value::Null);
    object.insert("final_url".into(), if answered { url } else { Value::Null });
    object.insert("redirects".into(), Value::Array(vec![]));
    object.insert("not_followed".into(), Value::Null);
    Ok(data)
}
