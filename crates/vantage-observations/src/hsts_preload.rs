//! Whether a host is on Chromium's HSTS preload list — browsers then reach it over HTTPS only,
//! before any response — as the copy of the list bundled with the scanner says; the list's date is
//! in every observation, so a verdict names what it was judged against.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The preload state of one host (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HstsPreloadObservation {
    pub host: String,
    /// The date of the list consulted (`YYYY-MM-DD`).
    pub list_date: String,
    /// The list's entry that covers the host: the host itself, or a parent listed with
    /// `include_subdomains`; absent when none does.
    pub entry: Option<String>,
    /// Whether that entry covers its subdomains too.
    pub include_subdomains: Option<bool>,
}

impl HstsPreloadObservation {
    /// Browsers preload HTTPS for the host.
    pub fn preloaded(&self) -> bool {
        self.entry.is_some()
    }

    /// The host itself is an entry (not only covered by a parent's).
    pub fn listed_itself(&self) -> bool {
        self.entry.as_deref() == Some(self.host.as_str())
    }
}
