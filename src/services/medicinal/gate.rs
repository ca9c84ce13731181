//! The medicinal gate (spec §4), in one place: who may see and buy medicinal products, and how
//! catalogue queries and purchases apply it.

use sea_orm::sea_query::SimpleExpr;
use sea_orm::ColumnTrait;

use crate::actor::RequestCtx;
use crate::entities::category;
use crate::entities::user::Role;
use crate::error::{AppError, AppResult, FieldIssue};
use crate::state::AppState;

pub use crate::config::CatalogMode;

/// Whether the viewer may access medicinal products: admins always (and API keys holding
/// `products:read`, which see the catalogue as admins do); customers when validated
/// (`validated_medicinal`) or holding an approved document that has not expired, unless they
/// withdrew the health-data consent (Ley 21.719) and have not given it again. Computed once
/// per request, on `conn` (pass the open transaction when there is one: a second pooled
/// connection per request could starve the pool under load).
pub async fn has_access<C: sea_orm::ConnectionTrait>(
    st: &AppState,
    conn: &C,
    ctx: &RequestCtx,
) -> AppResult<bool> {
    ctx.medicinal_access
        .get_or_try_init(|| async {
            if ctx.api_key().is_some() {
                return Ok(ctx.sees_whole_catalogue());
            }
            Ok(match ctx.user() {
                Some(u) if u.role == Role::Admin => true,
                Some(u) if u.health_data_withdrawn => false,
                Some(u) if u.validated_medicinal => true,
                Some(u) => {
                    crate::services::medicinal::documents::has_valid_document(
                        conn,
                        u.id,
                        st.clock.now(),
                    )
                    .await?
                }
                None => false,
            })
        })
        .await
        .copied()
}

/// The filter that removes medicinal products from a catalogue query (joined with `categories`),
/// or `None` when the viewer may see them (access, or teaser mode).
pub fn visibility_filter(access: bool, mode: CatalogMode) -> Option<SimpleExpr> {
    (!access && mode == CatalogMode::Hidden).then(|| category::Column::IsMedicinal.eq(false))
}

/// Refuses a purchase (cart, preview, confirm) of a medicinal product without access.
pub fn ensure_purchasable(access: bool, is_medicinal: bool, field: &str) -> AppResult<()> {
    if is_medicinal && !access {
        return Err(AppError::forbidden(
            "This product requires an approved medicinal prescription",
        )
        .with_details(vec![FieldIssue::new(
            field,
            "medicinal_validation_required",
        )]));
    }
    Ok(())
}
