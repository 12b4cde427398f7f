//! API key scopes and what each one allows.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// One permission an API key can carry. `admin` implies every other scope.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Scope {
    #[serde(rename = "scan:read")]
    ScanRead,
    #[serde(rename = "scan:write")]
    ScanWrite,
    #[serde(rename = "triage:write")]
    TriageWrite,
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Read the content samples scans kept (never part of any other view).
    #[serde(rename = "content:read")]
    ContentRead,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::ScanRead,
        Scope::ScanWrite,
        Scope::TriageWrite,
        Scope::AuditRead,
        Scope::ContentRead,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ScanRead => "scan:read",
            Scope::ScanWrite => "scan:write",
            Scope::TriageWrite => "triage:write",
            Scope::AuditRead => "audit:read",
            Scope::ContentRead => "content:read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = DomainError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == raw)
            .ok_or_else(|| {
                DomainError::invalid(
                    "scopes",
                    format!(
                        "unknown scope {raw:?}; expected one of scan:read, scan:write, triage:write, audit:read, content:read, admin"
                    ),
                )
            })
    }
}

/// A non-empty set of scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "BTreeSet<Scope>", into = "BTreeSet<Scope>")]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Result<Self, DomainError> {
        let set: BTreeSet<Scope> = scopes.into_iter().collect();
        if set.is_empty() {
            return Err(DomainError::invalid(
                "scopes",
                "at least one scope is required",
            ));
        }
        Ok(Self(set))
    }

    pub fn admin() -> Self {
        Self(BTreeSet::from([Scope::Admin]))
    }

    /// Whether these scopes grant `needed` (`admin` grants everything).
    pub fn allows(&self, needed: Scope) -> bool {
        self.0.contains(&Scope::Admin) || self.0.contains(&needed)
    }

    pub fn is_admin(&self) -> bool {
        self.0.contains(&Scope::Admin)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl TryFrom<BTreeSet<Scope>> for Scopes {
    type Error = DomainError;
    fn try_from(set: BTreeSet<Scope>) -> Result<Self, Self::Error> {
        Self::new(set)
    }
}

impl From<Scopes> for BTreeSet<Scope> {
    fn from(scopes: Scopes) -> Self {
        scopes.0
    }
}
