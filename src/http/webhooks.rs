//! `POST /webhooks/payments/{provider}`: verify the raw bytes, de-duplicate the event, then apply
//! it through the payments service in one transaction (so a failed apply is retried, not lost).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sea_orm::EntityTrait;
use serde_json::json;

use super::App;
use crate::actor::RequestCtx;
use crate::entities::payment;
use crate::entities::payment::Provider;
use crate::error::AppError;
use crate::services::payments::{mp, test_provider, Applied};
use crate::services::platform::events::{self, DomainEvent};

pub async fn handle(
    State(app): State<App>,
    Path(provider): Path<String>,
    Extension(ctx): Extension<RequestCtx>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let st = &app.state;
    let known = Provider::parse(&provider);
    let allowed = known
        .and_then(|p| st.config.payments.webhook_allowed_ips.get(&p))
        .is_none_or(|nets| nets.iter().any(|n| n.contains(&ctx.client_ip)));
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let refused = known.and_then(|_| text_refused(query.as_deref(), &body));
    let result = match (known.filter(|p| p.enabled(st)), refused) {
        _ if !allowed => Err(AppError::forbidden(
            "Notifications for this provider are not accepted from this address",
        )),
        (Some(_), Some(refused)) => Err(refused),
        (Some(Provider::Mp), None) => mp::notification(
            st,
            &ctx,
            query.as_deref(),
            header("x-signature"),
            header("x-request-id"),
            &body,
        )
        .await
        .map(str::to_string),
        (Some(Provider::Test), None) => {
            test_provider::notification(st, &ctx, header("x-test-signature"), &body)
                .await
                .map(str::to_string)
        }
        (Some(Provider::Flow), None) => flow_confirmation(&app, &ctx, &body).await,
        // Webpay has no notification: the browser's return (`webpay_return`) carries its token.
        (Some(Provider::Webpay), None) | (None, _) => Err(AppError::not_found("Payment provider")),
    };
    let label = match &result {
        Ok(outcome) => outcome.clone(),
        Err(e) => match e.code {
            crate::error::ErrorCode::Unauthorized => "rejected_signature".to_string(),
            crate::error::ErrorCode::Forbidden => "rejected_origin".to_string(),
            crate::error::ErrorCode::NotFound => "unknown".to_string(),
            _ => "rejected".to_string(),
        },
    };
    if provider.len() <= 16 && provider.bytes().all(|b| b.is_ascii_lowercase()) {
        record_delivery(st, &ctx, &provider, &label).await;
    }
    match result {
        Ok(outcome) => Json(json!({ "received": true, "outcome": outcome })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET`/`POST /webhooks/payments/webpay`: the browser's return from Webpay (providers.md §1).
/// The four cases: `token_ws` alone (commit), `TBK_ID_SESION` + `TBK_ORDEN_COMPRA` (timeout),
/// those plus `TBK_TOKEN` (aborted), all four (error page). Nothing here is trusted by itself:
/// only the server-to-server commit can pay. Answers `303` to the frontend's result page.
pub async fn webpay_return(
    State(app): State<App>,
    Extension(ctx): Extension<RequestCtx>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: Bytes,
) -> Response {
    use crate::services::payments::webpay;
    let st = &app.state;
    if let Err(e) = browser_return_admitted(st, webpay::PROVIDER, query.as_deref(), &body) {
        return e.into_response();
    }
    let mut params: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .chain(form_urlencoded::parse(&body))
    {
        params
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let raw = json!({"source": "return", "params": {
        "token_ws": get("token_ws").is_some(),
        "TBK_TOKEN": get("TBK_TOKEN").is_some(),
        "TBK_ID_SESION": get("TBK_ID_SESION"),
        "TBK_ORDEN_COMPRA": get("TBK_ORDEN_COMPRA"),
    }});
    let result: Result<(Option<crate::entities::payment::Model>, String), AppError> = async {
        let (found, reason) = match (get("token_ws"), get("TBK_TOKEN"), get("TBK_ORDEN_COMPRA")) {
            (Some(token), None, _) => {
                // The normal return: only the server-to-server commit can pay.
                return Ok(
                    match crate::services::payments::by_txn(st, webpay::PROVIDER, token).await? {
                        Some(p) => {
                            let applied = webpay::commit_once(st, &ctx, &p, "return").await?;
                            (Some(p), applied.as_str().to_string())
                        }
                        None => (None, "unknown".into()),
                    },
                );
            }
            (Some(token), Some(_), _) => (
                crate::services::payments::by_txn(st, webpay::PROVIDER, token).await?,
                "webpay_error_page",
            ),
            (None, Some(token), _) => (
                crate::services::payments::by_txn(st, webpay::PROVIDER, token).await?,
                "webpay_aborted",
            ),
            (None, None, Some(buy_order)) => {
                (webpay::by_buy_order(st, buy_order).await?, "webpay_timeout")
            }
            (None, None, None) => {
                return Err(AppError::invalid(
                    "token_ws",
                    "required",
                    "A Webpay return carries token_ws, TBK_TOKEN or TBK_ORDEN_COMPRA",
                ))
            }
        };
        // A return that fails a payment must carry the (unguessable) session we gave Webpay:
        // a buy order alone is guessable, and a forged timeout must not fail someone's payment.
        Ok(match found {
            Some(p) if webpay::session_matches(st, &p, get("TBK_ID_SESION")).await? => {
                let a = webpay::fail(st, &ctx, &p, reason, raw.clone()).await?;
                (Some(p), a.as_str().to_string())
            }
            Some(_) => (None, "rejected_session".into()),
            None => (None, "unknown".into()),
        })
    }
    .await;
    let label = match &result {
        Ok((_, outcome)) => outcome.clone(),
        Err(_) => "rejected".into(),
    };
    record_delivery(st, &ctx, webpay::PROVIDER.as_str(), &label).await;
    let (payment, _) = match result {
        Ok(r) => r,
        Err(e) if e.code == crate::error::ErrorCode::Validation => return e.into_response(),
        // A provider failure still sends the buyer somewhere useful; the payment stays open
        // for reconciliation.
        Err(_) => (None, "error".into()),
    };
    to_result_page(&app.state, payment).await
}

/// A browser's return from `provider`: 404 when it is not configured here, 400 for control
/// characters.
fn browser_return_admitted(
    st: &crate::state::AppState,
    provider: crate::entities::payment::Provider,
    query: Option<&str>,
    body: &[u8],
) -> Result<(), AppError> {
    if !provider.enabled(st) {
        return Err(AppError::not_found("Payment provider"));
    }
    text_refused(query, body).map_or(Ok(()), Err)
}

/// What a provider's request says — its query string, its body as JSON or as a form — may hold no
/// control character but tab and line breaks (`domain::check_text`), as every other input.
fn text_refused(query: Option<&str>, body: &[u8]) -> Option<AppError> {
    use crate::domain::{check_text, check_tree};
    let form = |raw: &[u8]| {
        form_urlencoded::parse(raw).try_for_each(|(k, v)| {
            check_text(&k, &k)?;
            check_text(&k, &v)
        })
    };
    let checked = form(query.unwrap_or_default().as_bytes()).and_then(|()| {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(json) => check_tree("body", &json, true),
            Err(_) => form(body),
        }
    });
    checked.err().map(AppError::from)
}

/// The `token` of a Flow callback (form body or query).
fn flow_token(query: Option<&str>, body: &[u8]) -> Result<String, AppError> {
    form_urlencoded::parse(body)
        .chain(form_urlencoded::parse(query.unwrap_or_default().as_bytes()))
        .find(|(k, v)| k == "token" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| AppError::invalid("token", "required", "Flow sends the payment token"))
}

/// `POST /webhooks/payments/flow`: Flow's unsigned confirmation. It only names a token; the
/// outcome comes from the signed `payment/getStatus`.
async fn flow_confirmation(app: &App, ctx: &RequestCtx, body: &[u8]) -> Result<String, AppError> {
    use crate::services::payments::flow;
    let token = flow_token(None, body)?;
    match flow::settle(&app.state, ctx, &token, "confirmation").await? {
        (None, _) => Err(AppError::not_found("Payment")),
        (Some(_), Applied::Duplicate) => Ok("duplicate".into()),
        (Some(_), applied) => Ok(applied.as_str().into()),
    }
}

/// `GET`/`POST /webhooks/payments/flow/return`: the browser back from Flow; settles like the
/// confirmation, then `303` to the frontend's result page.
pub async fn flow_return(
    State(app): State<App>,
    Extension(ctx): Extension<RequestCtx>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: Bytes,
) -> Response {
    use crate::services::payments::flow;
    let st = &app.state;
    if let Err(e) = browser_return_admitted(st, flow::PROVIDER, query.as_deref(), &body) {
        return e.into_response();
    }
    let token = match flow_token(query.as_deref(), &body) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let settled = flow::settle(st, &ctx, &token, "return").await;
    let payment = match settled {
        Ok((found, _)) => found,
        Err(_) => None,
    };
    to_result_page(st, payment).await
}

/// `303` to the frontend's result page with the payment's current status (or `unknown`).
async fn to_result_page(
    st: &crate::state::AppState,
    payment: Option<crate::entities::payment::Model>,
) -> Response {
    let location = match payment {
        Some(p) => {
            let status = payment::Entity::find_by_id(p.id)
                .one(&st.db)
                .await
                .ok()
                .flatten()
                .map_or(p.status, |p| p.status);
            format!(
                "{}/checkout/result?orderId={}&status={}",
                st.config.http.frontend_base_url,
                p.order_id,
                status.as_str()
            )
        }
        None => format!(
            "{}/checkout/result?status=unknown",
            st.config.http.frontend_base_url
        ),
    };
    (
        axum::http::StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, location)],
    )
        .into_response()
}

/// Every delivery leaves a trace, forged ones included: the metric, and an audit row with the
/// provider and outcome only (never the payload or its signature).
async fn record_delivery(
    st: &crate::state::AppState,
    ctx: &RequestCtx,
    provider: &str,
    outcome: &str,
) {
    st.metrics
        .webhooks
        .with_label_values(&[provider, outcome])
        .inc();
    let event = DomainEvent::WebhookReceived {
        provider: provider.to_string(),
        outcome: outcome.to_string(),
    };
    let recorded = async {
        let txn = crate::db::begin_write(&st.db).await?;
        events::record(&txn, st, ctx, event).await?;
        txn.commit().await?;
        Ok::<_, crate::error::AppError>(())
    };
    if let Err(e) = recorded.await {
        tracing::error!(error = %e.message, "could not audit a webhook delivery");
    }
}
