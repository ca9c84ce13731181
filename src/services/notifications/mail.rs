//! Transactional email, sent by the job runner from domain events — never inside a request's
//! transaction.
//!
//! The mail [`MailSubscriber`] takes the events that warrant a message and enqueues one
//! `mail.send` job per message, keyed `mail:<event id>:<template>` so that an event handed over
//! twice still sends one mail. The job renders the template (`templates`), builds the MIME
//! message (plain text and HTML alternatives, attachments) and hands it to the [`Transport`](crate::infra::mail::Transport):
//! the SMTP server of `SMTP_URL`, or `.eml` files under `MAIL_DIR` without one. A transient SMTP
//! failure is retried with the runner's backoff; a permanent refusal (5xx) dead-letters the job.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::Message;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::entities::{
    account_link, order, order_item, outbox_event, privacy_request, user, webhook_endpoint,
};
use crate::services::accounts::links::Purpose;
use crate::services::commerce::receipts::clp;
use crate::services::platform::events::{Interest, Subscriber};
use crate::services::platform::jobs::{self, Job, JobError, NewJob};
use crate::services::platform::templates;
use crate::state::AppState;

/// A `mail.send` job: one message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailPayload {
    pub template: String,
    pub to: String,
    /// The template's values (the recipient's name, the order, …), gathered when the event was
    /// handed over.
    pub context: Value,
    /// Attach this order's receipt PDF (made when the message is sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_order_id: Option<i64>,
    /// Put this mailed link (`account_links` row) in the message as `linkUrl`; its token is made
    /// when the message is sent, so it is never in the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_id: Option<i64>,
    /// The message's `Message-ID` without its angle brackets (`<random>@<sender's domain>`),
    /// drawn when the job is queued so that a retried send is recognisably the same message.
    /// Jobs queued before it existed derive theirs from the payload ([`message_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

impl MailPayload {
    /// A message of `template` to `to`, with a fresh `Message-ID` on the sender's domain.
    pub fn new(st: &AppState, template: &str, to: String, context: Value) -> Self {
        MailPayload {
            template: template.to_string(),
            to,
            context,
            receipt_order_id: None,
            link_id: None,
            message_id: Some(format!(
                "{}@{}",
                uuid::Uuid::new_v4().simple(),
                sender_domain(&st.config.mail.from)
            )),
        }
    }
}

/// The domain of `EMAIL_FROM`'s address (`Tienda <no-reply@tienda.cl>` → `tienda.cl`); `localhost`
/// when it has none.
fn sender_domain(email_from: &str) -> String {
    email_from
        .parse::<Mailbox>()
        .ok()
        .map(|m| m.email.domain().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// `p`'s `Message-ID` header value: its own, or (a job queued before payloads carried one) a
/// digest of the payload, the same on every retry.
fn message_id(st: &AppState, p: &MailPayload) -> String {
    let id = p.message_id.clone().unwrap_or_else(|| {
        use sha2::{Digest, Sha256};
        let bytes = serde_json::to_vec(p).unwrap_or_default();
        format!(
            "{}@{}",
            hex::encode(&Sha256::digest(bytes)[..16]),
            sender_domain(&st.config.mail.from)
        )
    });
    format!("<{id}>")
}

/// The `mail.send` job.
pub struct SendMail;

impl Job for SendMail {
    const KIND: &'static str = "mail.send";
    type Context = AppState;
    type Payload = MailPayload;

    async fn run(&self, st: &AppState, p: MailPayload) -> Result<(), JobError> {
        let template = p.template.as_str();
        let failed = |e: JobError| {
            st.metrics
                .emails_failed
                .with_label_values(&[template])
                .inc();
            e
        };
        let Some(msg) = build(st, &p).await.map_err(failed)? else {
            tracing::info!(
                template,
                "verification link used or replaced before it was sent; not sent"
            );
            return Ok(());
        };
        match st.mailer.send(msg).await {
            Ok(went) => {
                st.metrics.emails_sent.with_label_values(&[template]).inc();
                // Subject and template only: bodies carry links with tokens.
                tracing::info!(template, to = %p.to, went, "mail sent");
                Ok(())
            }
            Err(e) if e.permanent => Err(failed(JobError::Fatal(e.message))),
            Err(e) => Err(failed(JobError::Retry(e.message))),
        }
    }
}

/// The MIME message of `p`: plain text and HTML alternatives, and the receipt when asked for.
/// `None` when it carries a verification link that was used or replaced meanwhile.
async fn build(st: &AppState, p: &MailPayload) -> Result<Option<Message>, JobError> {
    let mut context = p.context.clone();
    if let Value::Object(o) = &mut context {
        o.insert(
            "store".into(),
            json!({"name": st.config.store.name, "url": st.config.http.frontend_base_url}),
        );
        o.insert("recipient".into(), json!(p.to));
        if let Some(id) = p.link_id {
            let Some(url) = crate::services::accounts::links::mint_url(st, id).await? else {
                return Ok(None);
            };
            o.insert("linkUrl".into(), json!(url));
        }
    }
    let r = templates::render(&p.template, &context).map_err(JobError::Fatal)?;
    let from: Mailbox = st
        .config
        .mail
        .from
        .parse()
        .map_err(|e| JobError::Fatal(format!("EMAIL_FROM: {e}")))?;
    let to: Mailbox =
        p.to.parse()
            .map_err(|e| JobError::Fatal(format!("recipient {:?}: {e}", p.to)))?;
    let mut body = MultiPart::alternative_plain_html(r.text, r.html);
    if let Some(id) = p.receipt_order_id {
        let o = order::Entity::find_by_id(id)
            .one(&st.db)
            .await?
            .ok_or_else(|| JobError::Fatal(format!("order {id} is gone")))?;
        let pdf = crate::services::commerce::receipts::pdf_of(st, &o).await?;
        body = MultiPart::mixed().multipart(body).singlepart(
            Attachment::new(format!("comprobante-{id}.pdf")).body(
                pdf,
                ContentType::parse("application/pdf").expect("a MIME type"),
            ),
        );
    }
    Message::builder()
        .message_id(Some(message_id(st, p)))
        .from(from)
        .to(to)
        .subject(r.subject)
        .multipart(body)
        .map(Some)
        .map_err(|e| JobError::Fatal(format!("building the message: {e}")))
}

/// The events that send mail (the template depends on the event's content, see `message_for`).
const MAILED: &[&str] = &[
    "order.created",
    "order.status_changed",
    "payment.refunded",
    "medicinal_document.reviewed",
    "user.email_verification_requested",
    "auth.password_reset_requested",
    "auth.password_reset",
    "auth.password_changed",
    "auth.two_factor_enabled",
    "auth.two_factor_disabled",
    "auth.recovery_code_used",
    "privacy.export_ready",
    "privacy.erasure_requested",
    "webhook_endpoint.disabled",
];

/// Turns events into `mail.send` jobs.
pub struct MailSubscriber;

impl Subscriber for MailSubscriber {
    fn name(&self) -> &'static str {
        "mail"
    }

    fn interest(&self) -> Interest {
        Interest::Only(MAILED)
    }

    async fn deliver(&self, st: &AppState, event: &outbox_event::Model) -> Result<(), JobError> {
        for (n, m) in messages_for(st, event).await?.into_iter().enumerate() {
            let template = m.template;
            let job = NewJob::of::<SendMail>(&MailPayload {
                receipt_order_id: m.receipt_order_id,
                link_id: m.link_id,
                ..MailPayload::new(st, template, m.to, m.context)
            })?
            .unique(match n {
                0 => format!("mail:{}:{template}", event.id),
                // One event mailed to several people (every admin).
                n => format!("mail:{}:{template}:{n}", event.id),
            });
            jobs::enqueue(&st.db, st.clock.now(), job).await?;
        }
        Ok(())
    }
}

/// One message an event asks for.
struct Outgoing {
    template: &'static str,
    to: String,
    context: Value,
    receipt_order_id: Option<i64>,
    link_id: Option<i64>,
}

/// The messages an event asks for: a mailed link (and, for an email change, a notice to the old
/// address); otherwise at most one (see `message_for`).
async fn messages_for(
    st: &AppState,
    event: &outbox_event::Model,
) -> Result<Vec<Outgoing>, JobError> {
    let p = &event.payload;
    match event.event_type.as_str() {
        "user.email_verification_requested" => {
            let Some(id) = p.get("verificationId").and_then(Value::as_i64) else {
                return Err(JobError::Fatal("no verificationId in the event".into()));
            };
            link_messages(st, id).await
        }
        // No link: no account uses the address, or it had enough links for now.
        "auth.password_reset_requested" => match p.get("linkId").and_then(Value::as_i64) {
            Some(id) => link_messages(st, id).await,
            None => Ok(Vec::new()),
        },
        "auth.password_reset" | "auth.password_changed" => {
            let Some(u) = usable_user(st, event.aggregate_id).await? else {
                return Ok(Vec::new());
            };
            let when = event.occurred_at.format("%d-%m-%Y %H:%M UTC").to_string();
            Ok(vec![Outgoing {
                template: "password_changed",
                to: u.email,
                context: json!({
                    "customer": {"name": u.name},
                    "changedAt": when,
                    "viaReset": event.event_type == "auth.password_reset",
                }),
                receipt_order_id: None,
                link_id: None,
            }])
        }
        // Security notices: the second factor turned on or off, or a recovery code spent.
        "auth.two_factor_enabled" | "auth.two_factor_disabled" | "auth.recovery_code_used" => {
            let Some(u) = usable_user(st, event.aggregate_id).await? else {
                return Ok(Vec::new());
            };
            let what = match event.event_type.as_str() {
                "auth.two_factor_enabled" => "enabled",
                "auth.two_factor_disabled" => "disabled",
                _ => "recovery_code_used",
            };
            let mut context = json!({
                "customer": {"name": u.name},
                "changedAt": event.occurred_at.format("%d-%m-%Y %H:%M UTC").to_string(),
                "event": what,
            });
            if let Some(left) = p.get("remaining") {
                context["remaining"] = left.clone();
            }
            Ok(vec![Outgoing {
                template: "two_factor_changed",
                to: u.email,
                context,
                receipt_order_id: None,
                link_id: None,
            }])
        }
        // A personal-data export is ready: where to download it, and until when.
        "privacy.export_ready" => {
            let Some(u) = usable_user(st, event.aggregate_id).await? else {
                return Ok(Vec::new());
            };
            let Some(id) = p.get("requestId").and_then(Value::as_i64) else {
                return Err(JobError::Fatal("no requestId in the event".into()));
            };
            let Some(r) = privacy_request::Entity::find_by_id(id).one(&st.db).await? else {
                return Ok(Vec::new());
            };
            let Some(expires) = r.expires_at else {
                return Ok(Vec::new());
            };
            Ok(vec![Outgoing {
                template: "data_export_ready",
                to: u.email,
                context: json!({
                    "customer": {"name": u.name},
                    "requestedAt": r.requested_at.format("%d-%m-%Y %H:%M UTC").to_string(),
                    "expiresAt": expires.format("%d-%m-%Y %H:%M UTC").to_string(),
                    "exportUrl": format!("{}/account/data-exports/{}", st.config.http.frontend_base_url, r.id),
                }),
                receipt_order_id: None,
                link_id: None,
            }])
        }
        // The erasure is scheduled: when, what goes and what stays, how to cancel. The account
        // is no longer usable (sign-in is refused), so it is looked up as it is.
        "privacy.erasure_requested" => {
            let Some(u) = user_of(st, event.aggregate_id)
                .await?
                .filter(|u| u.erasure_requested_at.is_some() && u.erased_at.is_none())
            else {
                return Ok(Vec::new());
            };
            let scheduled = p
                .get("scheduledFor")
                .and_then(Value::as_str)
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.format("%d-%m-%Y %H:%M UTC").to_string())
                .unwrap_or_default();
            Ok(vec![Outgoing {
                template: "erasure_scheduled",
                to: u.email,
                context: json!({
                    "customer": {"name": u.name},
                    "requestedAt": event.occurred_at.format("%d-%m-%Y %H:%M UTC").to_string(),
                    "scheduledFor": scheduled,
                    "retentionYears": st.config.privacy.legal_retention_years,
                    "cancelUrl": format!("{}/account/deletion", st.config.http.frontend_base_url),
                }),
                receipt_order_id: None,
                link_id: None,
            }])
        }
        "webhook_endpoint.disabled" => admin_notices(st, event).await,
        _ => Ok(message_for(st, event).await?.into_iter().collect()),
    }
}

/// An outbound webhook endpoint the server disabled: a notice to every active admin (the
/// endpoint's host only: its path or query may hold an integrator's token).
async fn admin_notices(
    st: &AppState,
    event: &outbox_event::Model,
) -> Result<Vec<Outgoing>, JobError> {
    let Some(endpoint) =
        webhook_endpoint::Entity::find_by_id(event.aggregate_id.unwrap_or_default())
            .one(&st.db)
            .await?
    else {
        return Ok(Vec::new());
    };
    let host = url::Url::parse(&endpoint.url)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_default();
    let reason = event.payload.get("reason").cloned().unwrap_or(Value::Null);
    let admins = user::Entity::find()
        .filter(user::Column::Role.eq(user::Role::Admin))
        .order_by_asc(user::Column::Id)
        .all(&st.db)
        .await?;
    Ok(admins
        .into_iter()
        .filter(user::Model::is_usable)
        .map(|a| Outgoing {
            template: "webhook_disabled",
            to: a.email,
            context: json!({
                "admin": {"name": a.name},
                "endpointId": endpoint.id,
                "host": host,
                "reason": reason,
                "disabledAt": event.occurred_at.format("%d-%m-%Y %H:%M UTC").to_string(),
            }),
            receipt_order_id: None,
            link_id: None,
        })
        .collect())
}

async fn user_of(st: &AppState, id: Option<i64>) -> Result<Option<user::Model>, JobError> {
    let Some(id) = id else { return Ok(None) };
    Ok(user::Entity::find_by_id(id).one(&st.db).await?)
}

async fn usable_user(st: &AppState, id: Option<i64>) -> Result<Option<user::Model>, JobError> {
    Ok(user_of(st, id).await?.filter(user::Model::is_usable))
}

/// The message carrying link `id` (made when it is sent) and, for an email change, a notice to
/// the address in use. Nothing when the link was used or replaced before the event was handed
/// over, or its account is gone.
async fn link_messages(st: &AppState, id: i64) -> Result<Vec<Outgoing>, JobError> {
    let Some(link) = account_link::Entity::find_by_id(id)
        .one(&st.db)
        .await?
        .filter(|l| l.consumed_at.is_none())
    else {
        return Ok(Vec::new());
    };
    let Some(u) = usable_user(st, Some(link.user_id)).await? else {
        return Ok(Vec::new());
    };
    let customer = json!({"name": u.name});
    let ttl = link.purpose.ttl();
    let (template, context) = match link.purpose {
        Purpose::VerifyEmail => (
            "verify_email",
            json!({
                "customer": customer,
                "change": link.previous_email.is_some(),
                "expiresInHours": ttl.num_hours(),
            }),
        ),
        Purpose::ResetPassword => (
            "reset_password",
            json!({"customer": customer, "expiresInMinutes": ttl.num_minutes()}),
        ),
    };
    let mut out = vec![Outgoing {
        template,
        to: link.email.clone(),
        context,
        receipt_order_id: None,
        link_id: Some(link.id),
    }];
    if let Some(old) = link.previous_email {
        out.push(Outgoing {
            template: "email_change_requested",
            to: old,
            context: json!({"customer": customer, "newEmail": link.email}),
            receipt_order_id: None,
            link_id: None,
        });
    }
    Ok(out)
}

/// The message an event asks for; `None` when it asks for none (an order back to `pending`, a
/// document review that changed nothing) or there is nobody to write to (the order or the
/// customer is gone).
async fn message_for(
    st: &AppState,
    event: &outbox_event::Model,
) -> Result<Option<Outgoing>, JobError> {
    let p = &event.payload;
    let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (template, order_id, extra, receipt) = match event.event_type.as_str() {
        "order.created" => ("order_received", event.aggregate_id, json!({}), false),
        "order.status_changed" => {
            let (template, reason) = match (text("to").as_str(), text("reason").as_str()) {
                ("paid", _) => ("payment_received", ""),
                ("shipped", _) => ("order_shipped", ""),
                ("delivered", _) => ("order_delivered", ""),
                ("cancelled", _) => ("order_cancelled", "cancelled"),
                ("failed", "payment_timeout") => ("order_cancelled", "expired"),
                ("failed", _) => ("order_cancelled", "payment_failed"),
                _ => return Ok(None),
            };
            let extra = json!({"reason": reason, "wasPaid": text("from") == "paid"});
            (
                template,
                event.aggregate_id,
                extra,
                template == "payment_received",
            )
        }
        "payment.refunded" => {
            let amount = p.get("amountCents").and_then(Value::as_i64).unwrap_or(0);
            let order_id = p.get("orderId").and_then(Value::as_i64);
            (
                "refund_issued",
                order_id,
                json!({"refund": {"amount": clp(amount)}}),
                false,
            )
        }
        "medicinal_document.reviewed" => {
            let approved = match text("to").as_str() {
                "approved" => true,
                "rejected" => false,
                _ => return Ok(None),
            };
            let Some(user_id) = p.get("userId").and_then(Value::as_i64) else {
                return Ok(None);
            };
            let Some(u) = user::Entity::find_by_id(user_id)
                .one(&st.db)
                .await?
                .filter(|u| u.deleted_at.is_none())
            else {
                return Ok(None);
            };
            // The status only: never the document's contents.
            let expires_on = p
                .get("expiresAt")
                .and_then(Value::as_str)
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.format("%d-%m-%Y").to_string());
            let context = json!({
                "customer": {"name": u.name},
                "approved": approved,
                "expiresOn": expires_on,
            });
            return Ok(Some(Outgoing {
                template: "document_reviewed",
                to: u.email,
                context,
                receipt_order_id: None,
                link_id: None,
            }));
        }
        _ => return Ok(None),
    };
    let Some(order_id) = order_id else {
        return Ok(None);
    };
    let Some((o, customer)) = order_and_customer(st, order_id).await? else {
        return Ok(None);
    };
    let mut context = json!({
        "customer": {"name": customer.name},
        "order": order_context(st, &o).await?,
    });
    if let (Value::Object(c), Value::Object(x)) = (&mut context, extra) {
        c.extend(x);
    }
    Ok(Some(Outgoing {
        template,
        to: customer.email,
        context,
        receipt_order_id: receipt.then_some(o.id),
        link_id: None,
    }))
}

async fn order_and_customer(
    st: &AppState,
    id: i64,
) -> Result<Option<(order::Model, user::Model)>, JobError> {
    let Some(o) = order::Entity::find_by_id(id).one(&st.db).await? else {
        return Ok(None);
    };
    let customer = user::Entity::find_by_id(o.user_id).one(&st.db).await?;
    Ok(customer.filter(|u| u.deleted_at.is_none()).map(|u| (o, u)))
}

/// An order as the templates show it: amounts formatted in pesos, its lines, address and link.
async fn order_context(st: &AppState, o: &order::Model) -> Result<Value, JobError> {
    let items = order_item::Entity::find()
        .filter(order_item::Column::OrderId.eq(o.id))
        .order_by_asc(order_item::Column::Id)
        .all(&st.db)
        .await?;
    let address = o.shipping_address.clone().unwrap_or_else(|| json!({}));
    let field = |k: &str| {
        address
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Ok(json!({
        "id": o.id,
        "status": o.status.as_str(),
        "items": items.iter().map(|i| json!({
            "name": i.product_name,
            "option": i.option_label,
            "quantity": i.quantity,
            "unitPrice": clp(i.unit_price_cents),
            "lineTotal": clp(i.line_total_cents),
        })).collect::<Vec<_>>(),
        "subtotal": clp(o.subtotal_cents),
        "discount": clp(o.discount_cents),
        "hasDiscount": o.discount_cents > 0,
        "shipping": clp(o.shipping_price_cents),
        "shippingMethod": shipping_name(o.shipping_method),
        "total": clp(o.total_cents),
        "address": {
            "name": field("name"),
            "addressLine": field("addressLine"),
            "comuna": field("comuna"),
            "region": field("region"),
        },
        "courier": o.courier,
        "trackingNumber": o.tracking_number,
        "url": format!("{}/orders/{}", st.config.http.frontend_base_url, o.id),
        "payWithinMinutes": st.config.payments.timeout_seconds / 60,
    }))
}

fn shipping_name(m: order::ShippingMethod) -> &'static str {
    use order::ShippingMethod::*;
    match m {
        RetiroTienda => "retiro en tienda",
        Chilexpress => "Chilexpress",
        Starken => "Starken",
        Manual => "coordinado",
    }
}
