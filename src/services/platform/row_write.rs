//! A write to one row, the shape categories, products, variants, coupons and addresses share:
//! the write transaction (holding the catalogue's writing guard for catalogue rows, so cached
//! reads never outlive it), then for a new row ([`begin_create`]) its insert recorded as an event,
//! or for an admin's change to a row by id ([`open`]) the row or `not_found`, then either an
//! update recorded with its changes or a removal (deleted, or deactivated when history refers to
//! it) recorded as an event; and the commit.

use sea_orm::sea_query::LockType;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait,
    IntoActiveModel, ModelTrait, PrimaryKeyTrait, QuerySelect,
};

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::domain::Scope;
use crate::error::{AppError, AppResult};
use crate::infra::freshness::WriteGuard;
use crate::services::platform::events::{self, Changes, DomainEvent, Removal};
use crate::state::AppState;

/// Whose cached reads a write invalidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cached {
    /// A catalogue row: the catalogue's generation moves while the write is open.
    Catalogue,
    /// Nothing cached reads it.
    Nothing,
}

/// A row an admin is changing, inside its open write transaction.
pub(crate) struct RowWrite<'a, M> {
    st: &'a AppState,
    ctx: &'a RequestCtx,
    pub txn: DatabaseTransaction,
    pub current: M,
    _catalogue: Option<WriteGuard<'a>>,
}

/// Checks the caller is an admin (or an API key holding `key_scope`, when the row's writes are
/// open to one), opens the write transaction and loads row `id` of `E` locked
/// for the update (`not_found` naming `what` when there is none — also when a deletion committed
/// while this waited for the row).
pub(crate) async fn open<'a, E>(
    st: &'a AppState,
    ctx: &'a RequestCtx,
    id: i64,
    what: &'static str,
    cached: Cached,
    key_scope: Option<Scope>,
) -> AppResult<RowWrite<'a, E::Model>>
where
    E: EntityTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<i64>,
{
    open_locked::<E>(st, ctx, id, what, cached, key_scope, LockType::NoKeyUpdate).await
}

/// [`open`] for a removal: the row is locked `FOR UPDATE` (PostgreSQL), the one lock that also
/// holds off new rows referencing it (an order line of a checkout under way waits, or the
/// checkout that already wrote one is waited for), so whether history refers to the row — read
/// next — stays true until the commit: deleted, or deactivated, never a foreign-key conflict.
pub(crate) async fn open_to_remove<'a, E>(
    st: &'a AppState,
    ctx: &'a RequestCtx,
    id: i64,
    what: &'static str,
    cached: Cached,
    key_scope: Option<Scope>,
) -> AppResult<RowWrite<'a, E::Model>>
where
    E: EntityTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<i64>,
{
    open_locked::<E>(st, ctx, id, what, cached, key_scope, LockType::Update).await
}

#[allow(clippy::too_many_arguments)]
async fn open_locked<'a, E>(
    st: &'a AppState,
    ctx: &'a RequestCtx,
    id: i64,
    what: &'static str,
    cached: Cached,
    key_scope: Option<Scope>,
    lock: LockType,
) -> AppResult<RowWrite<'a, E::Model>>
where
    E: EntityTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<i64>,
{
    match key_scope {
        Some(scope) => ctx.require_scope(scope)?,
        None => {
            ctx.require_admin()?;
        }
    }
    let catalogue = (cached == Cached::Catalogue).then(|| st.catalogue.writing());
    let txn = begin_write(&st.db).await?;
    let mut q = E::find_by_id(id);
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        q = q.lock(lock);
    }
    let current = q
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found(what))?;
    Ok(RowWrite {
        st,
        ctx,
        txn,
        current,
        _catalogue: catalogue,
    })
}

/// A row being created, inside its open write transaction: checks that need the transaction (a
/// free slug or code, a lock on the owner) run on `txn`, then [`NewRow::insert`] and
/// [`NewRow::created`].
pub(crate) struct NewRow<'a> {
    st: &'a AppState,
    ctx: &'a RequestCtx,
    pub txn: DatabaseTransaction,
    _catalogue: Option<WriteGuard<'a>>,
}

/// Opens the write transaction of a new row (the caller has checked who may create it).
pub(crate) async fn begin_create<'a>(
    st: &'a AppState,
    ctx: &'a RequestCtx,
    cached: Cached,
) -> AppResult<NewRow<'a>> {
    let catalogue = (cached == Cached::Catalogue).then(|| st.catalogue.writing());
    let txn = begin_write(&st.db).await?;
    Ok(NewRow {
        st,
        ctx,
        txn,
        _catalogue: catalogue,
    })
}

impl NewRow<'_> {
    /// Inserts `am` in the transaction.
    pub(crate) async fn insert<A>(&self, am: A) -> AppResult<<A::Entity as EntityTrait>::Model>
    where
        A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
        <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
    {
        Ok(am.insert(&self.txn).await?)
    }

    /// Records `event` (the creation of `created`) and commits; the new row.
    pub(crate) async fn created<M>(self, created: M, event: DomainEvent) -> AppResult<M> {
        events::record(&self.txn, self.st, self.ctx, event).await?;
        self.txn.commit().await?;
        Ok(created)
    }
}

impl<M> RowWrite<'_, M> {
    /// Writes `am` (built from [`Self::current`]) and records `event(changes, updated)` when it
    /// changes anything (see [`events::update_recorded`]), then commits.
    pub(crate) async fn update<A>(
        self,
        am: A,
        names_only: &[&str],
        skip: &[&str],
        event: impl FnOnce(Changes, &M) -> DomainEvent,
    ) -> AppResult<M>
    where
        A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
        A::Entity: EntityTrait<Model = M>,
        M: IntoActiveModel<A>,
    {
        let updated = events::update_recorded(
            &self.txn,
            self.st,
            self.ctx,
            self.current,
            am,
            names_only,
            skip,
            event,
        )
        .await?;
        self.txn.commit().await?;
        Ok(updated)
    }

    /// Deletes the row, or deactivates it when `referenced` (history points at it), records
    /// `event(outcome)` and commits.
    pub(crate) async fn remove(
        self,
        referenced: bool,
        event: impl FnOnce(Removal) -> DomainEvent,
    ) -> AppResult<bool>
    where
        M: ModelTrait + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel> + Send,
        <M::Entity as EntityTrait>::ActiveModel: sea_orm::ActiveModelBehavior + Send,
        <M::Entity as EntityTrait>::Model: IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel>,
    {
        let outcome =
            events::delete_or_deactivate(&self.txn, &self.st.clock, self.current, referenced)
                .await?;
        events::record(&self.txn, self.st, self.ctx, event(outcome)).await?;
        self.txn.commit().await?;
        Ok(true)
    }
}
