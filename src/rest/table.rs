//! The REST route table (spec §5). Adding a route = adding a row (and its operation document).

use std::sync::LazyLock;

use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::{json_body, optional_json_body, query, schema_of, Access, RestRoute};
use crate::entities::user::Role;
use crate::graphql::auth::AuthPayload;
use crate::graphql::users::{User, UserPage};
use crate::services::auth::{LoginInput, LogoutInput, RefreshInput, RegisterInput};
use crate::services::users::{UpdateMeInput, UpdateUserInput};

/// An operation document: one operation file plus the fragment files it uses.
macro_rules! doc {
    ($op:literal $(, $fragment:literal)*) => {
        concat!(include_str!(concat!("operations/", $op)) $(, include_str!(concat!("operations/fragments/", $fragment)))*)
    };
}

/// Query parameters of `GET /api/users`.
#[derive(Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UsersParams {
    /// Page number, from 1 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    /// Items per page, 1–100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    /// Free text matched against name, email and RUT, case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

static ROUTES: LazyLock<Vec<RestRoute>> = LazyLock::new(|| {
    vec![
        RestRoute {
            method: Method::POST,
            path: "/api/auth/register",
            operation: "Register",
            document: doc!("auth/register.graphql", "user_fields.graphql"),
            field: "register",
            success: StatusCode::CREATED,
            access: Access::Public,
            tag: "auth",
            summary: "Register a customer account and sign it in",
            body: json_body::<RegisterInput>("input"),
            query: None,
            response: Some(schema_of::<AuthPayload>()),
        },
        RestRoute {
            method: Method::POST,
            path: "/api/auth/login",
            operation: "Login",
            document: doc!("auth/login.graphql", "user_fields.graphql"),
            field: "login",
            success: StatusCode::OK,
            access: Access::Public,
            tag: "auth",
            summary: "Sign in with email and password",
            body: json_body::<LoginInput>("input"),
            query: None,
            response: Some(schema_of::<AuthPayload>()),
        },
        RestRoute {
            method: Method::POST,
            path: "/api/auth/refresh",
            operation: "RefreshToken",
            document: doc!("auth/refresh_token.graphql", "user_fields.graphql"),
            field: "refreshToken",
            success: StatusCode::OK,
            access: Access::Public,
            tag: "auth",
            summary: "Rotate a refresh token into a new token pair",
            body: json_body::<RefreshInput>("input"),
            query: None,
            response: Some(schema_of::<AuthPayload>()),
        },
        RestRoute {
            method: Method::POST,
            path: "/api/auth/logout",
            operation: "Logout",
            document: doc!("auth/logout.graphql"),
            field: "logout",
            success: StatusCode::NO_CONTENT,
            access: Access::Customer,
            tag: "auth",
            summary: "Revoke the access token and its session's refresh tokens",
            body: optional_json_body::<LogoutInput>("input"),
            query: None,
            response: None,
        },
        RestRoute {
            method: Method::GET,
            path: "/api/me",
            operation: "Me",
            document: doc!("users/me.graphql", "user_fields.graphql"),
            field: "me",
            success: StatusCode::OK,
            access: Access::Customer,
            tag: "users",
            summary: "The signed-in user",
            body: None,
            query: None,
            response: Some(schema_of::<User>()),
        },
        RestRoute {
            method: Method::PATCH,
            path: "/api/me",
            operation: "UpdateMe",
            document: doc!("users/update_me.graphql", "user_fields.graphql"),
            field: "updateMe",
            success: StatusCode::OK,
            access: Access::Customer,
            tag: "users",
            summary: "Update the signed-in user's name, email, RUT or phone",
            body: json_body::<UpdateMeInput>("input"),
            query: None,
            response: Some(schema_of::<User>()),
        },
        RestRoute {
            method: Method::GET,
            path: "/api/users",
            operation: "Users",
            document: doc!("users/users.graphql", "user_fields.graphql"),
            field: "users",
            success: StatusCode::OK,
            access: Access::Admin,
            tag: "users",
            summary: "List users (admin)",
            body: None,
            query: query::<UsersParams>(),
            response: Some(schema_of::<UserPage>()),
        },
        RestRoute {
            method: Method::GET,
            path: "/api/users/{id}",
            operation: "User",
            document: doc!("users/user.graphql", "user_fields.graphql"),
            field: "user",
            success: StatusCode::OK,
            access: Access::Admin,
            tag: "users",
            summary: "Get a user (admin)",
            body: None,
            query: None,
            response: Some(schema_of::<User>()),
        },
        RestRoute {
            method: Method::PATCH,
            path: "/api/users/{id}",
            operation: "UpdateUser",
            document: doc!("users/update_user.graphql", "user_fields.graphql"),
            field: "updateUser",
            success: StatusCode::OK,
            access: Access::Admin,
            tag: "users",
            summary: "Change a user's role, active flag or medicinal validation (admin)",
            body: json_body::<UpdateUserInput>("input"),
            query: None,
            response: Some(schema_of::<User>()),
        },
        RestRoute {
            method: Method::DELETE,
            path: "/api/users/{id}",
            operation: "DeleteUser",
            document: doc!("users/delete_user.graphql"),
            field: "deleteUser",
            success: StatusCode::NO_CONTENT,
            access: Access::Admin,
            tag: "users",
            summary: "Soft-delete a user: deactivate and revoke every session (admin)",
            body: None,
            query: None,
            response: None,
        },
    ]
});

pub fn routes() -> &'static [RestRoute] {
    &ROUTES
}
