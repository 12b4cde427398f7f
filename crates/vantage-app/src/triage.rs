//! What people decide about findings and notifications: triage states and comments per fingerprint
//! (stream `triage-<tenant>-<fingerprint>`), and notification read receipts (stream
//! `notifications-<tenant>`). Both streams are named by the tenant, so one tenant can never touch
//! another's.

use vantage_domain::DomainError;
use vantage_domain::ids::{CommentId, NotificationId};
use vantage_domain::notification::{NotificationCommand, Notifications};
use vantage_domain::triage::{Fingerprint, Triage, TriageCommand, TriageState};

use crate::Services;
use crate::pipeline::{AppError, CommandContext};
use crate::seams::new_id;
use crate::streams::{notifications_stream, triage_stream};

impl Services {
    /// SetTriage on a fingerprint of the context's tenant.
    pub async fn set_triage(
        &self,
        context: &CommandContext,
        fingerprint: Fingerprint,
        state: TriageState,
        note: Option<String>,
    ) -> Result<Result<(), DomainError>, AppError> {
        let stream = triage_stream(&context.tenant, &fingerprint);
        let command = TriageCommand::Set {
            fingerprint,
            state,
            note,
        };
        Ok(self
            .pipeline
            .execute::<Triage>(&stream, context, command)
            .await?
            .map(|_| ()))
    }

    /// AddComment; returns the new comment's id.
    pub async fn add_comment(
        &self,
        context: &CommandContext,
        fingerprint: Fingerprint,
        body: String,
    ) -> Result<Result<CommentId, DomainError>, AppError> {
        let stream = triage_stream(&context.tenant, &fingerprint);
        let comment_id = CommentId(new_id());
        let command = TriageCommand::AddComment {
            fingerprint,
            comment_id,
            body,
        };
        Ok(self
            .pipeline
            .execute::<Triage>(&stream, context, command)
            .await?
            .map(|_| comment_id))
    }

    /// DeleteComment.
    pub async fn delete_comment(
        &self,
        context: &CommandContext,
        fingerprint: Fingerprint,
        comment_id: CommentId,
    ) -> Result<Result<(), DomainError>, AppError> {
        let stream = triage_stream(&context.tenant, &fingerprint);
        let command = TriageCommand::DeleteComment {
            fingerprint,
            comment_id,
        };
        Ok(self
            .pipeline
            .execute::<Triage>(&stream, context, command)
            .await?
            .map(|_| ()))
    }

    /// MarkNotificationRead.
    pub async fn mark_notification_read(
        &self,
        context: &CommandContext,
        notification_id: NotificationId,
    ) -> Result<Result<(), DomainError>, AppError> {
        let command = NotificationCommand::MarkRead { notification_id };
        Ok(self
            .pipeline
            .execute::<Notifications>(&notifications_stream(&context.tenant), context, command)
            .await?
            .map(|_| ()))
    }

    /// MarkAllRead: every notification derived from the log as it stands now.
    pub async fn mark_all_notifications_read(
        &self,
        context: &CommandContext,
    ) -> Result<Result<u64, DomainError>, AppError> {
        let up_to_position = self.store().head_position().await?;
        let command = NotificationCommand::MarkAllRead { up_to_position };
        Ok(self
            .pipeline
            .execute::<Notifications>(&notifications_stream(&context.tenant), context, command)
            .await?
            .map(|_| up_to_position))
    }
}
