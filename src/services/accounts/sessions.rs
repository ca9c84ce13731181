//! Sessions a user can see and end. A session is one refresh-token family — one login and the
//! refreshes that followed it — and is live while the family has an unrevoked, unexpired refresh
//! token. Ending one revokes its family, and with it, at once, every access token issued to it
//! (bearer authentication checks the family on every request).

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::{auth_token, session, user};
use crate::error::{AppError, AppResult};
use crate::services::platform::events::{self, ChangedBy, DomainEvent};
use crate::state::AppState;

/// The most sessions a listing shows (the most recently used).
pub const LIST_MAX: u64 = 100;

/// A live session, and whether the request's access token belongs to it.
pub struct SessionView {
    pub session: session::Model,
    pub current: bool,
}

/// In the caller's transaction, as a login (`new`) or a refresh issues tokens to `family`: the
/// session begins, or is marked used now from the request's address and user agent.
pub(crate) async fn record_use<C: ConnectionTrait>(
    conn: &C,
    ctx: &RequestCtx,
    user_id: i64,
    family: &str,
    new: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    let ip = ctx.client_ip.to_string();
    if new {
        session::ActiveModel {
            family_id: Set(family.to_string()),
            user_id: Set(user_id),
            ip: Set(Some(ip)),
            user_agent: Set(ctx.user_agent.clone()),
            created_at: Set(now),
            last_used_at: Set(now),
            ..Default::default()
        }
        .insert(conn)
        .await?;
    } else {
        session::Entity::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::value(now))
            .col_expr(session::Column::Ip, Expr::value(ip))
            .col_expr(
                session::Column::UserAgent,
                Expr::value(ctx.user_agent.clone()),
            )
            .filter(session::Column::FamilyId.eq(family))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// `user_id`'s live sessions, most recently used first.
async fn live<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<Vec<session::Model>> {
    let has_live_token = Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(auth_token::Entity)
            .and_where(
                Expr::col((auth_token::Entity, auth_token::Column::FamilyId))
                    .equals((session::Entity, session::Column::FamilyId)),
            )
            .and_where(Expr::col((auth_token::Entity, auth_token::Column::RevokedAt)).is_null())
            .and_where(Expr::col((auth_token::Entity, auth_token::Column::ExpiresAt)).gt(now))
            .to_owned(),
    );
    Ok(session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(has_live_token)
        .order_by_desc(session::Column::LastUsedAt)
        .order_by_desc(session::Column::Id)
        .limit(LIST_MAX)
        .all(conn)
        .await?)
}

fn views(ctx: &RequestCtx, sessions: Vec<session::Model>) -> Vec<SessionView> {
    let current = ctx.user().map(|u| u.session_id.as_str());
    sessions
        .into_iter()
        .map(|s| SessionView {
            current: Some(s.family_id.as_str()) == current,
            session: s,
        })
        .collect()
}

/// `GET /api/me/sessions`: the signed-in user's live sessions, the current one marked.
pub async fn mine(st: &AppState, ctx: &RequestCtx) -> AppResult<Vec<SessionView>> {
    let me = ctx.require_user()?;
    Ok(views(ctx, live(&st.db, me.id, st.clock.now()).await?))
}

/// `GET /api/users/{id}/sessions` (admin).
pub async fn of_user(st: &AppState, ctx: &RequestCtx, user_id: i64) -> AppResult<Vec<SessionView>> {
    ctx.require_admin()?;
    user::Entity::find_by_id(user_id)
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    Ok(views(ctx, live(&st.db, user_id, st.clock.now()).await?))
}

/// `DELETE /api/me/sessions/{id}`: ends one of the signed-in user's live sessions (the current
/// one too: that is signing out). 404 for a session that is not theirs or has ended.
pub async fn revoke(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<()> {
    let me = ctx.require_user()?.clone();
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let target = live(&txn, me.id, now)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| AppError::not_found("Session"))?;
    end(&txn, me.id, Some(&target.family_id), None, now).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::SessionRevoked {
            id: me.id,
            session_id: target.id,
            by: ChangedBy::Owner,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// `POST /api/me/sessions/revoke-others`: ends every other live session of the signed-in user.
/// Answers how many ended.
pub async fn revoke_others(st: &AppState, ctx: &RequestCtx) -> AppResult<u64> {
    let me = ctx.require_user()?.clone();
    let txn = begin_write(&st.db).await?;
    let count = end_counted(&txn, st, me.id, Some(&me.session_id)).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::SessionsRevoked {
            id: me.id,
            count,
            by: ChangedBy::Owner,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(count)
}

/// `POST /api/users/{id}/sessions/revoke` (admin): ends every live session of a user.
pub async fn revoke_all_of_user(st: &AppState, ctx: &RequestCtx, user_id: i64) -> AppResult<u64> {
    ctx.require_admin()?;
    let txn = begin_write(&st.db).await?;
    user::Entity::find_by_id(user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    let count = end_counted(&txn, st, user_id, None).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::SessionsRevoked {
            id: user_id,
            count,
            by: ChangedBy::Admin,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(count)
}

/// In the caller's transaction: ends every live session of `user_id` but `keep`, answering how
/// many there were (the password reset and change use it too).
pub(crate) async fn end_counted<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    user_id: i64,
    keep: Option<&str>,
) -> AppResult<u64> {
    let now = st.clock.now();
    let families: std::collections::BTreeSet<String> = auth_token::Entity::find()
        .select_only()
        .column(auth_token::Column::FamilyId)
        .filter(auth_token::Column::UserId.eq(user_id))
        .filter(auth_token::Column::RevokedAt.is_null())
        .filter(auth_token::Column::ExpiresAt.gt(now))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .filter(|f| Some(f.as_str()) != keep)
        .collect();
    end(conn, user_id, None, keep, now).await?;
    Ok(families.len() as u64)
}

/// The one way sessions end: revokes the unrevoked refresh tokens of `user_id` — of family
/// `only`, of every family but `keep`, or (neither) all of them. Access tokens of those families
/// are refused from the next request on (the bearer check asks for a live family).
pub(crate) async fn end<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    only: Option<&str>,
    keep: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    let mut q = auth_token::Entity::update_many()
        .col_expr(auth_token::Column::RevokedAt, Expr::value(now))
        .filter(auth_token::Column::UserId.eq(user_id))
        .filter(auth_token::Column::RevokedAt.is_null());
    if let Some(f) = only {
        q = q.filter(auth_token::Column::FamilyId.eq(f));
    }
    if let Some(k) = keep {
        q = q.filter(auth_token::Column::FamilyId.ne(k));
    }
    q.exec(conn).await?;
    Ok(())
}
