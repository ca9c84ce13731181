//! The limits the server enforces, stated in the OpenAPI document from the very constants the
//! validation code uses (so the two cannot drift): bounds of query parameters, lengths, patterns,
//! formats and enumerations of body fields. `openapi.rs` applies them after building the schemas
//! from the types.

use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{Object, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema};

use crate::domain::Scope;
use crate::domain::{EMAIL_MAX, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN, PHONE_DIGITS, REGIONS};
use crate::services::accounts::{addresses, api_keys};
use crate::services::catalog::text::{DESCRIPTION_MAX, IMAGE_URL_MAX, SKU_MAX, SLUG_MAX};
use crate::services::catalog::variants::{MAX_PRICE, MAX_QUANTITY, OPTION_LABEL_MAX};
use crate::services::catalog::{self, reviews};
use crate::services::commerce::{analytics, cart, coupons, orders};
use crate::services::integrations::{self, delivery, endpoints};
use crate::services::medicinal::documents as medicinal;
use crate::services::platform::pagination::MAX_PAGE_SIZE;

/// One field's constraint.
#[derive(Debug, Clone)]
pub enum Rule {
    /// An integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// A string: its length in characters, a pattern (ECMA-262, searched), a format.
    Str {
        min: Option<usize>,
        max: Option<usize>,
        pattern: Option<String>,
        format: Option<&'static str>,
    },
    /// One of these strings.
    OneOf(Vec<String>),
}

/// Rust's whitespace (`char::is_whitespace`, what `str::trim` removes), spelled out: `\s` differs
/// between regex engines (Python's includes U+001C–U+001F, ECMA's U+FEFF; neither is Rust's).
const WS: &str = r"\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// Characters `parse_text` refuses (control characters but newline and tab).
const CONTROL_BUT_NL_TAB: &str = r"\u0000-\u0008\u000B-\u001F\u007F-\u009F";
/// Every control character (`parse_name` refuses them all).
const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";
/// Characters no text input may hold (`domain::check_text`, applied to every string at the edge):
/// control characters but the whitespace ones (tab, LF, VT, FF, CR, NEL).
const CONTROL_AT_EDGE: &str = r"\u0000-\u0008\u000E-\u001F\u007F-\u0084\u0086-\u009F";

/// Every string the server reads without a rule of its own: no control characters but
/// whitespace.
fn edge_text_pattern() -> String {
    format!(r"^[^{CONTROL_AT_EDGE}]*$")
}

/// A raw text body (the CSV import): not blank, no control characters but whitespace.
pub fn text_body_pattern() -> String {
    format!(r"^[^{CONTROL_AT_EDGE}]*[^{WS}{CONTROL_AT_EDGE}][^{CONTROL_AT_EDGE}]*$")
}

/// Trimmed, non-blank text of at most `max` characters without the `bad` characters
/// (`domain::parse_text`, `domain::parse_name`).
fn text(max: usize, bad: &str) -> Rule {
    Rule::Str {
        min: Some(1),
        max: Some(max),
        pattern: Some(format!(r"^[^{bad}]*[^{WS}{bad}][^{bad}]*$")),
        format: None,
    }
}

/// Free text (`parse_text`) of at most `max` characters.
fn plain(max: usize) -> Rule {
    text(max, CONTROL_BUT_NL_TAB)
}

/// Optional text where blank means "none" (`parse_description`).
fn blank_or_plain(max: usize) -> Rule {
    Rule::Str {
        min: None,
        max: Some(max),
        pattern: Some(format!(r"^[^{CONTROL_BUT_NL_TAB}]*$")),
        format: None,
    }
}

fn int(min: i64, max: i64) -> Rule {
    Rule::Int { min, max }
}

fn name() -> Rule {
    text(NAME_MAX, CONTROL)
}

fn email() -> Rule {
    Rule::Str {
        min: None,
        max: Some(EMAIL_MAX),
        pattern: None,
        format: Some("email"),
    }
}

fn password() -> Rule {
    Rule::Str {
        min: Some(PASSWORD_MIN),
        max: Some(PASSWORD_MAX),
        // A letter and a digit, in either order (`domain::Password`), and no control character
        // (`domain::check_text`).
        pattern: Some(format!(
            r"^[^{c}]*([A-Za-z][^{c}]*[0-9]|[0-9][^{c}]*[A-Za-z])[^{c}]*$",
            c = CONTROL_AT_EDGE
        )),
        format: None,
    }
}

/// A RUT in any common spelling: up to 8 body digits and a check digit, with dots, spaces and a
/// hyphen anywhere (`domain::Rut`). The `rut` format names the modulo-11 check digit a pattern
/// cannot state.
fn rut(blank_allowed: bool) -> Rule {
    let rut = r"^[ .\-]*([0-9][ .\-]*){1,8}[0-9Kk][ .\-]*$";
    Rule::Str {
        min: None,
        max: None,
        pattern: Some(if blank_allowed {
            format!(r"^[{WS}]*$|{rut}")
        } else {
            rut.into()
        }),
        format: Some("rut"),
    }
}

fn phone() -> Rule {
    let (min, max) = PHONE_DIGITS;
    Rule::Str {
        min: None,
        max: None,
        pattern: Some(format!(
            r"^[{WS}]*(\+[{WS}]*)?([0-9][{WS}]*){{{min},{max}}}$"
        )),
        format: None,
    }
}

fn slug() -> Rule {
    Rule::Str {
        min: Some(1),
        max: Some(SLUG_MAX),
        pattern: Some("^[a-z0-9]+(-[a-z0-9]+)*$".into()),
        format: None,
    }
}

fn sku() -> Rule {
    Rule::Str {
        min: Some(1),
        max: Some(SKU_MAX),
        pattern: Some("^[A-Za-z0-9._-]+$".into()),
        format: None,
    }
}

/// An http(s) URL or an `/uploads/` path, without whitespace, brackets, backslashes or `..`
/// (`parse_image_url`); blank means no image when creating.
fn image_url(blank_allowed: bool) -> Rule {
    let url =
        format!(r"^[{WS}]*(https?://|/uploads/)(\.?[^{WS}{CONTROL_AT_EDGE}.\[\]\\])*\.?[{WS}]*$");
    Rule::Str {
        min: None,
        max: Some(IMAGE_URL_MAX),
        pattern: Some(if blank_allowed {
            format!(r"^[{WS}]*$|{url}")
        } else {
            url
        }),
        format: None,
    }
}

fn coupon_code() -> Rule {
    let (min, max) = coupons::CODE_LEN;
    Rule::Str {
        min: Some(min),
        max: Some(max),
        pattern: Some(format!("^[A-Za-z0-9_-]{{{min},{max}}}$")),
        format: None,
    }
}

/// Every spelling `parse_region` accepts verbatim: names, codes and aliases.
fn region() -> Rule {
    Rule::OneOf(
        REGIONS
            .iter()
            .flat_map(|(name, code, aliases)| {
                [*name, *code]
                    .into_iter()
                    .chain(aliases.iter().copied())
                    .map(str::to_string)
            })
            .collect(),
    )
}

fn provider() -> Rule {
    Rule::OneOf(
        crate::entities::payment::Provider::ALL
            .iter()
            .map(|p| p.as_str().to_string())
            .collect(),
    )
}

/// A comma list of sort fields, each optionally `-` (descending) or `+`; blank is the default
/// order (`catalog::products` parse_sort).
fn sort() -> Rule {
    let field = format!("[-+]?({})", catalog::products::SORT_FIELDS.join("|"));
    Rule::Str {
        min: None,
        max: None,
        pattern: Some(format!(
            r"^[{WS}]*$|^[{WS}]*{field}[{WS}]*(,[{WS}]*{field}[{WS}]*)*$"
        )),
        format: None,
    }
}

/// A review decides: `approved` or `rejected` (never back to `pending`).
fn review_decision() -> Rule {
    use crate::entities::medicinal_document::DocStatus;
    Rule::OneOf(
        [DocStatus::Approved, DocStatus::Rejected]
            .iter()
            .filter_map(|s| serde_json::to_value(s).ok()?.as_str().map(str::to_string))
            .collect(),
    )
}

/// Query parameters: (operation, or `*` for every route, name, rule).
pub fn param_rules() -> Vec<(&'static str, &'static str, Rule)> {
    let bounded = |(_, min, max): (i64, i64, i64)| int(min, max);
    let price_min = catalog::products::PRICE_FILTER_MIN;
    // An empty filter counts as absent.
    let blank_or = |values: &[&str]| {
        Rule::OneOf(
            std::iter::once("")
                .chain(values.iter().copied())
                .map(str::to_string)
                .collect(),
        )
    };
    vec![
        ("*", "page", int(1, i64::MAX)),
        ("*", "pageSize", int(1, MAX_PAGE_SIZE as i64)),
        ("*", "days", bounded(analytics::DAYS)),
        ("*", "limit", bounded(analytics::TOP_LIMIT)),
        ("*", "threshold", bounded(analytics::THRESHOLD)),
        ("Products", "priceMin", int(price_min, i64::MAX)),
        ("Products", "priceMax", int(price_min, i64::MAX)),
        ("Products", "sort", sort()),
        (
            "WebhookDeliveries",
            "state",
            one_of(
                [delivery::PENDING, delivery::DELIVERED, delivery::FAILED]
                    .iter()
                    .copied(),
            ),
        ),
        (
            "AdminPayments",
            "status",
            blank_or(&crate::entities::payment::PaymentStatus::ALL.map(|s| s.as_str())),
        ),
    ]
}

/// Body fields: (schema, property, rule).
pub fn body_rules() -> Vec<(&'static str, &'static str, Rule)> {
    let address = |s: &'static str| {
        vec![
            (s, "name", blank_or_plain(addresses::NAME_MAX)),
            (s, "addressLine", plain(addresses::LINE_MAX)),
            (s, "comuna", plain(addresses::COMUNA_MAX)),
            (s, "region", region()),
            (s, "notes", blank_or_plain(addresses::NOTES_MAX)),
        ]
    };
    let category = |s: &'static str| {
        vec![
            (s, "name", plain(catalog::categories::NAME_MAX)),
            (s, "slug", slug()),
            (s, "description", blank_or_plain(DESCRIPTION_MAX)),
        ]
    };
    let product = |s: &'static str| {
        vec![
            (s, "name", plain(catalog::products::NAME_MAX)),
            (s, "slug", slug()),
            (s, "description", blank_or_plain(DESCRIPTION_MAX)),
            (s, "imageUrl", image_url(s.starts_with("Create"))),
        ]
    };
    let variant = |s: &'static str| {
        vec![
            (s, "sku", sku()),
            (s, "optionLabel", plain(OPTION_LABEL_MAX)),
            (s, "priceCents", int(0, MAX_PRICE)),
            (s, "stock", int(0, MAX_QUANTITY)),
            (s, "weightGrams", int(0, MAX_QUANTITY)),
        ]
    };
    let coupon = |s: &'static str| {
        vec![
            (
                s,
                "value",
                int(coupons::PERCENT_RANGE.0, coupons::FIXED_MAX),
            ),
            (s, "minOrderCents", int(0, i64::MAX)),
            (s, "usageLimit", int(1, coupons::LIMIT_MAX)),
            (s, "perUserLimit", int(1, coupons::LIMIT_MAX)),
        ]
    };
    let mut rules = vec![
        ("RegisterInput", "name", name()),
        ("RegisterInput", "email", email()),
        ("RegisterInput", "password", password()),
        ("RegisterInput", "rut", rut(true)),
        ("ForgotPasswordInput", "email", email()),
        ("ResetPasswordInput", "newPassword", password()),
        ("ChangePasswordInput", "newPassword", password()),
        (
            "ChangePasswordInput",
            "currentPassword",
            Rule::Str {
                min: Some(1),
                max: Some(PASSWORD_MAX),
                pattern: None,
                format: None,
            },
        ),
        ("UpdateMeInput", "name", name()),
        ("UpdateMeInput", "email", email()),
        ("UpdateMeInput", "rut", rut(false)),
        ("UpdateMeInput", "phone", phone()),
        ("CartItemInput", "quantity", int(0, cart::MAX_LINE_QUANTITY)),
        ("LineInput", "quantity", int(1, cart::MAX_LINE_QUANTITY)),
        ("CouponInput", "code", coupon_code()),
        ("TrackingInput", "courier", plain(orders::COURIER_MAX)),
        (
            "TrackingInput",
            "trackingNumber",
            plain(orders::TRACKING_NUMBER_MAX),
        ),
        ("StartPaymentInput", "provider", provider()),
        ("ConfirmPaymentInput", "provider", provider()),
        (
            "ReviewInput",
            "rating",
            int(reviews::RATING.0, reviews::RATING.1),
        ),
        (
            "ReviewInput",
            "body",
            Rule::Str {
                min: Some(reviews::BODY_MIN),
                max: Some(reviews::BODY_MAX),
                pattern: None,
                format: None,
            },
        ),
        (
            "ReviewInput",
            "title",
            Rule::Str {
                min: None,
                max: Some(reviews::TITLE_MAX),
                pattern: None,
                format: None,
            },
        ),
        ("ReviewMedicinalDocumentInput", "status", review_decision()),
        (
            "BlockProcessingInput",
            "reason",
            plain(crate::services::accounts::users::BLOCK_REASON_MAX),
        ),
        (
            "ReviewMedicinalDocumentInput",
            "notes",
            Rule::Str {
                min: None,
                max: Some(medicinal::NOTES_MAX),
                pattern: None,
                format: None,
            },
        ),
    ];
    for s in ["AddressInput", "UpdateAddressInput"] {
        rules.extend(address(s));
    }
    for s in ["CreateCategoryInput", "UpdateCategoryInput"] {
        rules.extend(category(s));
    }
    for s in ["CreateProductInput", "UpdateProductInput"] {
        rules.extend(product(s));
    }
    for s in ["CreateVariantInput", "UpdateVariantInput"] {
        rules.extend(variant(s));
    }
    for s in ["CouponInput", "UpdateCouponInput"] {
        rules.extend(coupon(s));
    }
    rules.extend(integration_rules());
    rules
}

/// API keys' and webhook endpoints' fields.
fn integration_rules() -> Vec<(&'static str, &'static str, Rule)> {
    let mut rules = Vec::new();
    rules.push(("NewApiKey", "name", plain(api_keys::NAME_MAX)));
    rules.push((
        "NewApiKey",
        "scopes",
        one_of(Scope::ALL.iter().map(|s| s.as_str())),
    ));
    for s in ["NewWebhookEndpoint", "WebhookEndpointPatch"] {
        rules.push((s, "url", webhook_url()));
        rules.push((
            s,
            "eventTypes",
            one_of(integrations::EVENT_TYPES.iter().copied()),
        ));
        rules.push((s, "description", blank_or_plain(endpoints::DESCRIPTION_MAX)));
    }
    rules
}

fn one_of<'a>(values: impl Iterator<Item = &'a str>) -> Rule {
    Rule::OneOf(values.map(str::to_string).collect())
}

/// A webhook URL: at most 2048 characters without control characters; what the WHATWG URL
/// parser accepts, its scheme and its address are the server's checks (400 `invalid_format`,
/// `insecure_scheme`, `credentials_in_url`, `address_not_allowed`), beyond what a pattern states.
fn webhook_url() -> Rule {
    Rule::Str {
        min: None,
        max: Some(integrations::targets::URL_MAX),
        pattern: Some(edge_text_pattern()),
        format: None,
    }
}

fn is_nullable(o: &Object) -> bool {
    matches!(&o.schema_type, SchemaType::Array(types) if types.contains(&Type::Null))
}

fn has_type(o: &Object, t: Type) -> bool {
    match &o.schema_type {
        SchemaType::Type(x) => *x == t,
        SchemaType::Array(types) => types.contains(&t),
        SchemaType::AnyValue => false,
    }
}

/// Applies a rule to a schema object; `false` when the rule does not fit the object's type
/// (a rule table error the tests catch).
pub fn apply(o: &mut Object, rule: &Rule) -> bool {
    match rule {
        Rule::Int { min, max } => {
            if !has_type(o, Type::Integer) {
                return false;
            }
            o.minimum = Some((*min as isize).into());
            o.maximum = Some((*max as isize).into());
        }
        Rule::Str {
            min,
            max,
            pattern,
            format,
        } => {
            if !has_type(o, Type::String) {
                return false;
            }
            o.min_length = *min;
            o.max_length = *max;
            o.pattern = pattern.clone();
            if let Some(f) = format {
                o.format = Some(match *f {
                    "email" => SchemaFormat::KnownFormat(KnownFormat::Email),
                    other => SchemaFormat::Custom(other.to_string()),
                });
            }
        }
        Rule::OneOf(values) => {
            if !has_type(o, Type::String) {
                return false;
            }
            let mut all: Vec<serde_json::Value> =
                values.iter().map(|v| serde_json::json!(v)).collect();
            if is_nullable(o) {
                all.push(serde_json::Value::Null);
            }
            o.enum_values = Some(all);
        }
    }
    true
}

/// Every integer the server parses is an `i64`: larger numbers are refused, so they are
/// outside the documented range too.
pub fn bound_integers(o: &mut Object) {
    if has_type(o, Type::Integer) {
        o.minimum.get_or_insert((i64::MIN as isize).into());
        o.maximum.get_or_insert((i64::MAX as isize).into());
    }
}

/// A string schema without a rule of its own (no pattern, format or enumeration) states the
/// edge's: no control characters but whitespace. An array states it of its items.
pub fn edge_text(s: &mut Schema) {
    match s {
        Schema::Object(o)
            if has_type(o, Type::String)
                && o.pattern.is_none()
                && o.format.is_none()
                && o.enum_values.is_none() =>
        {
            o.pattern = Some(edge_text_pattern());
        }
        Schema::Array(a) => {
            if let utoipa::openapi::schema::ArrayItems::RefOrSchema(item) = &mut a.items {
                if let RefOr::T(item) = item.as_mut() {
                    edge_text(item);
                }
            }
        }
        _ => {}
    }
}

/// The rule for a query parameter of `operation`, applied to its schema.
pub fn apply_param(operation: &str, p: &mut Parameter) {
    if p.parameter_in != ParameterIn::Query && p.parameter_in != ParameterIn::Path {
        return;
    }
    let Some(RefOr::T(Schema::Object(o))) = p.schema.as_mut() else {
        return;
    };
    let rule = param_rules()
        .into_iter()
        .find(|(op, n, _)| (*op == "*" || *op == operation) && *n == p.name);
    if let Some((_, _, rule)) = rule {
        apply(o, &rule);
    }
    bound_integers(o);
    if let Some(RefOr::T(s)) = p.schema.as_mut() {
        edge_text(s);
    }
}
