//! The schedule aggregate (stream `schedule-<id>`): a scan spec repeated on a cadence — a fixed
//! interval, or a cron expression read in a time zone. Scans it starts carry trigger `scheduled`.
//!
//! When a schedule is due is pure arithmetic on its cadence ([`ScheduleCreated::latest_slot`]): the
//! scheduler asks for the latest slot at or before now, so after downtime the missed slots start one
//! scan, not one each, and the slot's time names the scan it starts (see the scheduler).

use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain_events;
use crate::ids::ScheduleId;
use crate::scan::ScanSpec;
use crate::target::Trigger;
use crate::tenant::TenantId;
use crate::{Aggregate, DomainError};

/// Shortest interval between two scheduled scans of one schedule.
pub const MIN_INTERVAL_SECONDS: u32 = 60;
/// Longest interval (31 days).
pub const MAX_INTERVAL_SECONDS: u32 = 31 * 24 * 3600;
/// Longest cron expression accepted.
pub const MAX_CRON_CHARS: usize = 120;

domain_events! {
    /// Everything that can happen to a schedule. (A deletion is empty and a creation holds a scan
    /// spec; events are made once per command, so boxing would buy nothing.)
    #[allow(clippy::large_enum_variant)]
    pub enum ScheduleEvent {
        ScheduleCreated = 4,
        ScheduleDeleted = 1,
    }
}

/// A cron expression (five fields: minute hour day-of-month month day-of-week, or six with seconds
/// first) read in an IANA time zone, so `0 6 * * *` in `Europe/Paris` is 06:00 there through
/// daylight-saving changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CronCadence {
    pub expression: String,
    /// An IANA time zone name (`UTC`, `Europe/Paris`, …).
    pub timezone: String,
}

impl CronCadence {
    /// Checks the expression and the zone; the parsed forms are not kept (they are cheap to make).
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, DomainError> {
        let cadence = Self {
            expression: expression.trim().to_owned(),
            timezone: timezone.trim().to_owned(),
        };
        if cadence.expression.chars().count() > MAX_CRON_CHARS {
            return Err(DomainError::invalid(
                "cron",
                format!("at most {MAX_CRON_CHARS} characters"),
            ));
        }
        // Five or six fields, none of them an empty list: croner accepts more, and searches for
        // ever for a time matching a field that matches nothing (`,` as the seconds).
        let fields: Vec<&str> = cadence.expression.split_whitespace().collect();
        if !(5..=6).contains(&fields.len()) {
            return Err(DomainError::invalid(
                "cron",
                "must have five fields (minute hour day-of-month month day-of-week), or six with \
                 seconds first",
            ));
        }
        if fields.iter().any(|f| f.split(',').any(str::is_empty)) {
            return Err(DomainError::invalid("cron", "has an empty list item"));
        }
        let cron = cadence.cron()?;
        cadence.zone()?;
        // Every slot at least a minute apart: a six-field expression could fire every second.
        let start = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let mut slots = cron.iter_after(start.with_timezone(&cadence.zone()?));
        match (slots.next(), slots.next()) {
            (None, _) => {
                return Err(DomainError::invalid("cron", "never fires (no such date)"));
            }
            (Some(a), Some(b)) if (b - a) < TimeDelta::seconds(i64::from(MIN_INTERVAL_SECONDS)) => {
                return Err(DomainError::invalid(
                    "cron",
                    format!("fires more often than every {MIN_INTERVAL_SECONDS} seconds"),
                ));
            }
            _ => {}
        }
        Ok(cadence)
    }

    fn cron(&self) -> Result<croner::Cron, DomainError> {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(&self.expression)
            .map_err(|e| DomainError::invalid("cron", format!("is not a cron expression: {e}")))
    }

    fn zone(&self) -> Result<chrono_tz::Tz, DomainError> {
        self.timezone.parse().map_err(|_| {
            DomainError::invalid(
                "timezone",
                format!("{:?} is not an IANA time zone name", self.timezone),
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScheduleCreated {
    pub schedule_id: ScheduleId,
    pub tenant: TenantId,
    pub spec: ScanSpec,
    /// Seconds between scans, counted from the schedule's creation (exactly one of this and `cron`).
    pub interval_seconds: Option<u32>,
    /// When scans start, as a cron expression in a time zone (v2).
    pub cron: Option<CronCadence>,
    /// A disabled schedule starts nothing (v2; every v1 schedule was enabled).
    pub enabled: bool,
}

impl ScheduleCreated {
    /// The latest time at or before `now`, and after `created_at` (when the schedule was recorded),
    /// at which a scan is due; `None` if there is none yet (or the schedule is disabled).
    pub fn latest_slot(
        &self,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if !self.enabled || now <= created_at {
            return None;
        }
        if let Some(seconds) = self.interval_seconds {
            let step = i64::from(seconds.max(1));
            let elapsed = (now - created_at).num_seconds();
            let slots = elapsed / step;
            return (slots > 0).then(|| created_at + TimeDelta::seconds(slots * step));
        }
        let cadence = self.cron.as_ref()?;
        let (cron, zone) = (cadence.cron().ok()?, cadence.zone().ok()?);
        let slot = cron
            .find_previous_occurrence(&now.with_timezone(&zone), true)
            .ok()?
            .with_timezone(&Utc);
        (slot > created_at).then_some(slot)
    }

    /// The first due time after `after`, for display.
    pub fn next_slot(
        &self,
        created_at: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if !self.enabled {
            return None;
        }
        let after = after.max(created_at);
        if let Some(seconds) = self.interval_seconds {
            let step = i64::from(seconds.max(1));
            let slots = (after - created_at).num_seconds() / step + 1;
            return Some(created_at + TimeDelta::seconds(slots * step));
        }
        let cadence = self.cron.as_ref()?;
        let (cron, zone) = (cadence.cron().ok()?, cadence.zone().ok()?);
        cron.find_next_occurrence(&after.with_timezone(&zone), false)
            .ok()
            .map(|slot| slot.with_timezone(&Utc))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScheduleDeleted {}

/// How often a schedule starts a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    Interval { seconds: u32 },
    Cron(CronCadence),
}

/// What can be asked of a schedule. (Like its events: made once per request, so the creation's
/// scan spec is not boxed.)
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum ScheduleCommand {
    Create {
        schedule_id: ScheduleId,
        tenant: TenantId,
        spec: ScanSpec,
        cadence: Cadence,
        enabled: bool,
    },
    Delete,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    pub created: Option<ScheduleCreated>,
    pub deleted: bool,
}

impl Aggregate for Schedule {
    type Command = ScheduleCommand;
    type Event = ScheduleEvent;

    fn handle(&self, command: ScheduleCommand) -> Result<Vec<ScheduleEvent>, DomainError> {
        let event: ScheduleEvent = match command {
            ScheduleCommand::Create {
                schedule_id,
                tenant,
                mut spec,
                cadence,
                enabled,
            } => {
                if self.created.is_some() {
                    return Err(DomainError::AlreadyExists("schedule"));
                }
                let (interval_seconds, cron) = match cadence {
                    Cadence::Interval { seconds } => {
                        if !(MIN_INTERVAL_SECONDS..=MAX_INTERVAL_SECONDS).contains(&seconds) {
                            return Err(DomainError::invalid(
                                "interval_seconds",
                                format!(
                                    "must be between {MIN_INTERVAL_SECONDS} and \
                                     {MAX_INTERVAL_SECONDS}"
                                ),
                            ));
                        }
                        (Some(seconds), None)
                    }
                    Cadence::Cron(cron) => (
                        None,
                        Some(CronCadence::parse(&cron.expression, &cron.timezone)?),
                    ),
                };
                spec.trigger = Trigger::Scheduled;
                ScheduleCreated {
                    schedule_id,
                    tenant,
                    spec,
                    interval_seconds,
                    cron,
                    enabled,
                }
                .into()
            }
            ScheduleCommand::Delete => {
                if self.created.is_none() || self.deleted {
                    return Err(DomainError::NotFound("schedule"));
                }
                ScheduleDeleted {}.into()
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &ScheduleEvent) {
        match event {
            ScheduleEvent::ScheduleCreated(created) => self.created = Some(created.clone()),
            ScheduleEvent::ScheduleDeleted(_) => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses on a thread of its own and fails the test if that takes more than a second.
    fn parse_within_a_second(expression: &'static str) -> Result<CronCadence, DomainError> {
        let (done, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(CronCadence::parse(expression, "UTC"));
        });
        answer
            .recv_timeout(std::time::Duration::from_secs(1))
            .unwrap_or_else(|_| panic!("parsing {expression:?} took more than a second"))
    }

    /// Found by the fuzzer (2026-12-06): croner accepted it, and the search for its next time
    /// never ended — a request could hold a thread for ever.
    #[test]
    fn expressions_that_never_fire_are_refused_at_once() {
        for never in [
            ", * * 4 * * *  ",
            ", * * * * *",
            "0 0 31 2 *",
            "0 0 30 2 *",
            "0 0 0 31 4 *",
        ] {
            let refused = parse_within_a_second(never);
            assert!(refused.is_err(), "{never:?} was accepted");
        }
        assert!(
            parse_within_a_second("0 0 29 2 *").is_ok(),
            "leap days come"
        );
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn created(interval: Option<u32>, cron: Option<(&str, &str)>) -> ScheduleCreated {
        ScheduleCreated {
            schedule_id: ScheduleId(uuid::Uuid::from_u128(1)),
            tenant: TenantId::default_tenant(),
            spec: crate::given_when_then::spec(),
            interval_seconds: interval,
            cron: cron.map(|(e, z)| CronCadence::parse(e, z).unwrap()),
            enabled: true,
        }
    }

    #[test]
    fn an_interval_is_counted_from_creation_and_missed_slots_collapse_into_the_latest() {
        let schedule = created(Some(3600), None);
        let t0 = at("2026-12-05T10:00:30Z");
        assert_eq!(schedule.latest_slot(t0, at("2026-12-05T10:59:59Z")), None);
        assert_eq!(
            schedule.latest_slot(t0, at("2026-12-05T11:00:30Z")),
            Some(at("2026-12-05T11:00:30Z"))
        );
        // Down for a day: one slot, the latest.
        assert_eq!(
            schedule.latest_slot(t0, at("2026-12-06T13:20:00Z")),
            Some(at("2026-12-06T13:00:30Z"))
        );
        assert_eq!(
            schedule.next_slot(t0, at("2026-12-06T13:20:00Z")),
            Some(at("2026-12-06T14:00:30Z"))
        );
    }

    #[test]
    fn a_cron_expression_is_read_in_its_time_zone_and_never_before_creation() {
        let schedule = created(None, Some(("0 6 * * *", "Europe/Paris")));
        let t0 = at("2026-07-01T00:00:00Z");
        // 06:00 in Paris is 04:00 UTC in summer, 05:00 UTC in winter.
        assert_eq!(schedule.latest_slot(t0, at("2026-07-01T03:59:00Z")), None);
        assert_eq!(
            schedule.latest_slot(t0, at("2026-07-03T12:00:00Z")),
            Some(at("2026-07-03T04:00:00Z"))
        );
        assert_eq!(
            schedule.next_slot(t0, at("2026-12-03T12:00:00Z")),
            Some(at("2026-12-04T05:00:00Z"))
        );
        let every_minute = created(None, Some(("* * * * *", "UTC")));
        let t1 = at("2026-12-05T10:00:30Z");
        assert_eq!(
            every_minute.latest_slot(t1, at("2026-12-05T10:00:59Z")),
            None
        );
        assert_eq!(
            every_minute.latest_slot(t1, at("2026-12-05T10:03:10Z")),
            Some(at("2026-12-05T10:03:00Z"))
        );
        let mut disabled = every_minute;
        disabled.enabled = false;
        assert_eq!(disabled.latest_slot(t1, at("2026-12-05T10:03:10Z")), None);
    }

    #[test]
    fn bad_expressions_zones_and_too_frequent_crons_are_refused() {
        for (expression, zone, field) in [
            ("not cron", "UTC", "cron"),
            ("61 * * * *", "UTC", "cron"),
            ("* * * * *", "Mars/Olympus", "timezone"),
            ("* * * * * *", "UTC", "cron"),
            (&"1,".repeat(100), "UTC", "cron"),
        ] {
            match CronCadence::parse(expression, zone) {
                Err(DomainError::Invalid { field: f, .. }) => assert_eq!(f, field, "{expression}"),
                other => panic!("{expression:?} in {zone}: {other:?}"),
            }
        }
        assert!(CronCadence::parse("*/5 * * * *", "America/New_York").is_ok());
    }
}
