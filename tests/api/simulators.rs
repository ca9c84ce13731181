//! The simulators themselves refuse what the real providers refuse (a simulator that accepts
//! anything would prove nothing): wrong keys, bad signatures, malformed amounts, a second commit.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::sim_flow::{self, FlowSim};
use crate::sim_mp::{self, MpSim};
use crate::sim_webpay::{self, WebpaySim};

fn webpay(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    secret: &str,
) -> reqwest::RequestBuilder {
    client
        .request(method, url)
        .header("Tbk-Api-Key-Id", sim_webpay::CODE)
        .header("Tbk-Api-Key-Secret", secret)
        .header("Content-Type", "application/json")
}

#[tokio::test]
async fn webpay_simulator_refuses_keys_amounts_and_a_second_commit() {
    let sim = WebpaySim::start().await;
    let client = reqwest::Client::new();
    let url = format!("{}{}/transactions", sim.base_url, sim_webpay::PREFIX);
    let body = |amount: Value| json!({"buy_order": "ORD-1", "session_id": "S1", "amount": amount, "return_url": "https://x/y"});
    let r = webpay(&client, reqwest::Method::POST, url.clone(), "wrong")
        .json(&body(json!(1000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.json::<Value>().await.unwrap()["error_message"].is_string());
    for bad in [json!("12x"), json!(-5), json!(null), json!(10.5)] {
        let r = webpay(
            &client,
            reqwest::Method::POST,
            url.clone(),
            sim_webpay::SECRET,
        )
        .json(&body(bad.clone()))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let long = json!({"buy_order": "X".repeat(27), "session_id": "S1", "amount": 1000, "return_url": "https://x/y"});
    let r = webpay(
        &client,
        reqwest::Method::POST,
        url.clone(),
        sim_webpay::SECRET,
    )
    .json(&long)
    .send()
    .await
    .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "buy_order over 26 characters"
    );
    // A numeric string is accepted, as Transbank does.
    let r = webpay(
        &client,
        reqwest::Method::POST,
        url.clone(),
        sim_webpay::SECRET,
    )
    .json(&body(json!("5000")))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 64);
    let commit = format!("{url}/{token}");
    let r = webpay(
        &client,
        reqwest::Method::PUT,
        commit.clone(),
        sim_webpay::SECRET,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "not paid yet");
    sim.pay(&token, true);
    let r = webpay(
        &client,
        reqwest::Method::PUT,
        commit.clone(),
        sim_webpay::SECRET,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(
        (t["status"].as_str(), t["response_code"].as_i64()),
        (Some("AUTHORIZED"), Some(0))
    );
    let r = webpay(&client, reqwest::Method::PUT, commit, sim_webpay::SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a second commit"
    );
}

#[tokio::test]
async fn flow_simulator_refuses_bad_signatures_and_amounts() {
    let sim = FlowSim::start().await;
    let client = reqwest::Client::new();
    let params = |amount: &str, secret: &str| {
        let mut p = BTreeMap::from([
            ("apiKey".to_string(), sim_flow::API_KEY.to_string()),
            ("commerceOrder".to_string(), "ORD-1".to_string()),
            ("subject".to_string(), "Pedido".to_string()),
            ("amount".to_string(), amount.to_string()),
            ("email".to_string(), "a@b.cl".to_string()),
            ("urlConfirmation".to_string(), "https://x/c".to_string()),
            ("urlReturn".to_string(), "https://x/r".to_string()),
        ]);
        let s = dispensary::services::payments::flow::sign(secret, &p);
        p.insert("s".into(), s);
        p
    };
    let create = format!("{}/payment/create", sim.base_url);
    let r = client
        .post(&create)
        .form(&params("5000", "wrong-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 108);
    let mut tampered = params("5000", sim_flow::SECRET);
    tampered.insert("amount".into(), "1".into());
    assert_eq!(
        client
            .post(&create)
            .form(&tampered)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        client
            .post(&create)
            .form(&params("abc", sim_flow::SECRET))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        client
            .post(&create)
            .form(&params("5000", sim_flow::SECRET))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn mercado_pago_simulator_refuses_tokens_and_bad_preferences() {
    let sim = MpSim::start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/checkout/preferences", sim.base_url);
    let pref = |price: Value| {
        json!({"items": [{"title": "x", "quantity": 1, "unit_price": price, "currency_id": "CLP"}],
        "external_reference": "ORD-1", "notification_url": "https://x/webhooks/payments/mp"})
    };
    let r = client
        .post(&url)
        .bearer_auth("wrong")
        .header("X-Idempotency-Key", "k1")
        .json(&pref(json!(1000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client
        .post(&url)
        .bearer_auth(sim_mp::ACCESS_TOKEN)
        .json(&pref(json!(1000)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "X-Idempotency-Key is required"
    );
    for bad in [json!(0), json!("mil"), json!(-1)] {
        let r = client
            .post(&url)
            .bearer_auth(sim_mp::ACCESS_TOKEN)
            .header("X-Idempotency-Key", format!("k-{bad}"))
            .json(&pref(bad.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let first: Value = client
        .post(&url)
        .bearer_auth(sim_mp::ACCESS_TOKEN)
        .header("X-Idempotency-Key", "same")
        .json(&pref(json!(1000)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again: Value = client
        .post(&url)
        .bearer_auth(sim_mp::ACCESS_TOKEN)
        .header("X-Idempotency-Key", "same")
        .json(&pref(json!(1000)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        first["id"], again["id"],
        "the same key replays the same preference"
    );
}
