//! REST rows for medicinal documents and document uploads.

use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::catalog_routes::PageParams;
use super::{json_body, query, Access, RestRoute, UploadSpec};
use crate::entities::medicinal_document::DocStatus;
use crate::graphql::medicinal::{MedicinalDocument, MedicinalDocumentPage, UploadedDocument};
use crate::services::medicinal::documents::{ReviewInput, SubmitDocumentInput};

#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AdminDocsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    /// pending, approved or rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DocStatus>,
    /// Part of the owner's email or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

#[rustfmt::skip]
pub fn routes() -> Vec<RestRoute> {
    use Method as M;
    vec![
        RestRoute::new(M::POST, "/api/uploads/doc", "UploadDocument", doc!("files/upload_document.graphql"), "uploadDocument")
            .status(StatusCode::CREATED)
            .access(Access::Customer)
            .doc("uploads", "Upload a private document (multipart `file`: PDF/JPEG/PNG by content, ≤ 10 MB) → {fileId}")
            .upload(UploadSpec { file_field: "file", var: "file", json_field: None, multipart_only: true })
            .returns::<UploadedDocument>(),
        RestRoute::new(M::GET, "/api/medicinal/me/docs", "MyMedicinalDocuments", doc!("medicinal/my_documents.graphql", "medicinal_document_fields.graphql"), "myMedicinalDocuments")
            .access(Access::Customer)
            .doc("medicinal", "Your medicinal documents, newest first")
            .query(query::<PageParams>())
            .returns::<MedicinalDocumentPage>(),
        RestRoute::new(M::POST, "/api/medicinal/me/docs", "SubmitMedicinalDocument", doc!("medicinal/submit_document.graphql", "medicinal_document_fields.graphql"), "submitMedicinalDocument")
            .needs_consent()
            .status(StatusCode::CREATED)
            .access(Access::Customer)
            .doc("medicinal", "Submit a prescription or certificate for review: multipart `file` + `docType`, or JSON {docType, fileId}")
            .body(json_body::<SubmitDocumentInput>("input"))
            .upload(UploadSpec { file_field: "file", var: "file", json_field: None, multipart_only: false })
            .returns::<MedicinalDocument>(),
        RestRoute::new(M::DELETE, "/api/medicinal/me/docs/{id}", "DeleteMedicinalDocument", doc!("medicinal/delete_document.graphql"), "deleteMedicinalDocument")
            .status(StatusCode::NO_CONTENT)
            .access(Access::Customer)
            .doc("medicinal", "Delete one of your documents and its file; an approved one is 409"),
        RestRoute::new(M::GET, "/api/admin/medicinal/docs", "AdminMedicinalDocuments", doc!("medicinal/admin_documents.graphql", "medicinal_document_fields.graphql"), "adminMedicinalDocuments")
            .access(Access::Admin)
            .doc("medicinal", "Medicinal documents by status and owner (q: email or name), newest first (admin)")
            .query(query::<AdminDocsParams>())
            .returns::<MedicinalDocumentPage>(),
        RestRoute::new(M::PATCH, "/api/admin/medicinal/docs/{id}", "ReviewMedicinalDocument", doc!("medicinal/review_document.graphql", "medicinal_document_fields.graphql"), "reviewMedicinalDocument")
            .access(Access::Admin)
            .doc("medicinal", "Approve or reject a pending document {status, notes?, expiresAt?}; the reviewer is you (admin)")
            .body(json_body::<ReviewInput>("input"))
            .returns::<MedicinalDocument>(),
    ]
}
