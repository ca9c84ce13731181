//! Consents under Ley 21.719: which privacy policy version a customer accepted, and whether they
//! agreed to the processing of their health data (the medicinal documents they submit).
//!
//! Each consent given is a row (`consents`); withdrawing one stamps `withdrawn_at` on the live
//! rows of that purpose. The privacy policy counts as accepted when a live row exists for the
//! version in force (`PRIVACY_POLICY_VERSION`); the health-data consent when any live row exists.
//! A withdrawn health-data consent that was not given again ends medicinal access and takes the
//! customer's pending documents out of review ([`health_data_withdrawn`]).

use async_graphql::InputObject;
use sea_orm::sea_query::{Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::consent::{self, ConsentPurpose, ConsentSource};
use crate::error::{AppError, AppResult, ErrorCode, FieldIssue};
use crate::services::platform::events::{self, DomainEvent};
use crate::state::AppState;

/// The caller's consents: what is in force now, and every consent given (newest first).
#[derive(Debug, Clone)]
pub struct Consents {
    pub policy_version: String,
    pub privacy_policy_accepted: bool,
    pub health_data: bool,
    pub items: Vec<consent::Model>,
}

/// `POST /api/me/consents/{purpose}`'s optional body.
#[derive(Debug, Clone, Default, InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[graphql(name = "GrantConsentInput")]
#[schema(example = json!({"policyVersion": "2026-12-01"}))]
pub struct GrantInput {
    /// For `privacy_policy`: the version the customer read; refused (409 `policy_changed`) when
    /// it is no longer the one in force. Omitted: the version in force.
    #[serde(default)]
    pub policy_version: Option<String>,
}

/// The live rows of `purpose` for `user`: the privacy policy of `version`, or any health-data
/// consent.
fn live(user_id: i64, purpose: ConsentPurpose, version: &str) -> sea_orm::Select<consent::Entity> {
    let q = consent::Entity::find()
        .filter(consent::Column::UserId.eq(user_id))
        .filter(consent::Column::Purpose.eq(purpose))
        .filter(consent::Column::WithdrawnAt.is_null());
    match purpose {
        ConsentPurpose::PrivacyPolicy => q.filter(consent::Column::PolicyVersion.eq(version)),
        ConsentPurpose::HealthData => q,
    }
}

/// Whether `user` has the consent for `purpose` in force.
pub async fn has<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    user_id: i64,
    purpose: ConsentPurpose,
) -> AppResult<bool> {
    Ok(live(user_id, purpose, &st.config.privacy.policy_version)
        .count(conn)
        .await?
        > 0)
}

/// An SQL condition, true when the user `user` (an id expression) withdrew the health-data
/// consent and has not given it again.
pub fn health_data_withdrawn(user: SimpleExpr) -> SimpleExpr {
    let rows = |withdrawn: bool| {
        let mut q = Query::select();
        q.expr(Expr::val(1))
            .from(consent::Entity)
            .and_where(Expr::col((consent::Entity, consent::Column::UserId)).eq(user.clone()))
            .and_where(
                Expr::col((consent::Entity, consent::Column::Purpose))
                    .eq(ConsentPurpose::HealthData.as_str()),
            );
        if withdrawn {
            q.and_where(Expr::col((consent::Entity, consent::Column::WithdrawnAt)).is_not_null());
        } else {
            q.and_where(Expr::col((consent::Entity, consent::Column::WithdrawnAt)).is_null());
        }
        q.to_owned()
    };
    Expr::exists(rows(true)).and(Expr::exists(rows(false)).not())
}

/// Records a consent of `user` given now (in the caller's transaction). Giving one already in
/// force changes nothing, except that an express acceptance upgrades an implied one.
pub async fn grant<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    ctx: &RequestCtx,
    user_id: i64,
    purpose: ConsentPurpose,
    source: ConsentSource,
    explicit: bool,
) -> AppResult<consent::Model> {
    let version = st.config.privacy.policy_version.clone();
    let now = st.clock.now();
    // Two grants at once queue on the user's row; the second finds the first's row in force.
    crate::services::accounts::users::lock(conn, user_id).await?;
    if let Some(row) = live(user_id, purpose, &version).one(conn).await? {
        if row.explicit || !explicit {
            return Ok(row);
        }
        let mut am: consent::ActiveModel = row.into();
        am.explicit = Set(true);
        am.source = Set(source);
        am.granted_at = Set(now);
        am.ip = Set(Some(ctx.client_ip.to_string()));
        am.user_agent = Set(ctx.user_agent.clone());
        let row = am.update(conn).await?;
        granted_event(conn, st, ctx, &row).await?;
        return Ok(row);
    }
    let inserted = consent::ActiveModel {
        user_id: Set(user_id),
        purpose: Set(purpose),
        policy_version: Set(version.clone()),
        source: Set(source),
        explicit: Set(explicit),
        granted_at: Set(now),
        withdrawn_at: Set(None),
        ip: Set(Some(ctx.client_ip.to_string())),
        user_agent: Set(ctx.user_agent.clone()),
        ..Default::default()
    }
    .insert(conn)
    .await;
    // Given at the same moment by a writer that did not queue on the user's row: the transaction
    // is spoilt on PostgreSQL, so the whole change is run again (and then finds that consent in
    // force).
    let row = inserted.map_err(crate::error::unique_or(AppError::contention))?;
    granted_event(conn, st, ctx, &row).await?;
    Ok(row)
}

async fn granted_event<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    ctx: &RequestCtx,
    row: &consent::Model,
) -> AppResult<()> {
    events::record(
        conn,
        st,
        ctx,
        DomainEvent::ConsentGranted {
            id: row.user_id,
            consent_id: row.id,
            purpose: row.purpose,
            policy_version: row.policy_version.clone(),
            source: row.source,
            explicit: row.explicit,
        },
    )
    .await
}

/// The 403 a document submission without the health-data consent answers.
pub fn health_data_required() -> AppError {
    AppError::new(
        ErrorCode::ConsentRequired,
        "Medicinal documents are health data: give your consent to their processing first \
         (POST /api/me/consents/health_data, or acceptHealthDataProcessing: true)",
    )
    .with_details(vec![FieldIssue::new(
        "acceptHealthDataProcessing",
        "consent_required",
    )])
}

/// The caller's consents.
pub async fn mine(st: &AppState, ctx: &RequestCtx) -> AppResult<Consents> {
    let me = ctx.require_user()?.id;
    summary(&st.db, st, me).await
}

async fn summary<C: ConnectionTrait>(conn: &C, st: &AppState, user_id: i64) -> AppResult<Consents> {
    let items = consent::Entity::find()
        .filter(consent::Column::UserId.eq(user_id))
        .order_by_desc(consent::Column::GrantedAt)
        .order_by_desc(consent::Column::Id)
        .all(conn)
        .await?;
    let version = st.config.privacy.policy_version.clone();
    let is_live = |purpose: ConsentPurpose| {
        items.iter().any(|c| {
            c.purpose == purpose
                && c.withdrawn_at.is_none()
                && (purpose == ConsentPurpose::HealthData || c.policy_version == version)
        })
    };
    Ok(Consents {
        privacy_policy_accepted: is_live(ConsentPurpose::PrivacyPolicy),
        health_data: is_live(ConsentPurpose::HealthData),
        policy_version: version,
        items,
    })
}

/// The caller gives a consent (`POST /api/me/consents/{purpose}`).
pub async fn give(
    st: &AppState,
    ctx: &RequestCtx,
    purpose: ConsentPurpose,
    input: GrantInput,
) -> AppResult<Consents> {
    let me = ctx.require_user()?.id;
    if let Some(v) = input.policy_version.as_deref().map(str::trim) {
        if purpose == ConsentPurpose::PrivacyPolicy && v != st.config.privacy.policy_version {
            return Err(AppError::conflict_field(
                "policyVersion",
                "policy_changed",
                format!(
                    "The privacy policy in force is version {}; read it and accept that one",
                    st.config.privacy.policy_version
                ),
            ));
        }
    }
    let txn = begin_write(&st.db).await?;
    grant(&txn, st, ctx, me, purpose, ConsentSource::Request, true).await?;
    let out = summary(&txn, st, me).await?;
    txn.commit().await?;
    Ok(out)
}

/// The caller withdraws a consent (`POST /api/me/consents/{purpose}/withdraw`). Withdrawing one
/// not in force changes nothing.
pub async fn withdraw(
    st: &AppState,
    ctx: &RequestCtx,
    purpose: ConsentPurpose,
) -> AppResult<Consents> {
    let me = ctx.require_user()?.id;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let done = consent::Entity::update_many()
        .col_expr(consent::Column::WithdrawnAt, Expr::value(now))
        .filter(consent::Column::UserId.eq(me))
        .filter(consent::Column::Purpose.eq(purpose))
        .filter(consent::Column::WithdrawnAt.is_null())
        .exec(&txn)
        .await?;
    if done.rows_affected > 0 {
        events::record(
            &txn,
            st,
            ctx,
            DomainEvent::ConsentWithdrawn {
                id: me,
                purpose,
                consents: done.rows_affected,
            },
        )
        .await?;
    }
    let out = summary(&txn, st, me).await?;
    txn.commit().await?;
    Ok(out)
}
