//! Catalogue: categories, products, variants, and stored files (images, later documents).

use crate::util::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("categories"))
                    .col(id_pk())
                    .col(col("slug").string_len(80).not_null().unique_key())
                    .col(col("name").string_len(120).not_null())
                    .col(col("description").text().not_null())
                    .col(col("is_medicinal").boolean().not_null())
                    .col(col("is_active").boolean().not_null())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("products"))
                    .col(id_pk())
                    .col(col("category_id").big_integer().not_null())
                    .col(col("slug").string_len(120).not_null().unique_key())
                    .col(col("name").string_len(200).not_null())
                    .col(col("description").text().not_null())
                    .col(col("image_url").string_len(500).null())
                    .col(col("is_active").boolean().not_null())
                    // Lower-cased, accent-folded name + description: portable case-insensitive search.
                    .col(col("search_text").text().not_null())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut fk_restrict("products", "category_id", "categories"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("products", &["category_id"]))
            .await?;
        manager
            .create_index(index("products", &["is_active", "created_at"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("product_variants"))
                    .col(id_pk())
                    .col(col("product_id").big_integer().not_null())
                    .col(col("sku").string_len(64).not_null().unique_key())
                    .col(col("option_label").string_len(40).not_null())
                    .col(col("price_cents").big_integer().not_null())
                    .col(col("stock").integer().not_null())
                    .col(col("weight_grams").integer().not_null())
                    .col(col("is_active").boolean().not_null())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .check(Expr::col(Alias::new("price_cents")).gte(0))
                    .check(Expr::col(Alias::new("stock")).gte(0))
                    .check(Expr::col(Alias::new("weight_grams")).gte(0))
                    .foreign_key(&mut fk_restrict(
                        "product_variants",
                        "product_id",
                        "products",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("product_variants", &["product_id"]))
            .await?;
        manager
            .create_index(index("product_variants", &["price_cents"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("files"))
                    .col(id_pk())
                    .col(col("owner_id").big_integer().not_null())
                    .col(col("purpose").string_len(32).not_null())
                    .col(col("storage_key").string_len(80).not_null().unique_key())
                    .col(col("content_type").string_len(64).not_null())
                    .col(col("size_bytes").big_integer().not_null())
                    .col(col("sha256").string_len(64).not_null())
                    .col(col("is_public").boolean().not_null())
                    .col(timestamp("created_at"))
                    .check(one_of("purpose", &["product_image", "medicinal_doc"]))
                    .check(Expr::col(Alias::new("size_bytes")).gte(0))
                    .foreign_key(&mut fk_restrict("files", "owner_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("files", &["owner_id"])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["files", "product_variants", "products", "categories"] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}
