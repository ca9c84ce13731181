use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A payment provider (providers.md). Stored as its lower-case name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[sea_orm(string_value = "webpay")]
    Webpay,
    #[sea_orm(string_value = "flow")]
    Flow,
    #[sea_orm(string_value = "mp")]
    Mp,
    #[sea_orm(string_value = "test")]
    Test,
}

impl Provider {
    /// Every provider the API knows, configured or not.
    pub const ALL: [Provider; 4] = [
        Provider::Webpay,
        Provider::Flow,
        Provider::Mp,
        Provider::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Webpay => "webpay",
            Provider::Flow => "flow",
            Provider::Mp => "mp",
            Provider::Test => "test",
        }
    }

    /// The provider named `name` exactly, if there is one.
    pub fn parse(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a payment stands. `initiated` → `pending` → `paid` | `failed`; a paid payment whose order
/// cannot be fulfilled (or is cancelled) becomes `refund_required`, then `refunded`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    #[sea_orm(string_value = "initiated")]
    Initiated,
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "paid")]
    Paid,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "refunded")]
    Refunded,
    #[sea_orm(string_value = "refund_required")]
    RefundRequired,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Initiated,
        PaymentStatus::Pending,
        PaymentStatus::Paid,
        PaymentStatus::Failed,
        PaymentStatus::Refunded,
        PaymentStatus::RefundRequired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Initiated => "initiated",
            PaymentStatus::Pending => "pending",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::RefundRequired => "refund_required",
        }
    }

    pub fn parse(name: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// A provider's outcome was applied: no later notification changes it (only the refund
    /// path moves `paid` on).
    pub fn is_final(self) -> bool {
        !matches!(self, PaymentStatus::Initiated | PaymentStatus::Pending)
    }

    /// The lifecycle: an open payment (initiated or pending) may learn it is pending, paid or
    /// failed; paid may need a refund; a needed refund may be made. Failed and refunded are final.
    pub fn can_transition_to(self, to: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, to),
            (Initiated | Pending, Pending | Paid | Failed)
                | (Paid, RefundRequired)
                | (RefundRequired, Refunded)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub order_id: i64,
    pub provider: Provider,
    pub provider_txn_id: String,
    pub status: PaymentStatus,
    pub amount_cents: i64,
    pub auth_code: Option<String>,
    pub idempotency_key: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub raw_payload: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::{self, *};
    use super::Provider;
    use sea_orm::Iterable;

    #[test]
    fn every_payment_transition_allowed_or_not() {
        let allowed = [
            (Initiated, Pending),
            (Initiated, Paid),
            (Initiated, Failed),
            (Pending, Pending),
            (Pending, Paid),
            (Pending, Failed),
            (Paid, RefundRequired),
            (RefundRequired, Refunded),
        ];
        for from in PaymentStatus::iter() {
            for to in PaymentStatus::iter() {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
            assert_eq!(PaymentStatus::parse(from.as_str()), Some(from));
            assert_eq!(from.is_final(), !matches!(from, Initiated | Pending));
        }
        assert_eq!(PaymentStatus::ALL.len(), PaymentStatus::iter().count());
    }

    #[test]
    fn providers_by_name() {
        for p in Provider::iter() {
            assert_eq!(Provider::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap().as_str(), Some(p.as_str()));
        }
        assert_eq!(Provider::ALL.len(), Provider::iter().count());
        assert_eq!(Provider::parse("Webpay"), None);
        assert_eq!(Provider::parse(""), None);
    }
}
