//! `data.json`: everything the store holds about a customer, in the shape
//! `docs/data-export.schema.json` states (change both together; a test validates one against the
//! other). Each section is read by its own function.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, Iterable, PrimaryKeyToColumn,
    QueryFilter, QueryOrder,
};
use serde::Serialize;

use crate::entities::{
    address, cart, cart_item, consent, coupon, file, medicinal_document, order, order_item,
    payment, product_review, product_variant, session, system_log, user, user_profile,
};
use crate::error::{AppError, AppResult};

/// The version of `data.json`'s shape (`formatVersion`).
pub const FORMAT_VERSION: u32 = 1;

/// `data.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataExport {
    pub format_version: u32,
    pub generated_at: DateTime<Utc>,
    pub profile: Profile,
    pub consents: Vec<Consent>,
    pub addresses: Vec<Address>,
    pub carts: Vec<Cart>,
    pub orders: Vec<Order>,
    pub payments: Vec<Payment>,
    pub coupons_used: Vec<CouponUse>,
    pub reviews: Vec<Review>,
    pub medicinal_documents: Vec<MedicinalDocument>,
    pub sessions: Vec<Session>,
    pub audit_entries: Vec<AuditEntry>,
    pub files: Vec<ExportFile>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub rut: Option<String>,
    pub role: String,
    pub is_active: bool,
    pub validated_medicinal: bool,
    pub phone: Option<String>,
    pub birthdate: Option<chrono::NaiveDate>,
    pub address: Option<String>,
    pub comuna: Option<String>,
    pub region: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    pub id: i64,
    pub purpose: String,
    pub policy_version: String,
    pub source: String,
    pub explicit: bool,
    pub granted_at: DateTime<Utc>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub id: i64,
    pub name: String,
    pub address_line: String,
    pub comuna: String,
    pub region: String,
    pub notes: Option<String>,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cart {
    pub id: i64,
    pub items: Vec<CartItem>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CartItem {
    pub variant_id: i64,
    pub sku: Option<String>,
    pub quantity: i32,
    pub added_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: i64,
    pub status: String,
    pub items: Vec<OrderItem>,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub shipping_price_cents: i64,
    pub total_cents: i64,
    pub coupon_code: Option<String>,
    pub payment_provider: Option<String>,
    pub shipping_method: String,
    pub shipping_address: Option<serde_json::Value>,
    pub courier: Option<String>,
    pub tracking_number: Option<String>,
    pub estimated_delivery_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: i64,
    pub variant_id: i64,
    pub product_name: String,
    pub option_label: String,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

/// A payment, without what only the provider and the store need (tokens, raw answers).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: i64,
    pub order_id: i64,
    pub provider: String,
    pub status: String,
    pub amount_cents: i64,
    pub auth_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponUse {
    pub order_id: i64,
    pub code: String,
    pub discount_cents: i64,
    pub used_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: i64,
    pub product_id: i64,
    pub rating: i16,
    pub title: Option<String>,
    pub body: String,
    pub is_visible: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MedicinalDocument {
    pub id: i64,
    pub doc_type: String,
    pub status: String,
    pub file_id: i64,
    pub notes: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<i64>,
    pub meta: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A file the customer uploaded, and where it is in the ZIP.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportFile {
    pub id: i64,
    pub purpose: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    /// The file's path inside the ZIP.
    pub path: String,
    #[serde(skip)]
    pub storage_key: String,
    #[serde(skip)]
    pub is_public: bool,
}

/// Everything the store holds about `user_id`.
pub async fn gather<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: DateTime<Utc>,
) -> AppResult<DataExport> {
    let (orders, coupons_used, payments) = orders_of(conn, user_id).await?;
    Ok(DataExport {
        format_version: FORMAT_VERSION,
        generated_at: now,
        profile: profile_of(conn, user_id).await?,
        consents: owned::<consent::Entity, _, _>(conn, consent::Column::UserId, user_id).await?,
        addresses: owned::<address::Entity, _, _>(conn, address::Column::UserId, user_id).await?,
        carts: carts_of(conn, user_id).await?,
        orders,
        payments,
        coupons_used,
        reviews: owned::<product_review::Entity, _, _>(
            conn,
            product_review::Column::UserId,
            user_id,
        )
        .await?,
        medicinal_documents: owned::<medicinal_document::Entity, _, _>(
            conn,
            medicinal_document::Column::UserId,
            user_id,
        )
        .await?,
        sessions: owned::<session::Entity, _, _>(conn, session::Column::UserId, user_id).await?,
        audit_entries: audit_entries_of(conn, user_id).await?,
        files: owned::<file::Entity, _, _>(conn, file::Column::OwnerId, user_id).await?,
    })
}

/// The rows of `E` whose `owner` column is `user_id`, in the order they were made (by primary
/// key), each as its section's entry.
async fn owned<E, T, C>(conn: &C, owner: E::Column, user_id: i64) -> AppResult<Vec<T>>
where
    E: EntityTrait,
    T: From<E::Model>,
    C: ConnectionTrait,
{
    let mut q = E::find().filter(owner.eq(user_id));
    for key in E::PrimaryKey::iter() {
        q = q.order_by_asc(key.into_column());
    }
    Ok(q.all(conn).await?.into_iter().map(T::from).collect())
}

async fn profile_of<C: ConnectionTrait>(conn: &C, user_id: i64) -> AppResult<Profile> {
    let u = user::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    let p = user_profile::Entity::find()
        .filter(user_profile::Column::UserId.eq(user_id))
        .one(conn)
        .await?;
    Ok(Profile {
        id: u.id,
        name: u.name,
        email: u.email,
        email_verified_at: u.email_verified_at,
        rut: u.rut,
        role: u.role.as_str().to_string(),
        is_active: u.is_active,
        validated_medicinal: u.validated_medicinal,
        phone: p.as_ref().and_then(|p| p.phone.clone()),
        birthdate: p.as_ref().and_then(|p| p.birthdate),
        address: p.as_ref().and_then(|p| p.address.clone()),
        comuna: p.as_ref().and_then(|p| p.comuna.clone()),
        region: p.as_ref().and_then(|p| p.region.clone()),
        created_at: u.created_at,
        updated_at: u.updated_at,
    })
}

async fn carts_of<C: ConnectionTrait>(conn: &C, user_id: i64) -> AppResult<Vec<Cart>> {
    let mut carts = Vec::new();
    for c in cart::Entity::find()
        .filter(cart::Column::UserId.eq(user_id))
        .order_by_asc(cart::Column::Id)
        .all(conn)
        .await?
    {
        let lines = cart_item::Entity::find()
            .filter(cart_item::Column::CartId.eq(c.id))
            .order_by_asc(cart_item::Column::Id)
            .all(conn)
            .await?;
        let skus: HashMap<i64, String> = product_variant::Entity::find()
            .filter(product_variant::Column::Id.is_in(lines.iter().map(|i| i.variant_id)))
            .all(conn)
            .await?
            .into_iter()
            .map(|v| (v.id, v.sku))
            .collect();
        carts.push(Cart {
            id: c.id,
            items: lines
                .into_iter()
                .map(|i| CartItem {
                    sku: skus.get(&i.variant_id).cloned(),
                    variant_id: i.variant_id,
                    quantity: i.quantity,
                    added_at: i.created_at,
                })
                .collect(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        });
    }
    Ok(carts)
}

/// The orders with their items, the coupons they used, and their payments.
async fn orders_of<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> AppResult<(Vec<Order>, Vec<CouponUse>, Vec<Payment>)> {
    let order_rows = order::Entity::find()
        .filter(order::Column::UserId.eq(user_id))
        .order_by_asc(order::Column::Id)
        .all(conn)
        .await?;
    let order_ids: Vec<i64> = order_rows.iter().map(|o| o.id).collect();
    let items = order_item::Entity::find()
        .filter(order_item::Column::OrderId.is_in(order_ids.clone()))
        .order_by_asc(order_item::Column::Id)
        .all(conn)
        .await?;
    let coupon_ids: Vec<i64> = order_rows.iter().filter_map(|o| o.coupon_id).collect();
    let coupons: HashMap<i64, String> = coupon::Entity::find()
        .filter(coupon::Column::Id.is_in(coupon_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|c| (c.id, c.code))
        .collect();
    let mut coupons_used = Vec::new();
    let orders = order_rows
        .into_iter()
        .map(|o| {
            let code = o.coupon_id.and_then(|id| coupons.get(&id).cloned());
            if let Some(code) = &code {
                coupons_used.push(CouponUse {
                    order_id: o.id,
                    code: code.clone(),
                    discount_cents: o.discount_cents,
                    used_at: o.created_at,
                });
            }
            let id = o.id;
            let lines = items.iter().filter(|i| i.order_id == id);
            Order::new(o, code, lines.map(OrderItem::from).collect())
        })
        .collect();
    let payments = payment::Entity::find()
        .filter(payment::Column::OrderId.is_in(order_ids))
        .order_by_asc(payment::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(Payment::from)
        .collect();
    Ok((orders, coupons_used, payments))
}

/// The entries about the account, and what the customer did to anything else.
async fn audit_entries_of<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> AppResult<Vec<AuditEntry>> {
    Ok(system_log::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(system_log::Column::Entity.eq("user"))
                        .add(system_log::Column::EntityId.eq(user_id)),
                )
                .add(
                    Condition::all()
                        .add(system_log::Column::ActorUserId.eq(user_id))
                        .add(system_log::Column::Entity.ne("user")),
                ),
        )
        .order_by_asc(system_log::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|l| AuditEntry {
            id: l.id,
            action: l.action,
            entity: l.entity,
            entity_id: l.entity_id,
            meta: l.meta,
            created_at: l.created_at,
        })
        .collect())
}

impl From<consent::Model> for Consent {
    fn from(c: consent::Model) -> Self {
        Consent {
            id: c.id,
            purpose: c.purpose.as_str().to_string(),
            policy_version: c.policy_version,
            source: serde_plain(&c.source),
            explicit: c.explicit,
            granted_at: c.granted_at,
            withdrawn_at: c.withdrawn_at,
            ip: c.ip,
            user_agent: c.user_agent,
        }
    }
}

impl From<address::Model> for Address {
    fn from(a: address::Model) -> Self {
        Address {
            id: a.id,
            name: a.name,
            address_line: a.address_line,
            comuna: a.comuna,
            region: a.region,
            notes: a.notes,
            is_default: a.is_default,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

impl Order {
    fn new(o: order::Model, coupon_code: Option<String>, items: Vec<OrderItem>) -> Self {
        Order {
            id: o.id,
            status: serde_plain(&o.status),
            items,
            subtotal_cents: o.subtotal_cents,
            discount_cents: o.discount_cents,
            shipping_price_cents: o.shipping_price_cents,
            total_cents: o.total_cents,
            coupon_code,
            payment_provider: o.payment_provider,
            shipping_method: serde_plain(&o.shipping_method),
            shipping_address: o.shipping_address,
            courier: o.courier,
            tracking_number: o.tracking_number,
            estimated_delivery_at: o.estimated_delivery_at,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

impl From<&order_item::Model> for OrderItem {
    fn from(i: &order_item::Model) -> Self {
        OrderItem {
            product_id: i.product_id,
            variant_id: i.variant_id,
            product_name: i.product_name.clone(),
            option_label: i.option_label.clone(),
            quantity: i.quantity,
            unit_price_cents: i.unit_price_cents,
            line_total_cents: i.line_total_cents,
        }
    }
}

impl From<payment::Model> for Payment {
    fn from(p: payment::Model) -> Self {
        Payment {
            id: p.id,
            order_id: p.order_id,
            provider: p.provider.as_str().to_string(),
            status: p.status.as_str().to_string(),
            amount_cents: p.amount_cents,
            auth_code: p.auth_code,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

impl From<product_review::Model> for Review {
    fn from(r: product_review::Model) -> Self {
        Review {
            id: r.id,
            product_id: r.product_id,
            rating: r.rating,
            title: r.title,
            body: r.body,
            is_visible: r.is_visible,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl From<medicinal_document::Model> for MedicinalDocument {
    fn from(d: medicinal_document::Model) -> Self {
        MedicinalDocument {
            id: d.id,
            doc_type: serde_plain(&d.doc_type),
            status: d.status.as_str().to_string(),
            file_id: d.file_id,
            notes: d.notes,
            reviewed_at: d.reviewed_at,
            expires_at: d.expires_at,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

impl From<session::Model> for Session {
    fn from(s: session::Model) -> Self {
        Session {
            id: s.id,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
        }
    }
}

impl From<file::Model> for ExportFile {
    fn from(f: file::Model) -> Self {
        let ext = std::path::Path::new(&f.storage_key)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("bin")
            .to_string();
        ExportFile {
            id: f.id,
            path: format!("files/{}-{}.{ext}", f.id, f.purpose),
            purpose: f.purpose,
            content_type: f.content_type,
            size_bytes: f.size_bytes,
            sha256: f.sha256,
            created_at: f.created_at,
            storage_key: f.storage_key,
            is_public: f.is_public,
        }
    }
}

/// An enum's wire name (its serde string).
fn serde_plain<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
