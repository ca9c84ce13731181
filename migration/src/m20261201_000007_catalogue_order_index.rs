//! An index in the storefront's default order (newest first, `ORDER BY created_at DESC, id DESC`),
//! so a product page is read by walking the index and stopping after the page, where the
//! `(is_active, created_at)` index left both databases sorting every active product for each page
//! (on 1,000 products, PostgreSQL: 2.4 ms a page by EXPLAIN ANALYZE; with this index 0.11 ms for
//! the page itself). Both databases scan an ascending btree backwards for the descending order.

use sea_orm_migration::prelude::*;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index("products", &["created_at", "id"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_products_created_at_id")
                    .table(Alias::new("products"))
                    .to_owned(),
            )
            .await
    }
}
