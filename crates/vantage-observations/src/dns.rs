//! What the DNS probe saw: one question and its answer; and the MTA-STS policy a domain advertises.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a question was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DnsStatus {
    Ok,
    NoRecords,
    Nxdomain,
    Error,
}

impl DnsStatus {
    /// The resolver got an answer (records, none, or "no such name") rather than an error.
    pub fn answered(self) -> bool {
        matches!(self, Self::Ok | Self::NoRecords | Self::Nxdomain)
    }
}

/// One question and its answer (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DnsObservation {
    /// The name the records were found at (for CAA, possibly an ancestor of the one asked).
    pub name: String,
    pub record_type: String,
    pub status: DnsStatus,
    /// Records in presentation format, sorted.
    pub records: Vec<String>,
    pub truncated: bool,
}

/// What fetching a domain's MTA-STS policy found (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MtaStsObservation {
    pub domain: String,
    pub policy_url: String,
    pub status: Option<u16>,
    pub version: Option<String>,
    /// `enforce`, `testing` or `none`.
    pub mode: Option<String>,
    pub max_age: Option<u64>,
    pub mx: Vec<String>,
    pub error: Option<String>,
}
