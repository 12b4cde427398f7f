//! Read receipts for notifications (stream `notifications-<tenant>`). Notifications themselves are
//! derived by a projection; only what a person did about them is a command.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain_events;
use crate::ids::NotificationId;
use crate::{Aggregate, DomainError};

domain_events! {
    /// Everything people do with notifications.
    pub enum NotificationEvent {
        NotificationRead = 1,
    }
}

/// One notification, or every notification derived up to a log position, was marked read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NotificationRead {
    pub notification_id: Option<NotificationId>,
    pub up_to_position: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NotificationCommand {
    MarkRead { notification_id: NotificationId },
    MarkAllRead { up_to_position: u64 },
}

/// Read receipts carry no invariant of their own; the state is empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notifications;

impl Aggregate for Notifications {
    type Command = NotificationCommand;
    type Event = NotificationEvent;

    fn handle(&self, command: NotificationCommand) -> Result<Vec<NotificationEvent>, DomainError> {
        let read = match command {
            NotificationCommand::MarkRead { notification_id } => NotificationRead {
                notification_id: Some(notification_id),
                up_to_position: None,
            },
            NotificationCommand::MarkAllRead { up_to_position } => NotificationRead {
                notification_id: None,
                up_to_position: Some(up_to_position),
            },
        };
        Ok(vec![read.into()])
    }

    fn apply(&mut self, _event: &NotificationEvent) {}
}
