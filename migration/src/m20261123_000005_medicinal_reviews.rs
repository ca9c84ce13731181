//! Medicinal documents (prescriptions and certificates under admin review) and product reviews.

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
                    .table(Alias::new("medicinal_documents"))
                    .col(id_pk())
                    .col(col("user_id").big_integer().not_null())
                    .col(col("doc_type").string_len(16).not_null())
                    .col(col("status").string_len(16).not_null())
                    .col(col("file_id").big_integer().not_null())
                    .col(col("notes").string_len(1000).null())
                    .col(col("reviewed_by").big_integer().null())
                    .col(timestamp_null("reviewed_at"))
                    .col(timestamp_null("expires_at"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .check(one_of("doc_type", &["receta", "certificado"]))
                    .check(one_of("status", &["pending", "approved", "rejected"]))
                    .foreign_key(&mut fk_restrict("medicinal_documents", "user_id", "users"))
                    .foreign_key(&mut fk_restrict("medicinal_documents", "file_id", "files"))
                    .foreign_key(&mut fk_restrict(
                        "medicinal_documents",
                        "reviewed_by",
                        "users",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "medicinal_documents",
                &["user_id", "status", "created_at"],
            ))
            .await?;
        manager
            .create_index(index("medicinal_documents", &["status", "created_at"]))
            .await?;
        // One document per stored file.
        manager
            .create_index(
                index("medicinal_documents", &["file_id"])
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("product_reviews"))
                    .col(id_pk())
                    .col(col("product_id").big_integer().not_null())
                    .col(col("user_id").big_integer().not_null())
                    .col(col("rating").small_integer().not_null())
                    .col(col("title").string_len(120).null())
                    .col(col("body").string_len(2000).not_null())
                    .col(col("is_visible").boolean().not_null())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .check(
                        Expr::col(Alias::new("rating"))
                            .gte(1)
                            .and(Expr::col(Alias::new("rating")).lte(5)),
                    )
                    .foreign_key(&mut fk_restrict(
                        "product_reviews",
                        "product_id",
                        "products",
                    ))
                    .foreign_key(&mut fk_restrict("product_reviews", "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("product_reviews", &["product_id", "user_id"])
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "product_reviews",
                &["product_id", "is_visible", "created_at"],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["product_reviews", "medicinal_documents"] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}
