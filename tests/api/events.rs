//! Domain events: every audited change writes its audit row and its outbox row together, and one
//! action carries the same metadata shape wherever it is written.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// The audit rows of one action, oldest first, as `GET /api/admin/logs` shows them.
async fn logged(app: &TestApp, admin: &str, action: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/admin/logs?action={action}&pageSize=100"),
            Some(admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut items = r.body["items"].as_array().cloned().unwrap_or_default();
    items.reverse();
    items
}

/// The outbox row written with an audit row: (event, payload, trace id).
async fn outbox_for(app: &TestApp, log_id: i64) -> (String, Value, String) {
    let event = app
        .scalar_string(&format!(
            "SELECT event_type FROM outbox_events WHERE audit_log_id = {log_id}"
        ))
        .await
        .expect("an outbox row for every audit row");
    let payload = app
        .scalar_string(&format!(
            "SELECT CAST(payload AS TEXT) FROM outbox_events WHERE audit_log_id = {log_id}"
        ))
        .await
        .expect("payload");
    let trace = app
        .scalar_string(&format!(
            "SELECT trace_id FROM outbox_events WHERE audit_log_id = {log_id}"
        ))
        .await
        .expect("trace id");
    (event, serde_json::from_str(&payload).unwrap(), trace)
}

#[tokio::test]
async fn every_audit_row_has_its_outbox_event_with_the_whole_payload() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/api/coupons",
            Some(&admin),
            json!({"code": "EVENTO", "type": "percent", "value": 10}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_i64().unwrap();
    let path = format!("/api/coupons/{id}");
    let r = app
        .patch(&path, Some(&admin), json!({"value": 15, "usageLimit": 3}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Sending the values it already has changes nothing, so nothing is recorded.
    let r = app.patch(&path, Some(&admin), json!({"value": 15})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.delete(&path, Some(&admin)).await.status,
        StatusCode::NO_CONTENT
    );

    let updates = logged(&app, &admin, "coupon.updated").await;
    assert_eq!(
        updates.len(),
        1,
        "a no-op update records nothing: {updates:?}"
    );
    assert_eq!(
        updates[0]["meta"],
        json!({"code": "EVENTO", "fields": ["value", "usageLimit"],
            "changes": {"value": {"from": 10, "to": 15}, "usageLimit": {"from": null, "to": 3}}})
    );
    assert_eq!(updates[0]["entityId"], id);

    let deleted = logged(&app, &admin, "coupon.deleted").await;
    assert_eq!(
        deleted[0]["meta"],
        json!({"code": "EVENTO", "outcome": "deleted"})
    );

    // The outbox row carries the whole event (its id too) and the request's trace id.
    let (event, payload, trace) = outbox_for(&app, updates[0]["id"].as_i64().unwrap()).await;
    assert_eq!(event, "coupon.updated");
    assert_eq!(payload["event"], "coupon.updated");
    assert_eq!(payload["id"], id);
    assert_eq!(payload["changes"]["value"]["to"], 15);
    assert_eq!(trace, updates[0]["traceId"].as_str().unwrap());
    let created_log = logged(&app, &admin, "coupon.created").await;
    let (event, payload, _) = outbox_for(&app, created_log[0]["id"].as_i64().unwrap()).await;
    assert_eq!(event, "coupon.created");
    assert_eq!(
        payload,
        json!({"event": "coupon.created", "version": 1, "id": id, "code": "EVENTO"})
    );

    // Every audit row (sign-ins included) has exactly one outbox row, none undispatched by
    // anything but the runner.
    let logs = app.scalar_i64("SELECT COUNT(*) FROM system_logs").await;
    assert!(logs >= 4, "{logs}");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM outbox_events").await,
        logs
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM system_logs l WHERE NOT EXISTS \
             (SELECT 1 FROM outbox_events o WHERE o.audit_log_id = l.id)"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn updates_record_changed_fields_and_values_only_where_they_are_not_personal_or_bulky() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let variant = variant_id(&app, "NL-AUTO-1G").await;
    let before: (i64, i64) = (
        app.scalar_i64(&format!(
            "SELECT price_cents FROM product_variants WHERE id = {variant}"
        ))
        .await,
        app.scalar_i64(&format!(
            "SELECT CAST(stock AS BIGINT) FROM product_variants WHERE id = {variant}"
        ))
        .await,
    );
    let r = app
        .patch(
            &format!("/api/variants/{variant}"),
            Some(&admin),
            json!({"priceCents": before.0 + 10, "stock": before.1 + 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = logged(&app, &admin, "variant.updated").await;
    assert_eq!(v.len(), 1);
    let product_id = app
        .scalar_i64(&format!(
            "SELECT product_id FROM product_variants WHERE id = {variant}"
        ))
        .await;
    assert_eq!(
        v[0]["meta"],
        json!({"productId": product_id, "fields": ["priceCents", "stock"], "changes": {
            "priceCents": {"from": before.0, "to": before.0 + 10},
            "stock": {"from": before.1, "to": before.1 + 1}}})
    );

    // A product's description is named, not copied.
    let r = app
        .patch(
            &format!("/api/products/{product_id}"),
            Some(&admin),
            json!({"description": "Una descripción nueva y bastante más larga.", "isActive": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = logged(&app, &admin, "product.updated").await;
    assert_eq!(p.len(), 1, "isActive was already true: {p:?}");
    assert_eq!(p[0]["meta"], json!({"fields": ["description"]}));

    // A customer's own profile change names the fields; their values stay out of the log.
    let (token, user_id, _) = app.register("perfil-evento@example.cl").await;
    let r = app
        .patch(
            "/api/me",
            Some(&token),
            json!({"name": "Nombre Privado", "phone": "+56911112222"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let u = logged(&app, &admin, "user.updated").await;
    let mine: Vec<&Value> = u.iter().filter(|e| e["entityId"] == user_id).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        mine[0]["meta"],
        json!({"by": "self", "fields": ["name", "phone"]})
    );
    assert!(!mine[0]["meta"].to_string().contains("Privado"));
    let (_, payload, _) = outbox_for(&app, mine[0]["id"].as_i64().unwrap()).await;
    assert!(!payload.to_string().contains("Privado"), "{payload}");

    // An admin's change to the same user carries from/to for role and flags.
    let r = app
        .patch(
            &format!("/api/users/{user_id}"),
            Some(&admin),
            json!({"validatedMedicinal": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let u = logged(&app, &admin, "user.updated").await;
    let last = u.last().unwrap();
    assert_eq!(
        last["meta"],
        json!({"by": "admin", "fields": ["validatedMedicinal"],
            "changes": {"validatedMedicinal": {"from": false, "to": true}}})
    );
}

/// The change, its audit row and its outbox row commit together or not at all: a statement
/// failing after `events::record` in the same transaction leaves no trace of any of them.
#[tokio::test]
async fn a_change_that_fails_after_recording_leaves_no_audit_or_outbox_row() {
    use dispensary::entities::category;
    use dispensary::services::platform::events::{self, Changes, DomainEvent};
    use sea_orm::{ActiveModelTrait, EntityTrait, Set, TransactionTrait};

    let app = TestApp::spawn().await;
    let count = |table: &'static str| {
        let app = &app;
        async move {
            app.scalar_i64(&format!("SELECT COUNT(*) FROM {table}"))
                .await
        }
    };
    let (logs, outbox) = (count("system_logs").await, count("outbox_events").await);
    let seeds = category::Entity::find().all(&app.state.db).await.unwrap();
    let (first, second) = (&seeds[0], &seeds[1]);
    let ctx = dispensary::actor::RequestCtx::anonymous(
        "trace-atomic".into(),
        std::net::Ipv4Addr::LOCALHOST.into(),
    );
    let failed: Result<(), sea_orm::DbErr> = async {
        let txn = dispensary::db::begin_write(&app.state.db).await?;
        let mut am: category::ActiveModel = first.clone().into();
        am.name = Set("Renombrada".into());
        am.update(&txn).await?;
        let mut changes = Changes::default();
        changes.change("name", &first.name, "Renombrada");
        events::record(
            &txn,
            &app.state,
            &ctx,
            DomainEvent::CategoryUpdated {
                id: first.id,
                changes,
            },
        )
        .await
        .map_err(|e| sea_orm::DbErr::Custom(e.message))?;
        // Then the change fails: the second category cannot take the first one's slug.
        let mut clash: category::ActiveModel = second.clone().into();
        clash.slug = Set(first.slug.clone());
        clash.update(&txn).await?;
        txn.commit().await
    }
    .await;
    assert!(failed.is_err(), "the slug clash must fail the transaction");
    assert_eq!(count("system_logs").await, logs, "no audit row");
    assert_eq!(count("outbox_events").await, outbox, "no outbox row");
    let kept = category::Entity::find_by_id(first.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.name, first.name, "nor the change itself");
    // The same steps without the failure commit all three.
    let txn = app.state.db.begin().await.unwrap();
    let mut changes = Changes::default();
    changes.change("name", &first.name, "Renombrada");
    events::record(
        &txn,
        &app.state,
        &ctx,
        DomainEvent::CategoryUpdated {
            id: first.id,
            changes,
        },
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(count("system_logs").await, logs + 1);
    assert_eq!(count("outbox_events").await, outbox + 1);
    assert_eq!(
        app.metric("outbox_events_total", "type=\"category.updated\"")
            .await,
        2.0,
        "counted when written (the rolled-back row included)"
    );
}

/// An event with an in-transaction reaction (a paid order cancelled owes a refund) is refused by
/// `events::record`, which would skip the reaction: it must go through `record_in`, which runs it.
#[tokio::test]
async fn an_event_with_an_in_transaction_reaction_is_recorded_with_its_reaction_only() {
    use dispensary::services::platform::events::{self, DomainEvent};
    let app = TestApp::spawn().await;
    let ctx = dispensary::actor::RequestCtx::anonymous(
        "trace-reaction".into(),
        std::net::Ipv4Addr::LOCALHOST.into(),
    );
    let cancelled = |from: &str| DomainEvent::OrderStatusChanged {
        id: 424242,
        from: from.into(),
        to: "cancelled".into(),
        reason: "test".into(),
    };
    let logs = app.scalar_i64("SELECT COUNT(*) FROM system_logs").await;
    let txn = dispensary::db::begin_write(&app.state.db).await.unwrap();
    let refused = events::record(&txn, &app.state, &ctx, cancelled("paid"))
        .await
        .expect_err("record skips reactions, so it refuses this event");
    assert_eq!(refused.code.as_str(), "internal_error");
    // Without a reaction (a pending order cancelled) `record` takes it.
    events::record(&txn, &app.state, &ctx, cancelled("pending"))
        .await
        .unwrap();
    // `record_in` writes the event and runs the reaction: with no paid payment for this order,
    // it owes nothing and enqueues no refund job.
    events::record_in(&txn, &app.state, &ctx, cancelled("paid"))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM system_logs").await,
        logs + 2
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM jobs WHERE unique_key = 'payments.refund:order:424242'"
        )
        .await,
        0
    );
}
