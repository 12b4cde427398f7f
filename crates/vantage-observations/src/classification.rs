//! What the target is, derived from the HTTP and exposure observations.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kind of site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SiteKind {
    /// An application with sessions or forms.
    Web,
    /// JSON answers or published API documents.
    Api,
    /// HTML without cookies or forms.
    Static,
    /// Every fetched path only redirects.
    Redirect,
    Unknown,
}

/// How the site asks for authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthDetected {
    None,
    /// 401/403 with a WWW-Authenticate challenge.
    HttpAuth,
    /// A page with a password field.
    LoginForm,
}

/// The classification of a target (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Classification {
    pub kind: SiteKind,
    pub auth: AuthDetected,
    pub api_docs: bool,
}
