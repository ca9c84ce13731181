//! The REST route table (spec §5): every module's rows. Adding a route = adding a row (and its
//! operation document under `operations/`).

use std::sync::LazyLock;

use super::RestRoute;

static ROUTES: LazyLock<Vec<RestRoute>> = LazyLock::new(|| {
    let mut all = super::identity_routes::routes();
    all.extend(super::catalog_routes::routes());
    all.extend(super::commerce_routes::routes());
    all.extend(super::medicinal_routes::routes());
    all.extend(super::review_routes::routes());
    all.extend(super::admin_routes::routes());
    all
});

pub fn routes() -> &'static [RestRoute] {
    &ROUTES
}
