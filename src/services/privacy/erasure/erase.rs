//! The erasure itself, in one transaction: what identifies the customer is found, orders and
//! payments are kept under a pseudonym, the audit log and the outbox are scrubbed, personal rows
//! and private files are deleted, and the user row becomes a tombstone.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::sea_query::{Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect, Set,
};
use serde_json::Value;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::privacy_request::{self, PrivacyRequestState};
use crate::entities::{
    account_link, address, auth_token, cart, cart_item, consent, credential_attempt, file,
    idempotency_key, job, medicinal_document, order, outbox_event, payment, payment_event,
    product_review, recovery_code, session, system_log, user, user_profile, user_two_factor,
};
use crate::error::AppResult;
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::files;
use crate::state::AppState;

/// `cliente-` and 12 random hex digits.
fn pseudonym() -> String {
    let mut b = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("cliente-{}", hex::encode(b))
}

/// Replaces every needle in every string of `v`; whether anything changed.
fn scrub(v: &mut Value, needles: &[String], with: &str) -> bool {
    match v {
        Value::String(s) => {
            let mut changed = false;
            for n in needles {
                if s.contains(n.as_str()) {
                    *s = s.replace(n.as_str(), with);
                    changed = true;
                }
            }
            changed
        }
        Value::Array(a) => a
            .iter_mut()
            .fold(false, |acc, x| scrub(x, needles, with) | acc),
        Value::Object(o) => o
            .values_mut()
            .fold(false, |acc, x| scrub(x, needles, with) | acc),
        _ => false,
    }
}

/// The personal values to replace, and their replacement.
struct Scrub<'a> {
    needles: &'a [String],
    alias: &'a str,
}

impl Scrub<'_> {
    /// Rewrites the JSON `column` of the rows `which` selects where it holds a needle.
    async fn rows<E: EntityTrait>(
        &self,
        conn: &impl ConnectionTrait,
        which: sea_orm::Select<E>,
        id: E::Column,
        column: E::Column,
    ) -> AppResult<()> {
        let rows: Vec<(i64, Option<Value>)> = which
            .select_only()
            .column(id)
            .column(column)
            .into_tuple()
            .all(conn)
            .await?;
        for (row, value) in rows {
            let Some(mut value) = value else { continue };
            if scrub(&mut value, self.needles, self.alias) {
                E::update_many()
                    .col_expr(column, Expr::value(value))
                    .filter(id.eq(row))
                    .exec(conn)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Deletes the rows of `E` whose `owner` column is `uid`.
async fn delete_rows<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    owner: E::Column,
    uid: i64,
) -> AppResult<()> {
    E::delete_many().filter(owner.eq(uid)).exec(conn).await?;
    Ok(())
}

/// `CAST(<col> AS TEXT) LIKE '%<needle>%'` for any of the needles.
fn mentions(col: impl sea_orm::sea_query::IntoColumnRef + Clone, needles: &[String]) -> Condition {
    needles.iter().fold(Condition::any(), |c, n| {
        c.add(
            SimpleExpr::from(Func::cast_as(
                Expr::col(col.clone()),
                sea_orm::sea_query::Alias::new("TEXT"),
            ))
            .like(format!("%{n}%")),
        )
    })
}

/// Deletes and pseudonymizes the customer's data in one transaction; the stored files whose
/// removal it enqueued, to run at once after the commit. Each phase is a function, in this order.
pub(super) async fn erase(
    st: &AppState,
    ctx: &RequestCtx,
    u: &user::Model,
    r: &privacy_request::Model,
) -> AppResult<Vec<files::Stored>> {
    let now = st.clock.now();
    let alias = pseudonym();
    let txn = begin_write(&st.db).await?;
    let found = Identifying::of(&txn, u).await?;
    let scrub = Scrub {
        needles: &found.needles,
        alias: &alias,
    };
    let orders_kept = keep_orders_under_pseudonym(&txn, u.id, &scrub).await?;
    scrub_records(&txn, u.id, &scrub, &found.emails).await?;
    delete_personal_rows(&txn, u.id, now).await?;
    let (stored, files_deleted) = delete_files(&txn, st, u.id).await?;
    tombstone(&txn, u, &alias, now).await?;
    privacy_request::Entity::update_many()
        .col_expr(
            privacy_request::Column::State,
            Expr::value(PrivacyRequestState::Ready),
        )
        .col_expr(privacy_request::Column::CompletedAt, Expr::value(now))
        .col_expr(
            privacy_request::Column::Error,
            Expr::value(Option::<String>::None),
        )
        .col_expr(privacy_request::Column::UpdatedAt, Expr::value(now))
        .filter(privacy_request::Column::Id.eq(r.id))
        .exec(&txn)
        .await?;
    events::record_for(
        &txn,
        st,
        ctx,
        Some(u.id),
        DomainEvent::AccountErased {
            id: u.id,
            request_id: r.id,
            orders_kept,
            files_deleted,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(stored)
}

/// What identifies the customer, wherever it was copied: every address they used, name, RUT,
/// phone, street addresses.
struct Identifying {
    /// The values to replace (at least 4 characters: shorter ones would match unrelated text).
    needles: Vec<String>,
    /// Every email address the account had.
    emails: Vec<String>,
}

impl Identifying {
    async fn of(txn: &DatabaseTransaction, u: &user::Model) -> AppResult<Self> {
        let uid = u.id;
        let profile = user_profile::Entity::find()
            .filter(user_profile::Column::UserId.eq(uid))
            .one(txn)
            .await?;
        let addresses = address::Entity::find()
            .filter(address::Column::UserId.eq(uid))
            .all(txn)
            .await?;
        let links = account_link::Entity::find()
            .filter(account_link::Column::UserId.eq(uid))
            .all(txn)
            .await?;
        let mut emails: BTreeSet<String> = BTreeSet::from([u.email.clone()]);
        for l in &links {
            emails.insert(l.email.clone());
            emails.extend(l.previous_email.clone());
        }
        let mut needles: BTreeSet<String> = emails.clone();
        needles.insert(u.name.clone());
        needles.extend(u.rut.clone());
        if let Some(p) = &profile {
            needles.extend(p.phone.clone());
            needles.extend(p.address.clone());
        }
        for a in &addresses {
            needles.insert(a.address_line.clone());
            needles.extend(a.notes.clone());
        }
        Ok(Identifying {
            needles: needles
                .into_iter()
                .map(|n| n.trim().to_string())
                .filter(|n| n.chars().count() >= 4)
                .collect(),
            emails: emails.into_iter().collect(),
        })
    }
}

/// Kept for the tax law, under the pseudonym: orders (their address), payments and the
/// providers' answers about them. How many orders are kept.
async fn keep_orders_under_pseudonym(
    txn: &DatabaseTransaction,
    uid: i64,
    scrub: &Scrub<'_>,
) -> AppResult<u64> {
    let orders = order::Entity::find()
        .filter(order::Column::UserId.eq(uid))
        .all(txn)
        .await?;
    let order_ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    for o in &orders {
        let mut am = o.clone().into_active_model();
        if let Some(Value::Object(a)) = &o.shipping_address {
            let mut kept = serde_json::Map::new();
            kept.insert("name".into(), Value::from(scrub.alias));
            kept.insert("addressLine".into(), Value::from(scrub.alias));
            // The comuna and region stay: they are not the person, and regional sales use them.
            for k in ["comuna", "region"] {
                if let Some(v) = a.get(k) {
                    kept.insert(k.into(), v.clone());
                }
            }
            am.shipping_address = Set(Some(Value::Object(kept)));
        }
        am.shipping_address_id = Set(None);
        am.update(txn).await?;
    }
    let payment_ids: Vec<i64> = payment::Entity::find()
        .select_only()
        .column(payment::Column::Id)
        .filter(payment::Column::OrderId.is_in(order_ids))
        .into_tuple()
        .all(txn)
        .await?;
    scrub
        .rows(
            txn,
            payment::Entity::find().filter(payment::Column::Id.is_in(payment_ids.clone())),
            payment::Column::Id,
            payment::Column::RawPayload,
        )
        .await?;
    scrub
        .rows(
            txn,
            payment_event::Entity::find()
                .filter(payment_event::Column::PaymentId.is_in(payment_ids)),
            payment_event::Column::Id,
            payment_event::Column::Payload,
        )
        .await?;
    Ok(orders.len() as u64)
}

/// The audit log and the outbox keep their rows; personal values in them become the pseudonym
/// (the actor stays the user id, whose row becomes the tombstone). Mail to the address, sent or
/// not, is deleted: the message is gone with the account.
async fn scrub_records(
    txn: &DatabaseTransaction,
    uid: i64,
    scrub: &Scrub<'_>,
    emails: &[String],
) -> AppResult<()> {
    scrub
        .rows(
            txn,
            system_log::Entity::find().filter(
                Condition::any()
                    .add(system_log::Column::ActorUserId.eq(uid))
                    .add(
                        Condition::all()
                            .add(system_log::Column::Entity.eq("user"))
                            .add(system_log::Column::EntityId.eq(uid)),
                    )
                    .add(mentions(system_log::Column::Meta, emails)),
            ),
            system_log::Column::Id,
            system_log::Column::Meta,
        )
        .await?;
    scrub
        .rows(
            txn,
            outbox_event::Entity::find().filter(
                Condition::any()
                    .add(outbox_event::Column::ActorUserId.eq(uid))
                    .add(
                        Condition::all()
                            .add(outbox_event::Column::AggregateType.eq("user"))
                            .add(outbox_event::Column::AggregateId.eq(uid)),
                    )
                    .add(mentions(outbox_event::Column::Payload, emails)),
            ),
            outbox_event::Column::Id,
            outbox_event::Column::Payload,
        )
        .await?;
    job::Entity::delete_many()
        .filter(job::Column::State.ne(crate::entities::job::JobState::Running))
        .filter(mentions(job::Column::Payload, emails))
        .exec(txn)
        .await?;
    Ok(())
}

/// Deletes what the store has no reason to keep; consents stay without where they came from,
/// reviews keep their rating without their words.
async fn delete_personal_rows(
    txn: &DatabaseTransaction,
    uid: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let cart_ids: Vec<i64> = cart::Entity::find()
        .select_only()
        .column(cart::Column::Id)
        .filter(cart::Column::UserId.eq(uid))
        .into_tuple()
        .all(txn)
        .await?;
    cart_item::Entity::delete_many()
        .filter(cart_item::Column::CartId.is_in(cart_ids))
        .exec(txn)
        .await?;
    // Every row of these tables that is the customer's (the profile before the addresses it
    // points to).
    delete_rows::<cart::Entity>(txn, cart::Column::UserId, uid).await?;
    delete_rows::<user_profile::Entity>(txn, user_profile::Column::UserId, uid).await?;
    delete_rows::<address::Entity>(txn, address::Column::UserId, uid).await?;
    delete_rows::<session::Entity>(txn, session::Column::UserId, uid).await?;
    delete_rows::<auth_token::Entity>(txn, auth_token::Column::UserId, uid).await?;
    delete_rows::<account_link::Entity>(txn, account_link::Column::UserId, uid).await?;
    delete_rows::<recovery_code::Entity>(txn, recovery_code::Column::UserId, uid).await?;
    delete_rows::<credential_attempt::Entity>(txn, credential_attempt::Column::UserId, uid).await?;
    delete_rows::<user_two_factor::Entity>(txn, user_two_factor::Column::UserId, uid).await?;
    delete_rows::<idempotency_key::Entity>(txn, idempotency_key::Column::UserId, uid).await?;
    consent::Entity::update_many()
        .col_expr(consent::Column::Ip, Expr::value(Option::<String>::None))
        .col_expr(
            consent::Column::UserAgent,
            Expr::value(Option::<String>::None),
        )
        .filter(consent::Column::UserId.eq(uid))
        .exec(txn)
        .await?;
    // The product's average does not move.
    product_review::Entity::update_many()
        .col_expr(
            product_review::Column::Title,
            Expr::value(Option::<String>::None),
        )
        .col_expr(product_review::Column::Body, Expr::value(""))
        .col_expr(product_review::Column::UpdatedAt, Expr::value(now))
        .filter(product_review::Column::UserId.eq(uid))
        .exec(txn)
        .await?;
    Ok(())
}

/// Medicinal documents, every private file of the customer and earlier exports' ZIPs: their rows
/// go now, their stored bytes once the transaction committed (a removal enqueued with it, each
/// returned to be run at once after the commit). How many files.
async fn delete_files(
    txn: &DatabaseTransaction,
    st: &AppState,
    uid: i64,
) -> AppResult<(Vec<files::Stored>, u64)> {
    delete_rows::<medicinal_document::Entity>(txn, medicinal_document::Column::UserId, uid).await?;
    let private = file::Entity::find()
        .filter(file::Column::OwnerId.eq(uid))
        .filter(file::Column::IsPublic.eq(false))
        .all(txn)
        .await?;
    file::Entity::delete_many()
        .filter(file::Column::Id.is_in(private.iter().map(|f| f.id)))
        .exec(txn)
        .await?;
    let mut stored: Vec<files::Stored> = private.iter().map(files::Stored::of).collect();
    let exports = privacy_request::Entity::find()
        .filter(privacy_request::Column::UserId.eq(uid))
        .filter(privacy_request::Column::StorageKey.is_not_null())
        .all(txn)
        .await?;
    stored.extend(
        exports
            .iter()
            .filter_map(|e| e.storage_key.as_ref())
            .map(files::Stored::private),
    );
    for s in &stored {
        files::forget(txn, st, s).await?;
    }
    privacy_request::Entity::update_many()
        .col_expr(
            privacy_request::Column::StorageKey,
            Expr::value(Option::<String>::None),
        )
        .filter(privacy_request::Column::UserId.eq(uid))
        .exec(txn)
        .await?;
    Ok((stored, private.len() as u64))
}

/// The tombstone: the id that kept orders and audit rows point to, nothing personal.
async fn tombstone(
    txn: &DatabaseTransaction,
    u: &user::Model,
    alias: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut am = u.clone().into_active_model();
    am.name = Set(user::ERASED_NAME.to_string());
    am.email = Set(alias.to_string());
    am.rut = Set(None);
    am.password_hash = Set("!erased".into());
    am.is_active = Set(false);
    am.validated_medicinal = Set(false);
    am.email_verified_at = Set(None);
    am.deleted_at = Set(Some(u.deleted_at.unwrap_or(now)));
    am.erased_at = Set(Some(now));
    am.processing_blocked_reason = Set(None);
    am.updated_at = Set(now);
    am.update(txn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_in_nested_strings_only() {
        let mut v = serde_json::json!({
            "payer": {"email": "ana@example.cl", "name": "Ana Pérez"},
            "list": ["x ana@example.cl y", 3],
            "amount": 1000
        });
        let needles = vec!["ana@example.cl".to_string(), "Ana Pérez".to_string()];
        assert!(scrub(&mut v, &needles, "cliente-1"));
        assert_eq!(
            v,
            serde_json::json!({
                "payer": {"email": "cliente-1", "name": "cliente-1"},
                "list": ["x cliente-1 y", 3],
                "amount": 1000
            })
        );
        assert!(!scrub(&mut v, &needles, "cliente-1"));
    }

    #[test]
    fn pseudonyms_are_random() {
        let a = pseudonym();
        assert!(a.starts_with("cliente-") && a.len() == 20, "{a}");
        assert_ne!(a, pseudonym());
    }
}
