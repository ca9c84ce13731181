//! Commerce: addresses, carts, coupons, orders with their items, stock reservations, idempotency keys.

use crate::util::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn gte0(c: &str) -> SimpleExpr {
    Expr::col(Alias::new(c)).gte(0)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("addresses"))
                    .col(id_pk())
                    .col(col("user_id").big_integer().not_null())
                    .col(col("name").string_len(80).not_null())
                    .col(col("address_line").string_len(255).not_null())
                    .col(col("comuna").string_len(80).not_null())
                    .col(col("region").string_len(80).not_null())
                    .col(col("notes").string_len(500).null())
                    .col(col("is_default").boolean().not_null())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut fk_restrict("addresses", "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("addresses", &["user_id"]))
            .await?;
        // At most one default address per user (partial unique index, same syntax on both databases).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_addresses_one_default ON addresses (user_id) WHERE is_default = TRUE",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("carts"))
                    .col(id_pk())
                    .col(col("user_id").big_integer().not_null().unique_key())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut fk_restrict("carts", "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("cart_items"))
                    .col(id_pk())
                    .col(col("cart_id").big_integer().not_null())
                    .col(col("variant_id").big_integer().not_null())
                    .col(col("quantity").integer().not_null())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .check(Expr::col(Alias::new("quantity")).gt(0))
                    .foreign_key(
                        &mut fk_restrict("cart_items", "cart_id", "carts")
                            .on_delete(ForeignKeyAction::Cascade)
                            .to_owned(),
                    )
                    .foreign_key(&mut fk_restrict(
                        "cart_items",
                        "variant_id",
                        "product_variants",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("cart_items", &["cart_id", "variant_id"])
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("coupons"))
                    .col(id_pk())
                    .col(col("code").string_len(40).not_null().unique_key())
                    .col(col("type").string_len(16).not_null())
                    .col(col("value").big_integer().not_null())
                    .col(col("min_order_cents").big_integer().not_null())
                    .col(timestamp_null("starts_at"))
                    .col(timestamp_null("ends_at"))
                    .col(col("usage_limit").integer().null())
                    .col(col("per_user_limit").integer().null())
                    .col(col("used_count").integer().not_null())
                    .col(col("is_active").boolean().not_null())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .check(one_of("type", &["percent", "fixed"]))
                    .check(Expr::col(Alias::new("value")).gt(0))
                    .check(
                        Expr::col(Alias::new("type"))
                            .ne("percent")
                            .or(Expr::col(Alias::new("value")).lte(100)),
                    )
                    .check(gte0("min_order_cents"))
                    .check(gte0("used_count"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("orders"))
                    .col(id_pk())
                    .col(col("user_id").big_integer().not_null())
                    .col(col("status").string_len(16).not_null())
                    .col(col("subtotal_cents").big_integer().not_null())
                    .col(col("discount_cents").big_integer().not_null())
                    .col(col("shipping_price_cents").big_integer().not_null())
                    .col(col("total_cents").big_integer().not_null())
                    .col(col("coupon_id").big_integer().null())
                    .col(col("payment_provider").string_len(16).null())
                    .col(col("payment_ref").string_len(40).null())
                    .col(col("shipping_method").string_len(32).not_null())
                    .col(col("shipping_address").json_binary().null())
                    .col(col("shipping_address_id").big_integer().null())
                    .col(col("courier").string_len(80).null())
                    .col(col("tracking_number").string_len(120).null())
                    .col(timestamp_null("estimated_delivery_at"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .check(one_of(
                        "status",
                        &[
                            "pending",
                            "paid",
                            "shipped",
                            "delivered",
                            "cancelled",
                            "failed",
                        ],
                    ))
                    .check(one_of(
                        "shipping_method",
                        &["retiro_tienda", "chilexpress", "starken", "manual"],
                    ))
                    .check(
                        Expr::col(Alias::new("payment_provider"))
                            .is_null()
                            .or(Expr::col(Alias::new("payment_provider"))
                                .is_in(["webpay", "flow", "mp", "test"])),
                    )
                    .check(gte0("subtotal_cents"))
                    .check(gte0("discount_cents"))
                    .check(gte0("shipping_price_cents"))
                    .check(
                        Expr::col(Alias::new("total_cents")).eq(Expr::col(Alias::new(
                            "subtotal_cents",
                        ))
                        .sub(Expr::col(Alias::new("discount_cents")))
                        .add(Expr::col(Alias::new("shipping_price_cents")))),
                    )
                    .foreign_key(&mut fk_restrict("orders", "user_id", "users"))
                    .foreign_key(&mut fk_restrict("orders", "coupon_id", "coupons"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("orders", &["user_id", "status", "created_at"]))
            .await?;
        manager
            .create_index(index("orders", &["status", "created_at"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("order_items"))
                    .col(id_pk())
                    .col(col("order_id").big_integer().not_null())
                    .col(col("product_id").big_integer().not_null())
                    .col(col("variant_id").big_integer().not_null())
                    .col(col("product_name").string_len(200).not_null())
                    .col(col("option_label").string_len(40).not_null())
                    .col(col("quantity").integer().not_null())
                    .col(col("unit_price_cents").big_integer().not_null())
                    .col(col("line_total_cents").big_integer().not_null())
                    .col(timestamp("created_at"))
                    .check(Expr::col(Alias::new("quantity")).gt(0))
                    .check(gte0("unit_price_cents"))
                    .check(
                        Expr::col(Alias::new("line_total_cents"))
                            .eq(Expr::col(Alias::new("quantity"))
                                .mul(Expr::col(Alias::new("unit_price_cents")))),
                    )
                    .foreign_key(
                        &mut fk_restrict("order_items", "order_id", "orders")
                            .on_delete(ForeignKeyAction::Cascade)
                            .to_owned(),
                    )
                    .foreign_key(&mut fk_restrict("order_items", "product_id", "products"))
                    .foreign_key(&mut fk_restrict(
                        "order_items",
                        "variant_id",
                        "product_variants",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("order_items", &["order_id"]))
            .await?;
        manager
            .create_index(index("order_items", &["product_id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("stock_reservations"))
                    .col(id_pk())
                    .col(col("order_id").big_integer().not_null())
                    .col(col("variant_id").big_integer().not_null())
                    .col(col("quantity").integer().not_null())
                    .col(timestamp("expires_at"))
                    .col(col("state").string_len(16).not_null())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .check(Expr::col(Alias::new("quantity")).gt(0))
                    .check(one_of("state", &["active", "consumed", "released"]))
                    .foreign_key(
                        &mut fk_restrict("stock_reservations", "order_id", "orders")
                            .on_delete(ForeignKeyAction::Cascade)
                            .to_owned(),
                    )
                    .foreign_key(&mut fk_restrict(
                        "stock_reservations",
                        "variant_id",
                        "product_variants",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "stock_reservations",
                &["variant_id", "state", "expires_at"],
            ))
            .await?;
        manager
            .create_index(index("stock_reservations", &["order_id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("idempotency_keys"))
                    .col(id_pk())
                    .col(col("user_id").big_integer().not_null())
                    .col(col("key").string_len(255).not_null())
                    .col(col("scope").string_len(64).not_null())
                    .col(col("request_hash").string_len(64).not_null())
                    .col(col("response_status").integer().null())
                    .col(col("response_body").text().null())
                    .col(timestamp("expires_at"))
                    .col(timestamp("created_at"))
                    .foreign_key(&mut fk_restrict("idempotency_keys", "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("idempotency_keys", &["user_id", "key"])
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("idempotency_keys", &["expires_at"]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "idempotency_keys",
            "stock_reservations",
            "order_items",
            "orders",
            "coupons",
            "cart_items",
            "carts",
            "addresses",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}
