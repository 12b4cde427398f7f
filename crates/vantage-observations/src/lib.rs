//! Typed observations: what each probe saw of a target, as versioned data types.
//!
//! Probes produce these types, and rules, grading and classification read them by type — never by
//! looking up string keys in a JSON tree, so a renamed field is a compile error, not a silently
//! changed verdict. Each observation type has a version of its own: the version a scan recorded is
//! stored beside its data, an older shape is brought up to the current one on read by pure upcast
//! steps on JSON (like events: stored observations are never rewritten), and every version has a
//! JSON Schema in `schemas/observations/`.
//!
//! This crate is data and decoding only: no I/O, no clock, no network — what the probes judged at
//! the time (a certificate's days left, whether a security.txt had expired) is recorded as a fact.

pub mod cipher_suites;
pub mod classification;
pub mod dns;
pub mod dnssec;
pub mod dual_stack;
pub mod exposure;
pub mod hsts_preload;
pub mod http;
pub mod mail;
pub mod tcp;
pub mod tls;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use classification::Classification;
pub use dns::{DnsObservation, MtaStsObservation};
pub use dnssec::{DaneObservation, DnssecObservation};
pub use dual_stack::DualStackObservation;
pub use exposure::ExposureObservation;
pub use hsts_preload::HstsPreloadObservation;
pub use http::HttpObservation;
pub use mail::SmtpTlsObservation;
pub use tcp::TcpObservation;
pub use tls::TlsObservation;

/// Which probe saw something. The stored name is also part of deterministic observation ids: never
/// change one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Dns,
    Tcp,
    Tls,
    Http,
    Exposure,
    Classification,
    /// A domain's MTA-STS policy (before this kind existed, policies were recorded as `dns`).
    MtaSts,
    /// A host's HSTS preload state, from the bundled copy of Chromium's list.
    HstsPreload,
    /// Answers about a domain through the validating resolver, with their DNSSEC proof.
    Dnssec,
    /// A TLS service's TLSA records and the chain it presented.
    Dane,
    /// A mail exchanger's STARTTLS and the TLS behind it.
    SmtpTls,
    /// A web origin's start page asked for over IPv4 and over IPv6.
    DualStack,
}

impl ProbeKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Http => "http",
            Self::Exposure => "exposure",
            Self::Classification => "classification",
            Self::MtaSts => "mta_sts",
            Self::HstsPreload => "hsts_preload",
            Self::Dnssec => "dnssec",
            Self::Dane => "dane",
            Self::SmtpTls => "smtp_tls",
            Self::DualStack => "dual_stack",
        }
    }
}

/// One observation, typed by what saw it. Serialised as its data alone (the kind and version are
/// stored beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Observation {
    Dns(DnsObservation),
    MtaSts(MtaStsObservation),
    Tcp(TcpObservation),
    Tls(TlsObservation),
    /// Boxed: it is by far the largest, and most observations of a scan are of other kinds.
    Http(Box<HttpObservation>),
    Exposure(ExposureObservation),
    Classification(Classification),
    HstsPreload(HstsPreloadObservation),
    Dnssec(DnssecObservation),
    Dane(DaneObservation),
    SmtpTls(SmtpTlsObservation),
    DualStack(Box<DualStackObservation>),
}

/// A stored observation that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObservationError {
    #[error("{kind} observation v{version} is newer than this build understands (v{current})")]
    FutureVersion {
        kind: &'static str,
        version: u32,
        current: u32,
    },
    #[error("{kind} observation v{version} does not fit its schema: {reason}")]
    BadData {
        kind: &'static str,
        version: u32,
        reason: String,
    },
}

/// One entry of the catalog: an observation type's stored kind, its current version, its schema.
#[derive(Debug, Clone, Copy)]
pub struct ObservationTypeInfo {
    pub kind: ProbeKind,
    pub version: u32,
    pub schema: fn() -> schemars::Schema,
}

/// Every observation type at its current version.
pub const CATALOG: &[ObservationTypeInfo] = &[
    ObservationTypeInfo {
        kind: ProbeKind::Dns,
        version: 1,
        schema: || schemars::schema_for!(DnsObservation),
    },
    ObservationTypeInfo {
        kind: ProbeKind::MtaSts,
        version: 1,
        schema: || schemars::schema_for!(MtaStsObservation),
    },
    ObservationTypeInfo {
        kind: ProbeKind::Tcp,
        version: 1,
        schema: || schemars::schema_for!(TcpObservation),
    },
    ObservationTypeInfo {
        kind: ProbeKind::Tls,
        version: 4,
        schema: || schemars::schema_for!(TlsObservation),
    },
    ObservationTypeInfo {
        kind: ProbeKind::Http,
        version: 2,
        schema: || schemars::schema_for!(HttpObservation),
    },
    ObservationTypeInfo {
        kind: ProbeKind::Exposure,
        version: 2,
        schema: || schemars::schema_for!(ExposureObservation),
    },
    ObservationTypeInfo {
        kind: ProbeKind::Classification,
        version: 1,
        schema: || schemars::schema_for!(Classification),
    },
    ObservationTypeInfo {
        kind: ProbeKind::HstsPreload,
        version: 1,
        schema: || schemars::schema_for!(HstsPreloadObservation),
    },
    ObservationTypeInfo {
        kind: ProbeKind::Dnssec,
        version: 1,
        schema: || schemars::schema_for!(DnssecObservation),
    },
    ObservationTypeInfo {
        kind: ProbeKind::Dane,
        version: 1,
        schema: || schemars::schema_for!(DaneObservation),
    },
    ObservationTypeInfo {
        kind: ProbeKind::SmtpTls,
        version: 1,
        schema: || schemars::schema_for!(SmtpTlsObservation),
    },
    ObservationTypeInfo {
        kind: ProbeKind::DualStack,
        version: 1,
        schema: || schemars::schema_for!(DualStackObservation),
    },
];

/// The current version of `kind`'s observation type.
pub fn current_version(kind: ProbeKind) -> u32 {
    CATALOG
        .iter()
        .find(|info| info.kind == kind)
        .map_or(1, |info| info.version)
}

impl Observation {
    /// The probe kind this observation is stored under.
    pub fn kind(&self) -> ProbeKind {
        match self {
            Self::Dns(_) => ProbeKind::Dns,
            Self::MtaSts(_) => ProbeKind::MtaSts,
            Self::Tcp(_) => ProbeKind::Tcp,
            Self::Tls(_) => ProbeKind::Tls,
            Self::Http(_) => ProbeKind::Http,
            Self::Exposure(_) => ProbeKind::Exposure,
            Self::Classification(_) => ProbeKind::Classification,
            Self::HstsPreload(_) => ProbeKind::HstsPreload,
            Self::Dnssec(_) => ProbeKind::Dnssec,
            Self::Dane(_) => ProbeKind::Dane,
            Self::SmtpTls(_) => ProbeKind::SmtpTls,
            Self::DualStack(_) => ProbeKind::DualStack,
        }
    }

    /// The version this observation is written as (always its type's current version).
    pub fn version(&self) -> u32 {
        current_version(self.kind())
    }

    /// Reads stored data of `kind` at `version`: straight from its text when it is current, through
    /// the upcast steps otherwise.
    pub fn decode(kind: ProbeKind, version: u32, data: &str) -> Result<Self, ObservationError> {
        let current = check_version(kind, version)?;
        if version == current {
            return parse_text(kind, data).map_err(|e| bad_data(kind, version, &e));
        }
        let value: Value = serde_json::from_str(data).map_err(|e| bad_data(kind, version, &e))?;
        Self::decode_value(kind, version, value)
    }

    /// Deserialises data of `kind` at `version` from any serde deserializer: straight into its type
    /// when the version is current, through a JSON value and the upcast steps otherwise.
    pub fn deserialize_stored<'de, D: serde::Deserializer<'de>>(
        kind: ProbeKind,
        version: u32,
        deserializer: D,
    ) -> Result<Self, D::Error> {
        use serde::de::Error;
        let current = check_version(kind, version).map_err(D::Error::custom)?;
        if version != current || kind == ProbeKind::Dns {
            // `dns` data may be an MTA-STS policy recorded before that kind existed: look first.
            let value = Value::deserialize(deserializer)?;
            return Self::decode_value(kind, version, value).map_err(D::Error::custom);
        }
        Ok(match kind {
            ProbeKind::Dns => Self::Dns(Deserialize::deserialize(deserializer)?),
            ProbeKind::MtaSts => Self::MtaSts(Deserialize::deserialize(deserializer)?),
            ProbeKind::Tcp => Self::Tcp(Deserialize::deserialize(deserializer)?),
            ProbeKind::Tls => Self::Tls(Deserialize::deserialize(deserializer)?),
            ProbeKind::Http => Self::Http(Box::new(Deserialize::deserialize(deserializer)?)),
            ProbeKind::Exposure => Self::Exposure(Deserialize::deserialize(deserializer)?),
            ProbeKind::Classification => {
                Self::Classification(Deserialize::deserialize(deserializer)?)
            }
            ProbeKind::HstsPreload => Self::HstsPreload(Deserialize::deserialize(deserializer)?),
            ProbeKind::Dnssec => Self::Dnssec(Deserialize::deserialize(deserializer)?),
            ProbeKind::Dane => Self::Dane(Deserialize::deserialize(deserializer)?),
            ProbeKind::SmtpTls => Self::SmtpTls(Deserialize::deserialize(deserializer)?),
            ProbeKind::DualStack => {
                Self::DualStack(Box::new(Deserialize::deserialize(deserializer)?))
            }
        })
    }

    /// Reads stored data of `kind` at `version` from a JSON value (upcast when older).
    pub fn decode_value(
        kind: ProbeKind,
        version: u32,
        data: Value,
    ) -> Result<Self, ObservationError> {
        check_version(kind, version)?;
        let data = upcast(kind, version, data).map_err(|e| bad_data(kind, version, &e))?;
        parse_value(kind, data).map_err(|e| bad_data(kind, version, &e))
    }
}

fn check_version(kind: ProbeKind, version: u32) -> Result<u32, ObservationError> {
    let current = current_version(kind);
    if version > current {
        return Err(ObservationError::FutureVersion {
            kind: kind.as_str(),
            version,
            current,
        });
    }
    Ok(current)
}

fn bad_data(kind: ProbeKind, version: u32, reason: &dyn std::fmt::Display) -> ObservationError {
    ObservationError::BadData {
        kind: kind.as_str(),
        version,
        reason: reason.to_string(),
    }
}

/// Data of `kind` at its current version, from its text.
fn parse_text(kind: ProbeKind, text: &str) -> Result<Observation, serde_json::Error> {
    Ok(match kind {
        // Before MTA-STS had a kind of its own, policies were recorded as `dns` observations.
        ProbeKind::Dns => match serde_json::from_str(text) {
            Ok(records) => Observation::Dns(records),
            Err(error) => serde_json::from_str(text)
                .map(Observation::MtaSts)
                .map_err(|_| error)?,
        },
        ProbeKind::MtaSts => Observation::MtaSts(serde_json::from_str(text)?),
        ProbeKind::Tcp => Observation::Tcp(serde_json::from_str(text)?),
        ProbeKind::Tls => Observation::Tls(serde_json::from_str(text)?),
        ProbeKind::Http => Observation::Http(Box::new(serde_json::from_str(text)?)),
        ProbeKind::Exposure => Observation::Exposure(serde_json::from_str(text)?),
        ProbeKind::Classification => Observation::Classification(serde_json::from_str(text)?),
        ProbeKind::HstsPreload => Observation::HstsPreload(serde_json::from_str(text)?),
        ProbeKind::Dnssec => Observation::Dnssec(serde_json::from_str(text)?),
        ProbeKind::Dane => Observation::Dane(serde_json::from_str(text)?),
        ProbeKind::SmtpTls => Observation::SmtpTls(serde_json::from_str(text)?),
        ProbeKind::DualStack => Observation::DualStack(Box::new(serde_json::from_str(text)?)),
    })
}

/// Data of `kind` at its current version, from a JSON value.
fn parse_value(kind: ProbeKind, value: Value) -> Result<Observation, serde_json::Error> {
    Ok(match kind {
        ProbeKind::Dns if value.get("policy_url").is_some() => {
            Observation::MtaSts(serde_json::from_value(value)?)
        }
        ProbeKind::Dns => Observation::Dns(serde_json::from_value(value)?),
        ProbeKind::MtaSts => Observation::MtaSts(serde_json::from_value(value)?),
        ProbeKind::Tcp => Observation::Tcp(serde_json::from_value(value)?),
        ProbeKind::Tls => Observation::Tls(serde_json::from_value(value)?),
        ProbeKind::Http => Observation::Http(Box::new(serde_json::from_value(value)?)),
        ProbeKind::Exposure => Observation::Exposure(serde_json::from_value(value)?),
        ProbeKind::Classification => Observation::Classification(serde_json::from_value(value)?),
        ProbeKind::HstsPreload => Observation::HstsPreload(serde_json::from_value(value)?),
        ProbeKind::Dnssec => Observation::Dnssec(serde_json::from_value(value)?),
        ProbeKind::Dane => Observation::Dane(serde_json::from_value(value)?),
        ProbeKind::SmtpTls => Observation::SmtpTls(serde_json::from_value(value)?),
        ProbeKind::DualStack => Observation::DualStack(Box::new(serde_json::from_value(value)?)),
    })
}

/// Brings stored data of `kind` from `version` to the current version, one pure step at a time.
/// A released step never changes; a new shape is a new step.
fn upcast(kind: ProbeKind, mut version: u32, mut data: Value) -> Result<Value, String> {
    let current = current_version(kind);
    while version < current {
        data = match (kind, version) {
            (ProbeKind::Http, 1) => http::upcast_v1(data)?,
            (ProbeKind::Exposure, 1) => exposure::upcast_v1(data)?,
            (ProbeKind::Tls, 1) => tls::upcast_v1(data)?,
            (ProbeKind::Tls, 2) => tls::upcast_v2(data)?,
            (ProbeKind::Tls, 3) => tls::upcast_v3(data)?,
            _ => return Err(format!("no upcast step from v{version}")),
        };
        version += 1;
    }
    Ok(data)
}

macro_rules! observation_from {
    ($($variant:ident($type:ty)),+ $(,)?) => {
        $(impl From<$type> for Observation {
            fn from(data: $type) -> Self {
                Self::$variant(data)
            }
        })+
    };
}

observation_from! {
    Dns(DnsObservation),
    MtaSts(MtaStsObservation),
    Tcp(TcpObservation),
    Tls(TlsObservation),
    Exposure(ExposureObservation),
    Classification(Classification),
    HstsPreload(HstsPreloadObservation),
    Dnssec(DnssecObservation),
    Dane(DaneObservation),
    SmtpTls(SmtpTlsObservation),
}

impl From<DualStackObservation> for Observation {
    fn from(data: DualStackObservation) -> Self {
        Self::DualStack(Box::new(data))
    }
}

impl From<HttpObservation> for Observation {
    fn from(data: HttpObservation) -> Self {
        Self::Http(Box::new(data))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KINDS: [ProbeKind; 12] = [
        ProbeKind::Dns,
        ProbeKind::Tcp,
        ProbeKind::Tls,
        ProbeKind::Http,
        ProbeKind::Exposure,
        ProbeKind::Classification,
        ProbeKind::MtaSts,
        ProbeKind::HstsPreload,
        ProbeKind::Dnssec,
        ProbeKind::Dane,
        ProbeKind::SmtpTls,
        ProbeKind::DualStack,
    ];

    /// Arbitrary JSON: nulls, booleans, numbers, strings, and nested arrays and objects.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,12}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Stored data of any shape, text or value, any version, decodes or is refused; it never panics.
        #[test]
        fn any_stored_data_is_decoded_or_refused(data in json(), text in "\\PC{0,64}", version in 0u32..4) {
            for kind in KINDS {
                let _ = Observation::decode_value(kind, version, data.clone());
                let _ = Observation::decode(kind, version, &data.to_string());
                let _ = Observation::decode(kind, version, &text);
            }
        }
    }

    #[test]
    fn versions_from_the_future_are_refused() {
        let refused = Observation::decode(ProbeKind::Tcp, 9, "{}").unwrap_err();
        assert!(matches!(
            refused,
            ObservationError::FutureVersion { version: 9, .. }
        ));
    }
}
