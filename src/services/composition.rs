//! The composition of the contexts: the one place in `services` that names every context, and
//! the only exception to their rank (ARCHITECTURE.md). Here the contexts meet without calling each
//! other: the job kinds this build runs, the outbox's subscribers, and the reactions that commit
//! with the change that caused them. A new job kind, subscriber or in-transaction reaction is
//! registered here; its code lives in its context.

use chrono::Duration;
use sea_orm::DatabaseTransaction;

use crate::actor::RequestCtx;
use crate::config::Config;
use crate::entities::order::OrderStatus;
use crate::services::commerce::orders;
use crate::services::integrations::delivery;
use crate::services::notifications::mail;
use crate::services::payments::{self, reconcile};
use crate::services::platform::events::{
    self, DomainEvent, Reaction, ReactionFuture, Reactions, Subscribers,
};
use crate::services::platform::files;
use crate::services::platform::jobs::Registry;
use crate::services::privacy::{data_export, erasure, housekeeping};
use crate::state::AppState;

/// The job kinds this build runs and what it schedules: refunds after an admin's cancellation,
/// the outbox's dispatch to [`subscribers`], and the periodic work — the expiry of unpaid orders
/// and the purge of expired rows every `SWEEP_INTERVAL_SECONDS`, the reconciliation of open
/// payments every `RECONCILE_INTERVAL_SECONDS`.
pub fn registry(cfg: &Config) -> Registry {
    let sweep = Duration::seconds(cfg.jobs.sweep_interval_seconds);
    let registry = Registry::new()
        .with(payments::RefundCancelled)
        .with(mail::SendMail)
        .with(data_export::PrepareExport)
        .with(erasure::EraseAccount)
        .with(files::DeleteStored)
        .with(delivery::DeliverWebhook)
        .periodic(sweep, orders::ExpireUnpaid)
        .periodic(sweep, housekeeping::Purge)
        .periodic(
            Duration::seconds(cfg.jobs.reconcile_interval_seconds),
            reconcile::Reconcile,
        );
    events::dispatch::register(registry, subscribers())
}

/// The reactions to domain events in this build: transactional email and outbound webhooks. Events no subscriber
/// takes are marked dispatched as soon as the runner sees them.
pub fn subscribers() -> Subscribers {
    Subscribers::new()
        .with(mail::MailSubscriber)
        .with(delivery::WebhookSubscriber)
}

/// The reactions that must commit with the change itself, run by [`events::record_in`] in the
/// caller's transaction (the outbox's [`subscribers`] react after the commit): a paid order's
/// cancellation (commerce) owes its buyer a refund (payments).
pub fn reactions() -> Reactions {
    Reactions::new().with(Reaction {
        name: "payments.owe_refund",
        wants: |event| {
            matches!(event, DomainEvent::OrderStatusChanged { from, to, .. }
                if from == OrderStatus::Paid.as_str() && to == OrderStatus::Cancelled.as_str())
        },
        run: owe_refund,
    })
}

fn owe_refund<'a>(
    txn: &'a DatabaseTransaction,
    st: &'a AppState,
    ctx: &'a RequestCtx,
    event: &'a DomainEvent,
) -> ReactionFuture<'a> {
    Box::pin(async move {
        match event {
            DomainEvent::OrderStatusChanged { id, .. } => {
                payments::owe_refund(txn, st, ctx, *id).await
            }
            _ => Ok(()),
        }
    })
}
