//! REST rows for categories, products and variants.

use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::{csv_body, json_body, query, Access, RestRoute, UploadSpec};
use crate::graphql::catalog::{
    Category, CategoryPage, ProductDoc, ProductPageDoc, Variant, VariantPage,
};
use crate::graphql::files::UploadedImage;
use crate::services::catalog::categories::{CreateCategoryInput, UpdateCategoryInput};
use crate::services::catalog::csv_io::ImportReport;
use crate::services::catalog::products::{CreateProductInput, UpdateProductInput};
use crate::services::catalog::variants::{CreateVariantInput, UpdateVariantInput};

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page number, from 1 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    /// Items per page, 1–100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
}

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CategoriesParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_medicinal: Option<bool>,
}

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ProductsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    /// Free text over name and description (case- and accent-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Category slug or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// Products with an active variant priced at least this (CLP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_min: Option<i64>,
    /// Products with an active variant priced at most this (CLP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_max: Option<i64>,
    /// Comma list of price, name, createdAt, updatedAt, id; `-` for descending. Default `-createdAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(example = "price,-createdAt")]
    pub sort: Option<String>,
}

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Report every row's problems and write nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

pub fn routes() -> Vec<RestRoute> {
    [category_and_product_routes(), variant_and_file_routes()]
        .into_iter()
        .flatten()
        .collect()
}

/// Categories and products.
fn category_and_product_routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(
            M::GET,
            "/api/categories",
            "Categories",
            doc!("catalog/categories.graphql", "category_fields.graphql"),
            "categories",
        )
        .doc("catalog", "List categories")
        .query(query::<CategoriesParams>())
        .returns::<CategoryPage>(),
        RestRoute::new(
            M::POST,
            "/api/categories",
            "CreateCategory",
            doc!("catalog/create_category.graphql", "category_fields.graphql"),
            "createCategory",
        )
        .status(StatusCode::CREATED)
        .access(Access::Admin)
        .doc("catalog", "Create a category (admin)")
        .body(json_body::<CreateCategoryInput>("input"))
        .returns::<Category>(),
        RestRoute::new(
            M::PATCH,
            "/api/categories/{id}",
            "UpdateCategory",
            doc!("catalog/update_category.graphql", "category_fields.graphql"),
            "updateCategory",
        )
        .access(Access::Admin)
        .doc("catalog", "Update a category (admin)")
        .body(json_body::<UpdateCategoryInput>("input"))
        .returns::<Category>(),
        RestRoute::new(
            M::DELETE,
            "/api/categories/{id}",
            "DeleteCategory",
            doc!("catalog/delete_category.graphql"),
            "deleteCategory",
        )
        .status(StatusCode::NO_CONTENT)
        .access(Access::Admin)
        .doc(
            "catalog",
            "Delete a category without products (admin; 409 otherwise)",
        ),
        RestRoute::new(
            M::GET,
            "/api/products",
            "Products",
            doc!(
                "catalog/products.graphql",
                "product_fields.graphql",
                "category_fields.graphql",
                "variant_fields.graphql"
            ),
            "products",
        )
        .doc(
            "catalog",
            "List products (medicinal ones only for validated customers and admins)",
        )
        .query(query::<ProductsParams>())
        .returns::<ProductPageDoc>(),
        RestRoute::new(
            M::POST,
            "/api/products",
            "CreateProduct",
            doc!(
                "catalog/create_product.graphql",
                "product_fields.graphql",
                "category_fields.graphql",
                "variant_fields.graphql"
            ),
            "createProduct",
        )
        .status(StatusCode::CREATED)
        .access(Access::Admin)
        .doc(
            "catalog",
            "Create a product, optionally with variants (admin). JSON, or multipart/form-data with the product \
             JSON in a `product` part and the main image in an `image` part",
        )
        .body(json_body::<CreateProductInput>("input"))
        .upload(UploadSpec { file_field: "image", var: "image", json_field: Some("product"), multipart_only: false })
        .returns::<ProductDoc>(),
        RestRoute::new(
            M::GET,
            "/api/products/{id}",
            "Product",
            doc!(
                "catalog/product.graphql",
                "product_fields.graphql",
                "category_fields.graphql",
                "variant_fields.graphql"
            ),
            "product",
        )
        .doc("catalog", "Get a product")
        .returns::<ProductDoc>(),
        RestRoute::new(
            M::PATCH,
            "/api/products/{id}",
            "UpdateProduct",
            doc!(
                "catalog/update_product.graphql",
                "product_fields.graphql",
                "category_fields.graphql",
                "variant_fields.graphql"
            ),
            "updateProduct",
        )
        .access(Access::Admin)
        .doc("catalog", "Update a product (admin)")
        .body(json_body::<UpdateProductInput>("input"))
        .returns::<ProductDoc>(),
        RestRoute::new(
            M::DELETE,
            "/api/products/{id}",
            "DeleteProduct",
            doc!("catalog/delete_product.graphql"),
            "deleteProduct",
        )
        .status(StatusCode::NO_CONTENT)
        .access(Access::Admin)
        .doc("catalog", "Delete a product and its variants (admin)"),
    ]
}

/// Variants, product images and the CSV import and export.
fn variant_and_file_routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(
            M::GET,
            "/api/products/{id}/variants",
            "ProductVariants",
            doc!("catalog/product_variants.graphql", "variant_fields.graphql"),
            "productVariants",
        )
        .doc("catalog", "A product's variants")
        .query(query::<PageParams>())
        .returns::<VariantPage>(),
        RestRoute::new(
            M::POST,
            "/api/products/{id}/variants",
            "CreateVariant",
            doc!("catalog/create_variant.graphql", "variant_fields.graphql"),
            "createVariant",
        )
        .status(StatusCode::CREATED)
        .access(Access::Admin)
        .doc("catalog", "Add a variant to a product (admin)")
        .body(json_body::<CreateVariantInput>("input"))
        .returns::<Variant>(),
        RestRoute::new(
            M::PATCH,
            "/api/variants/{id}",
            "UpdateVariant",
            doc!("catalog/update_variant.graphql", "variant_fields.graphql"),
            "updateVariant",
        )
        .access(Access::Admin)
        .doc(
            "catalog",
            "Update a variant: price, stock, SKU, label, weight, active (admin)",
        )
        .body(json_body::<UpdateVariantInput>("input"))
        .returns::<Variant>(),
        RestRoute::new(
            M::DELETE,
            "/api/variants/{id}",
            "DeleteVariant",
            doc!("catalog/delete_variant.graphql"),
            "deleteVariant",
        )
        .status(StatusCode::NO_CONTENT)
        .access(Access::Admin)
        .doc("catalog", "Delete a variant (admin)"),
        RestRoute::new(M::POST, "/api/uploads/image", "UploadImage", doc!("files/upload_image.graphql"), "uploadImage")
            .status(StatusCode::CREATED)
            .access(Access::Admin)
            .doc("uploads", "Upload a product image (admin): multipart `file`, JPEG/PNG/WebP by content, ≤ 10 MB")
            .upload(UploadSpec { file_field: "file", var: "file", json_field: None, multipart_only: true })
            .returns::<UploadedImage>(),
        RestRoute::new(M::POST, "/api/products/import", "ImportProducts", doc!("catalog/import_products.graphql"), "importProducts")
            .access(Access::Admin)
            .doc(
                "catalog",
                "Import products from CSV (admin). Columns: name,categorySlug,description,imageUrl,isActive,variantSku,\
                 variantLabel,variantPriceCents,variantStock. `dryRun=true` reports per-row errors; a real import is all-or-nothing",
            )
            .body(csv_body("csv"))
            .query(query::<ImportParams>())
            .returns::<ImportReport>(),
        RestRoute::new(M::GET, "/api/products/export", "ExportProducts", doc!("catalog/export_products.graphql"), "exportProducts")
            .access(Access::Admin)
            .doc("catalog", "Export the catalogue as CSV, one row per variant (admin)")
            .raw("text/csv; charset=utf-8", "products.csv"),
    ]
}
