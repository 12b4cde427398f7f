//! The trust badge opt-in (stream `badge-<tenant>-<domain>`): a tenant shows the latest grade of one
//! of its domains on the public badge only after it said so, and can take it back. Setting the state
//! it already has appends nothing.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain_events;
use crate::target::{ScanTarget, TargetKind};
use crate::tenant::TenantId;
use crate::{Aggregate, DomainError};

domain_events! {
    /// Everything that can happen to a domain's badge.
    pub enum BadgeEvent {
        BadgeEnabled = 1,
        BadgeDisabled = 1,
    }
}

/// The owner opted the domain's badge in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BadgeEnabled {
    pub tenant: TenantId,
    pub domain: String,
}

/// The owner took the badge back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BadgeDisabled {
    pub tenant: TenantId,
    pub domain: String,
}

/// A bare domain name as scans name domains (`ScanTarget::host` of a name target): lower-case,
/// punycode, no scheme, port or path.
pub fn badge_domain(raw: &str) -> Result<String, DomainError> {
    let target = ScanTarget::parse(raw)
        .map_err(|_| DomainError::invalid("domain", "must be a domain name such as example.com"))?;
    if target.kind() != TargetKind::Domain {
        return Err(DomainError::invalid(
            "domain",
            "must be a bare domain name, not a URL",
        ));
    }
    Ok(target.host().to_owned())
}

/// Set a domain's badge on or off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetBadge {
    pub tenant: TenantId,
    pub domain: String,
    pub enabled: bool,
}

/// Whether the badge is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Badge {
    pub enabled: bool,
}

impl Aggregate for Badge {
    type Command = SetBadge;
    type Event = BadgeEvent;

    fn handle(&self, command: SetBadge) -> Result<Vec<BadgeEvent>, DomainError> {
        let domain = badge_domain(&command.domain)?;
        if command.enabled == self.enabled {
            return Ok(Vec::new());
        }
        let tenant = command.tenant;
        Ok(vec![if command.enabled {
            BadgeEnabled { tenant, domain }.into()
        } else {
            BadgeDisabled { tenant, domain }.into()
        }])
    }

    fn apply(&mut self, event: &BadgeEvent) {
        self.enabled = matches!(event, BadgeEvent::BadgeEnabled(_));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(enabled: bool, domain: &str) -> SetBadge {
        SetBadge {
            tenant: TenantId::parse("acme").unwrap(),
            domain: domain.to_owned(),
            enabled,
        }
    }

    #[test]
    fn opting_in_twice_appends_once_and_opting_out_takes_it_back() {
        let mut badge = Badge::default();
        let events = badge.handle(set(true, "Shop.Example.COM")).unwrap();
        assert_eq!(events.len(), 1);
        let BadgeEvent::BadgeEnabled(enabled) = &events[0] else {
            panic!("{events:?}");
        };
        assert_eq!(enabled.domain, "shop.example.com");
        badge.apply(&events[0]);
        assert!(
            badge
                .handle(set(true, "shop.example.com"))
                .unwrap()
                .is_empty()
        );
        let off = badge.handle(set(false, "shop.example.com")).unwrap();
        assert!(matches!(off[0], BadgeEvent::BadgeDisabled(_)));
        badge.apply(&off[0]);
        assert!(!badge.enabled);
    }

    #[test]
    fn only_bare_domain_names_are_accepted() {
        assert!(badge_domain("https://example.com/").is_err());
        assert!(badge_domain("").is_err());
        assert!(badge_domain("exa mple.com").is_err());
        assert_eq!(badge_domain("EXAMPLE.com").unwrap(), "example.com");
    }
}
