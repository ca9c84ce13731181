//! GraphQL for the signed-in customer's addresses.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

use super::guards::RoleGuard;
use super::scalars::Timestamp;
use super::{parts, GqlResult};
use crate::entities::address;
use crate::entities::user::Role;
use crate::services::accounts::addresses::{self, AddressInput, UpdateAddressInput};
use crate::services::platform::pagination::Page;

#[derive(SimpleObject, Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": 3, "name": "Casa", "addressLine": "Av. Providencia 1234, depto 56", "comuna": "Providencia",
    "region": "Metropolitana", "notes": null, "isDefault": true, "createdAt": "2026-11-22T08:00:00Z", "updatedAt": "2026-11-22T08:00:00Z"}))]
pub struct Address {
    pub id: i64,
    pub name: String,
    pub address_line: String,
    pub comuna: String,
    pub region: String,
    pub notes: Option<String>,
    pub is_default: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
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
            created_at: a.created_at.into(),
            updated_at: a.updated_at.into(),
        }
    }
}

#[derive(SimpleObject, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"items": [{"id": 3, "name": "Casa", "region": "Metropolitana", "isDefault": true}], "total": 1, "page": 1, "pageSize": 20}))]
pub struct AddressPage {
    pub items: Vec<Address>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Default)]
pub struct AddressesQuery;

#[Object]
impl AddressesQuery {
    /// The signed-in customer's addresses, the default first.
    #[graphql(
        guard = "RoleGuard(Role::Customer)",
        complexity = "crate::graphql::limits::paged(page_size, child_complexity)"
    )]
    async fn addresses(
        &self,
        ctx: &Context<'_>,
        page: Option<i64>,
        page_size: Option<i64>,
    ) -> GqlResult<AddressPage> {
        let (st, rc) = parts(ctx);
        let p = Page::parse(page, page_size)?;
        let (items, total) = addresses::list(st, rc, p).await?;
        Ok(AddressPage {
            items: items.into_iter().map(Address::from).collect(),
            total,
            page: p.page,
            page_size: p.page_size,
        })
    }
}

#[derive(Default)]
pub struct AddressesMutation;

#[Object]
impl AddressesMutation {
    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn create_address(&self, ctx: &Context<'_>, input: AddressInput) -> GqlResult<Address> {
        let (st, rc) = parts(ctx);
        Ok(addresses::create(st, rc, input).await?.into())
    }

    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn update_address(
        &self,
        ctx: &Context<'_>,
        id: i64,
        input: UpdateAddressInput,
    ) -> GqlResult<Address> {
        let (st, rc) = parts(ctx);
        Ok(addresses::update(st, rc, id, input).await?.into())
    }

    #[graphql(guard = "RoleGuard(Role::Customer)")]
    async fn delete_address(&self, ctx: &Context<'_>, id: i64) -> GqlResult<bool> {
        let (st, rc) = parts(ctx);
        addresses::delete(st, rc, id).await
    }
}
