//! Transactional email: messages go over real SMTP to the test server (or to `.eml` files without
//! `SMTP_URL`), one per event and template however often the event is handed over, retried while
//! the server is down.

use chrono::Duration;
use dispensary::entities::job::{self, JobState};
use mail_parser::{Message, MessageParser, MimeHeaders};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::helpers::*;
use crate::smtp::SmtpSim;

const NAME: &str = "Ana <b>Pérez</b> & \"Cía\"";

/// The subject of the link every registration mails.
pub(crate) const VERIFY: &str = "Confirma tu correo en Dispensario";

/// The messages received other than registration's verification link.
fn order_messages(smtp: &SmtpSim) -> Vec<Message<'static>> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.subject() != Some(VERIFY))
        .collect()
}

/// A customer with a name that needs escaping, and their pending order: (email, order id).
async fn customer_order(app: &TestApp, email: &str) -> (String, i64) {
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({"name": NAME, "email": email, "password": "secreto123"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let token = r.body["accessToken"].as_str().unwrap().to_string();
    let vid = variant_id(app, "NL-AUTO-1G").await;
    let o = app
        .post(
            "/api/checkout/confirm",
            Some(&token),
            json!({"items": [{"variantId": vid, "quantity": 2}],
                   "address": {"name": "Ana <Pérez>", "addressLine": "Av. Matta 1 & 2", "comuna": "Santiago", "region": "RM"},
                   "shippingMethod": "starken"}),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.text);
    (email.to_string(), o.body["id"].as_i64().unwrap())
}

/// Everything due, as a runner would do it: ticks, then every due job until none is left.
pub(crate) async fn run_jobs(app: &TestApp) {
    let r = app.job_runner(1);
    for _ in 0..3 {
        r.schedule_once().await.unwrap();
        while r.run_once(&r.worker(0)).await.unwrap().is_some() {}
    }
}

/// Sends what is due after a later request (a subscriber's dispatch job is keyed by the second:
/// one passes first, as real time does between requests).
pub(crate) async fn deliver(app: &TestApp) {
    app.clock.advance(Duration::seconds(2));
    run_jobs(app).await;
}

/// The messages received with `subject`, oldest first.
pub(crate) fn with_subject(smtp: &SmtpSim, subject: &str) -> Vec<Message<'static>> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.subject() == Some(subject))
        .collect()
}

/// The token of the link to frontend page `page` (`/verify-email`) in `m`, checked to be the same
/// in both parts.
pub(crate) fn link_token(m: &Message<'_>, page: &str) -> String {
    let marker = format!("https://tienda.example.cl{page}?token=");
    let find = |body: &str| {
        let at = body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {marker} link in {body}"));
        body[at + marker.len()..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect::<String>()
    };
    let text = find(&m.body_text(0).expect("a plain-text part"));
    let html = find(&html_escape::decode_html_entities(
        &m.body_html(0).expect("an HTML part"),
    ));
    assert_eq!(text, html, "both parts carry the same link");
    assert_eq!(text.len(), 64, "{text}");
    text
}

pub(crate) async fn mail_jobs(app: &TestApp) -> Vec<job::Model> {
    job::Entity::find()
        .filter(job::Column::Kind.eq("mail.send"))
        .all(&app.state.db)
        .await
        .unwrap()
}

pub(crate) fn first_address(a: Option<&mail_parser::Address<'_>>) -> String {
    a.and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string()
}

/// The order-received message of order `id` to `email`: headers, both parts.
fn check_order_received(m: &Message<'_>, email: &str, id: i64) {
    assert_eq!(first_address(m.from()), "hola@tienda.example.cl");
    assert_eq!(first_address(m.to()), email);
    assert_eq!(
        m.subject(),
        Some(format!("Recibimos tu pedido #{id} en Dispensario").as_str())
    );
    let text = m.body_text(0).expect("a plain-text part");
    let html = m.body_html(0).expect("an HTML part");
    // The plain text carries the values as they are.
    assert!(text.contains(&format!("Hola {NAME}:")), "{text}");
    assert!(text.contains("2 × "), "{text}");
    assert!(text.contains("Av. Matta 1 & 2"), "{text}");
    assert!(
        text.contains(&format!("https://tienda.example.cl/orders/{id}")),
        "{text}"
    );
    assert!(text.contains("Total: $"), "{text}");
    // The HTML escapes every user-supplied value.
    assert!(
        html.contains("Hola Ana &lt;b&gt;Pérez&lt;&#x2f;b&gt; &amp; &quot;Cía&quot;:"),
        "{html}"
    );
    assert!(html.contains("Ana &lt;Pérez&gt;"), "{html}");
    assert!(html.contains("Av. Matta 1 &amp; 2"), "{html}");
    assert!(!html.contains("<b>Pérez"), "{html}");
    // Links are escaped like every value (`/` as `&#x2f;`); a mail client reads them decoded.
    assert!(
        html_escape::decode_html_entities(&html)
            .contains(&format!("href=\"https://tienda.example.cl/orders/{id}\"")),
        "{html}"
    );
}

pub(crate) fn smtp_env(smtp: &SmtpSim) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_URL", smtp.url()),
        ("EMAIL_FROM", "Tienda <hola@tienda.example.cl>".into()),
        ("FRONTEND_BASE_URL", "https://tienda.example.cl".into()),
    ]
}

pub(crate) async fn spawn_with_owned(vars: &[(&'static str, String)]) -> TestApp {
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(&borrowed).await
}

#[tokio::test]
async fn an_order_sends_one_received_mail_over_smtp_however_often_its_event_is_handed_over() {
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let (email, id) = customer_order(&app, "ana-mail@example.cl").await;
    // Nothing is sent inside the request.
    assert!(smtp.received().is_empty());

    run_jobs(&app).await;
    let got = smtp.received();
    // Registration's verification link, then the order.
    assert_eq!(got.len(), 2);
    assert!(got
        .iter()
        .all(|g| g.from == "hola@tienda.example.cl" && g.to == vec![email.clone()]));
    assert_eq!(subjects(&smtp)[0], VERIFY);
    check_order_received(&order_messages(&smtp)[0], &email, id);
    let jobs: Vec<_> = mail_jobs(&app)
        .await
        .into_iter()
        .filter(|j| j.payload["template"] == "order_received")
        .collect();
    assert_eq!(jobs.len(), 1);
    let created = app
        .scalar_i64(&format!(
            "SELECT id FROM outbox_events WHERE event_type = 'order.created' AND aggregate_id = {id}"
        ))
        .await;
    assert_eq!(
        jobs[0].unique_key.as_deref(),
        Some(format!("mail:{created}:order_received").as_str())
    );
    assert_eq!(jobs[0].state, JobState::Done);

    // The event handed over again (as after a lost delivery mark): still one mail.
    app.execute(&format!(
        "UPDATE outbox_events SET dispatched_at = NULL WHERE id = {created}"
    ))
    .await;
    // (A subscriber's next dispatch job is keyed by the second: let one pass.)
    app.clock.advance(Duration::seconds(2));
    run_jobs(&app).await;
    assert!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM outbox_events WHERE id = {created} AND dispatched_at IS NOT NULL"
        ))
        .await
            == 1,
        "handed over again"
    );
    assert_eq!(smtp.received().len(), 2);
    assert_eq!(mail_jobs(&app).await.len(), 2);
    assert_eq!(
        app.metric("emails_sent_total", "template=\"order_received\"")
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_mail_server_that_is_down_gets_the_message_once_it_is_back() {
    let smtp = SmtpSim::start().await;
    smtp.set_down(true);
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let (email, id) = customer_order(&app, "ana-down@example.cl").await;
    run_jobs(&app).await;
    assert!(smtp.received().is_empty());
    assert!(smtp.state.lock().unwrap().sessions >= 1, "it was tried");
    let order_job = |jobs: Vec<job::Model>| {
        jobs.into_iter()
            .find(|j| j.payload["template"] == "order_received")
            .unwrap()
    };
    let j = order_job(mail_jobs(&app).await);
    assert_eq!((j.state, j.attempts), (JobState::Failed, 1));
    assert!(
        j.last_error.as_deref().unwrap().starts_with("SMTP:"),
        "{:?}",
        j.last_error
    );
    assert_eq!(
        app.metric("emails_failed_total", "template=\"order_received\"")
            .await,
        1.0
    );

    smtp.set_down(false);
    // Both failed messages (the order's and registration's link) are due again.
    let due = mail_jobs(&app)
        .await
        .iter()
        .map(|j| j.run_at)
        .max()
        .unwrap();
    assert!(due >= j.run_at);
    app.clock
        .advance(due - app.clock.now() + Duration::milliseconds(10));
    run_jobs(&app).await;
    assert_eq!(smtp.received().len(), 2);
    check_order_received(&order_messages(&smtp)[0], &email, id);
    let j = order_job(mail_jobs(&app).await);
    assert_eq!((j.state, j.attempts), (JobState::Done, 2));
    // The Message-ID was drawn when the job was queued: the retried send carries the same one.
    let mid = j.payload["messageId"]
        .as_str()
        .expect("the job's Message-ID");
    assert_eq!(order_messages(&smtp)[0].message_id(), Some(mid));
    // Later runs never send it again; the unpaid order expiring sends its own mail.
    app.clock.advance(Duration::hours(1));
    run_jobs(&app).await;
    assert_eq!(
        subjects(&smtp),
        vec![
            VERIFY.to_string(),
            format!("Recibimos tu pedido #{id} en Dispensario"),
            format!("Tu pedido #{id} expiró sin pago"),
        ]
    );
}

#[tokio::test]
async fn without_smtp_url_messages_are_written_as_eml_files() {
    let app = TestApp::spawn_with(&[
        ("EMAIL_FROM", "Tienda <hola@tienda.example.cl>"),
        ("FRONTEND_BASE_URL", "https://tienda.example.cl"),
    ])
    .await;
    let dir = app.state.config.mail.dir.clone();
    let (email, id) = customer_order(&app, "ana-files@example.cl").await;
    assert!(!dir.exists() || std::fs::read_dir(&dir).unwrap().count() == 0);
    run_jobs(&app).await;
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let mut order_mails = 0;
    let mut ids = std::collections::HashSet::new();
    for f in &files {
        assert_eq!(f.extension().and_then(|e| e.to_str()), Some("eml"));
        let bytes = std::fs::read(f).unwrap();
        let m = MessageParser::default().parse(&bytes).unwrap();
        assert!(m.content_type().is_some());
        // Every message has its own Message-ID on the sender's domain.
        let mid = m.message_id().expect("a Message-ID").to_string();
        assert!(mid.ends_with("@tienda.example.cl"), "{mid}");
        assert!(mid.len() > "@tienda.example.cl".len() + 16, "{mid}");
        assert!(ids.insert(mid), "Message-IDs repeat");
        if m.subject() != Some(VERIFY) {
            check_order_received(&m, &email, id);
            order_mails += 1;
        }
    }
    assert_eq!(order_mails, 1);
}

/// The messages received, by subject.
pub(crate) fn subjects(smtp: &SmtpSim) -> Vec<String> {
    let mut s: Vec<String> = smtp
        .messages()
        .iter()
        .map(|m| m.subject().unwrap_or_default().to_string())
        .collect();
    s.sort();
    s
}

#[tokio::test]
async fn an_orders_life_sends_one_mail_per_event_and_the_payment_mail_carries_the_receipt() {
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("vida@example.cl").await;
    let (id, start) = order_and_start(&app, &token, "NL-AUTO-1G", 1, None).await;
    let total = app
        .get(&format!("/api/orders/{id}"), Some(&token))
        .await
        .body["totalCents"]
        .as_i64()
        .unwrap();
    // The provider's notification arrives twice.
    let body = event(
        &app,
        "evt-mail-1",
        start["providerTxnId"].as_str().unwrap(),
        "paid",
        total,
    );
    for _ in 0..2 {
        let r = webhook(&app, &body, Some(sign(&body))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = app
        .patch(
            &format!("/api/admin/orders/{id}/tracking"),
            Some(&admin),
            json!({"courier": "Starken", "trackingNumber": "ST-99"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for status in ["shipped", "delivered"] {
        let r = app
            .patch(
                &format!("/api/admin/orders/{id}"),
                Some(&admin),
                json!({"status": status}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    // A second order, cancelled by its customer before paying.
    let (other, _) = order_and_start(&app, &token, "NL-AUTO-1G", 1, None).await;
    let r = app
        .post(
            &format!("/api/orders/{other}/cancel"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    run_jobs(&app).await;
    run_jobs(&app).await;
    let mut expected = vec![
        VERIFY.to_string(),
        format!("Pago recibido: tu pedido #{id} está confirmado"),
        format!("Recibimos tu pedido #{id} en Dispensario"),
        format!("Recibimos tu pedido #{other} en Dispensario"),
        format!("Tu pedido #{id} fue entregado"),
        format!("Tu pedido #{id} va en camino"),
        format!("Tu pedido #{other} fue anulado"),
    ];
    expected.sort();
    assert_eq!(subjects(&smtp), expected);
    let messages = smtp.messages();
    let paid = messages
        .iter()
        .find(|m| m.subject().unwrap().starts_with("Pago recibido"))
        .unwrap();
    let attachments: Vec<_> = paid.attachments().collect();
    assert_eq!(attachments.len(), 1);
    let pdf = attachments[0];
    assert_eq!(
        pdf.attachment_name(),
        Some(format!("comprobante-{id}.pdf").as_str())
    );
    let ct = pdf.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("application", Some("pdf")));
    assert!(pdf.contents().starts_with(b"%PDF-"));
    assert!(paid
        .body_text(0)
        .unwrap()
        .contains("Adjuntamos tu comprobante"));
    let shipped = messages
        .iter()
        .find(|m| m.subject().unwrap().ends_with("va en camino"))
        .unwrap();
    let text = shipped.body_text(0).unwrap();
    assert!(text.contains("despachado por Starken"), "{text}");
    assert!(text.contains("Código de seguimiento: ST-99"), "{text}");
    // One job per message, all done.
    let jobs = mail_jobs(&app).await;
    assert_eq!(jobs.len(), 7);
    assert!(jobs.iter().all(|j| j.state == JobState::Done));
    assert_eq!(
        app.metric("emails_sent_total", "template=\"payment_received\"")
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_document_review_mails_its_status_only() {
    use crate::medicinal::{doc_form, submit, PDF};
    let smtp = SmtpSim::start().await;
    let app = spawn_with_owned(&smtp_env(&smtp)).await;
    let admin = app.admin_token().await;
    let (token, _, _) = app.register("receta-mail@example.cl").await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = submit(&app, &token, doc_form("receta", "receta.pdf", PDF)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        ids.push(r.body["id"].as_i64().unwrap());
    }
    for (id, status) in [(ids[0], "rejected"), (ids[1], "approved")] {
        let r = app
            .patch(
                &format!("/api/admin/medicinal/docs/{id}"),
                Some(&admin),
                json!({"status": status, "notes": "notas internas"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    run_jobs(&app).await;
    assert_eq!(
        subjects(&smtp),
        vec![
            VERIFY,
            "Tu receta fue aprobada",
            "Tu receta no fue aprobada"
        ]
    );
    for m in order_messages(&smtp) {
        assert_eq!(first_address(m.to()), "receta-mail@example.cl");
        assert_eq!(m.attachments().count(), 0, "never the document");
        let text = m.body_text(0).unwrap().to_string();
        assert!(
            !text.contains("notas internas") && !text.contains("receta.pdf"),
            "{text}"
        );
    }
}
