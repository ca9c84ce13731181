//! The messages' texts: Spanish (Chile), each a subject, a plain-text part and an HTML part,
//! rendered with minijinja from `templates/mail/` (compiled into the binary). The HTML parts
//! escape every value; the plain-text parts and subjects do not need to.

use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment};
use serde_json::Value;

/// A template's three parts, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        /// Every template's name.
        pub const NAMES: &[&str] = &[$($name),*];

        fn environment() -> Environment<'static> {
            let mut env = Environment::new();
            env.set_auto_escape_callback(|name| {
                if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None }
            });
            env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
            env.add_template("layout.html", include_str!("../../../templates/mail/layout.html"))
                .expect("layout.html");
            env.add_template("layout.txt", include_str!("../../../templates/mail/layout.txt"))
                .expect("layout.txt");
            $(
                env.add_template(concat!($name, ".subject"), include_str!(concat!("../../../templates/mail/", $name, ".subject")))
                    .expect(concat!($name, ".subject"));
                env.add_template(concat!($name, ".txt"), include_str!(concat!("../../../templates/mail/", $name, ".txt")))
                    .expect(concat!($name, ".txt"));
                env.add_template(concat!($name, ".html"), include_str!(concat!("../../../templates/mail/", $name, ".html")))
                    .expect(concat!($name, ".html"));
            )*
            env
        }
    };
}

templates![
    "order_received",
    "payment_received",
    "order_shipped",
    "order_delivered",
    "order_cancelled",
    "refund_issued",
    "document_reviewed",
    "verify_email",
    "email_change_requested",
    "reset_password",
    "password_changed",
    "two_factor_changed",
    "data_export_ready",
    "erasure_scheduled",
    "account_erased",
    "webhook_disabled",
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(environment)
}

/// Renders template `name` with `context`; `Err` for an unknown template or a context it
/// cannot be rendered with (a missing value is an error, never an empty string).
pub fn render(name: &str, context: &Value) -> Result<Rendered, String> {
    if !NAMES.contains(&name) {
        return Err(format!("no mail template {name:?}"));
    }
    let part = |suffix: &str| {
        env()
            .get_template(&format!("{name}.{suffix}"))
            .and_then(|t| t.render(context))
            .map_err(|e| format!("mail template {name}.{suffix}: {e:#}"))
    };
    Ok(Rendered {
        subject: part("subject")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        text: part("txt")?,
        html: part("html")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order_context(name: &str) -> Value {
        json!({
            "store": {"name": "Dispensario", "url": "https://tienda.example.cl"},
            "recipient": "ana@example.cl",
            "customer": {"name": name},
            "order": {
                "id": 7, "items": [{"name": "Semilla <Auto>", "option": "1 g", "quantity": 2, "lineTotal": "$10.000"}],
                "subtotal": "$10.000", "discount": "$0", "hasDiscount": false, "shipping": "$3.990",
                "shippingMethod": "Starken", "total": "$13.990",
                "address": {"name": "Ana", "addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"},
                "url": "https://tienda.example.cl/orders/7", "payWithinMinutes": 30
            }
        })
    }

    #[test]
    fn order_received_renders_both_parts_and_escapes_html_only() {
        let r = render("order_received", &order_context("<script>x</script> & Co")).unwrap();
        assert_eq!(r.subject, "Recibimos tu pedido #7 en Dispensario");
        assert!(
            r.text.contains("Hola <script>x</script> & Co:"),
            "{}",
            r.text
        );
        assert!(
            r.text.contains("- 2 × Semilla <Auto> (1 g): $10.000"),
            "{}",
            r.text
        );
        assert!(!r.text.contains("Descuento"), "{}", r.text);
        assert!(
            r.html
                .contains("Hola &lt;script&gt;x&lt;&#x2f;script&gt; &amp; Co:"),
            "{}",
            r.html
        );
        assert!(r.html.contains("Semilla &lt;Auto&gt;"), "{}", r.html);
        assert!(!r.html.contains("<script>"), "{}", r.html);
        // Attribute values are escaped too (`/` as `&#x2f;`); mail clients decode them.
        let decoded = html_escape::decode_html_entities(&r.html);
        assert!(decoded.contains("href=\"https://tienda.example.cl/orders/7\""));
    }

    #[test]
    fn a_missing_value_or_template_is_an_error() {
        let mut c = order_context("Ana");
        c["order"].as_object_mut().unwrap().remove("total");
        assert!(render("order_received", &c)
            .unwrap_err()
            .contains("order_received"));
        assert!(render("nope", &order_context("Ana")).is_err());
    }

    /// Every template renders both parts with a context like the one its event gives; a
    /// customer's name is escaped in HTML and kept as it is in the plain text.
    #[test]
    fn every_template_renders_both_parts_and_escapes_the_name() {
        let name = "Ana <i>\"Pérez\"</i> & Co";
        for template in NAMES {
            let mut c = order_context(name);
            let extra = json!({
                "reason": "cancelled", "wasPaid": true, "refund": {"amount": "$13.990"},
                "approved": true, "expiresOn": "31-12-2027",
                "change": false, "expiresInHours": 24, "newEmail": "nueva@example.cl",
                "linkUrl": "https://tienda.example.cl/verify-email?token=ab12",
                "expiresInMinutes": 30, "changedAt": "03-12-2026 12:00 UTC", "viaReset": true,
                "event": "recovery_code_used", "remaining": 9,
                "requestedAt": "03-12-2026 12:00 UTC", "expiresAt": "04-12-2026 12:00 UTC",
                "exportUrl": "https://tienda.example.cl/account/data-exports/4",
                "scheduledFor": "10-12-2026 12:00 UTC", "retentionYears": 6,
                "cancelUrl": "https://tienda.example.cl/account/deletion",
                "admin": {"name": name}, "endpointId": 4, "host": "erp.example.cl",
                "disabledAt": "08-12-2026 12:00 UTC",
            });
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            c["order"]["courier"] = json!("Starken");
            c["order"]["trackingNumber"] = json!("ST-1");
            let r = render(template, &c).unwrap_or_else(|e| panic!("{template}: {e}"));
            assert!(
                !r.subject.is_empty() && !r.subject.contains('\n'),
                "{template}"
            );
            assert!(
                r.text.contains(&format!("Hola {name}:")),
                "{template}: {}",
                r.text
            );
            assert!(
                r.html
                    .contains("Hola Ana &lt;i&gt;&quot;Pérez&quot;&lt;&#x2f;i&gt; &amp; Co:"),
                "{template}: {}",
                r.html
            );
            assert!(!r.html.contains("<i>"), "{template}");
            assert!(r.html.contains("Dispensario"), "{template}");
        }
        // The variants of the cancellation mail.
        let mut c = order_context("Ana");
        c["wasPaid"] = json!(false);
        for (reason, subject) in [
            ("expired", "Tu pedido #7 expiró sin pago"),
            ("payment_failed", "El pago de tu pedido #7 no se completó"),
            ("cancelled", "Tu pedido #7 fue anulado"),
        ] {
            c["reason"] = json!(reason);
            assert_eq!(render("order_cancelled", &c).unwrap().subject, subject);
        }
        // The verification link: in both parts, and worded for a change when it is one.
        c["change"] = json!(false);
        c["expiresInHours"] = json!(24);
        c["newEmail"] = json!("nueva@example.cl");
        c["linkUrl"] = json!("https://tienda.example.cl/verify-email?token=ab12");
        let r = render("verify_email", &c).unwrap();
        assert_eq!(r.subject, "Confirma tu correo en Dispensario");
        assert!(
            r.text
                .contains("\nhttps://tienda.example.cl/verify-email?token=ab12\n"),
            "{}",
            r.text
        );
        assert!(html_escape::decode_html_entities(&r.html)
            .contains("href=\"https://tienda.example.cl/verify-email?token=ab12\""));
        c["change"] = json!(true);
        let r = render("verify_email", &c).unwrap();
        assert_eq!(r.subject, "Confirma tu nuevo correo en Dispensario");
        assert!(
            r.text
                .contains("Pediste usar ana@example.cl como el correo"),
            "{}",
            r.text
        );
        let r = render("email_change_requested", &c).unwrap();
        assert!(
            r.text.contains("a nueva@example.cl.")
                && r.text.contains("sigues usando ana@example.cl"),
            "{}",
            r.text
        );
        // The reset link, and the notice after a reset or a change.
        c["linkUrl"] = json!("https://tienda.example.cl/reset-password?token=cd34");
        c["expiresInMinutes"] = json!(30);
        let r = render("reset_password", &c).unwrap();
        assert_eq!(r.subject, "Restablece tu contraseña en Dispensario");
        assert!(
            r.text
                .contains("\nhttps://tienda.example.cl/reset-password?token=cd34\n")
                && r.text.contains("vence en 30 minutos"),
            "{}",
            r.text
        );
        c["changedAt"] = json!("03-12-2026 12:00 UTC");
        c["viaReset"] = json!(false);
        let r = render("password_changed", &c).unwrap();
        assert_eq!(r.subject, "Tu contraseña en Dispensario cambió");
        assert!(
            r.text
                .contains("cambió el 03-12-2026 12:00 UTC, y se cerraron tus otras sesiones"),
            "{}",
            r.text
        );
        c["event"] = json!("enabled");
        let r = render("two_factor_changed", &c).unwrap();
        assert_eq!(
            r.subject,
            "Activaste la verificación en dos pasos en Dispensario"
        );
        assert!(
            r.text.contains("El 03-12-2026 12:00 UTC activaste"),
            "{}",
            r.text
        );
        c["event"] = json!("recovery_code_used");
        assert!(
            render("two_factor_changed", &c).is_err(),
            "remaining is required"
        );
        c["remaining"] = json!(7);
        let r = render("two_factor_changed", &c).unwrap();
        assert!(r.text.contains("Te quedan 7;"), "{}", r.text);
        assert!(r.html.contains("Te quedan 7;"), "{}", r.html);
        c["approved"] = json!(false);
        c["expiresOn"] = Value::Null;
        let r = render("document_reviewed", &c).unwrap();
        assert_eq!(r.subject, "Tu receta no fue aprobada");
        assert!(r.text.contains("no pudimos aprobarlo"));
    }
}
