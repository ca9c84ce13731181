"""schemathesis hooks for .ci/schemathesis.sh.

1. A strategy for the `rut` string format openapi.yaml declares, so that generated RUTs carry a
   valid modulo-11 check digit (mirrors src/domain/rut.rs, check_digit).
2. `positive_data_acceptance_beyond_schema`, run instead of the built-in
   `positive_data_acceptance`: identical, except that a 400 whose every detail is a rule JSON
   Schema cannot state (an order between two fields, a reference to a row that must exist, the
   server's configuration, a file's contents, a check digit) is an accepted answer. Any other
   400 to schema-valid data (a length, a bound, a type, a pattern, an unknown field) still fails.
"""

import re

import schemathesis
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance


def check_digit(body: int) -> str:
    weights = [2, 3, 4, 5, 6, 7]
    total = sum(int(d) * weights[i % 6] for i, d in enumerate(reversed(str(body))))
    r = 11 - total % 11
    return {11: "0", 10: "K"}.get(r, str(r))


def spell(body: int, dotted: bool) -> str:
    digits = f"{body:,}".replace(",", ".") if dotted else str(body)
    return f"{digits}-{check_digit(body)}"


schemathesis.openapi.format(
    "rut", st.builds(spell, st.integers(min_value=1, max_value=99_999_999), st.booleans())
)

# (field, issue) of the server's rules beyond the schema; "*" matches any issue. List indexes in
# field paths are written `[]`.
BEYOND_SCHEMA = {
    # One field ordered after another, or one of two fields.
    ("dateTo", "before_date_from"),
    ("endsAt", "before_start"),
    ("priceMin", "greater_than_price_max"),
    ("expiresAt", "not_applicable"),
    ("addressId", "required"),
    ("address", "ambiguous"),
    # A shipping method against the region of the (saved) address.
    ("shippingMethod", "unavailable_for_region"),
    # A slug derived from a name without letters or digits (send `slug` then).
    ("slug", "required"),
    # Relative to the clock.
    ("expiresAt", "in_past"),
    # References to rows that must exist (and be the caller's), and the cart's state.
    ("categoryId", "not_found"),
    ("addressId", "not_found"),
    ("fileId", "unknown_file"),
    ("variantId", "not_found"),
    ("items[].variantId", "not_found"),
    ("couponCode", "*"),
    ("items", "empty"),
    ("items", "empty_cart"),
    # Stock at the time of the request.
    ("quantity", "insufficient_stock"),
    # Uniqueness of one field across list items (uniqueItems compares whole items).
    ("items[].variantId", "duplicate"),
    ("variants[].sku", "duplicate"),
    ("scopes[]", "duplicate"),
    ("eventTypes[]", "duplicate"),
    # The server's configuration: a provider without credentials; a webhook URL whose name
    # resolves where webhooks may not go (checked at delivery) or, in production, plain http.
    ("provider", "provider_unavailable"),
    ("url", "address_not_allowed"),
    ("url", "insecure_scheme"),
    # A URL as the WHATWG parser reads it (no JSON Schema pattern states it), without credentials.
    ("url", "invalid_format"),
    ("url", "credentials_in_url"),
    # A file's contents (its type is decided by its bytes).
    ("file", "*"),
    ("image", "*"),
    # A signed URL is both `expires` and `signature`, or neither.
    ("signature", "invalid"),
    # A mailed link's token (email verification, password reset) is one the server sent, not
    # used, replaced or expired.
    ("token", "*"),
    # The signed-in user's current password.
    ("currentPassword", "incorrect"),
    # Two-factor: the account's password, a code the authenticator shows right now (accepted
    # once), a recovery code the server issued and nobody used.
    ("password", "incorrect"),
    ("code", "invalid"),
    ("code", "already_used"),
    ("code", "required"),
    ("recoveryCode", "invalid"),
    # Registration's privacy-policy acceptance is optional, but when sent it must be `true`.
    ("acceptPrivacyPolicy", "must_accept"),
    # GraphQL's own grammar, and JSON inside a query-string parameter.
    ("query", "invalid_syntax"),
    ("variables", "invalid_json"),
    # The modulo-11 check digit (the `rut` format).
    ("rut", "invalid_rut"),
}


def beyond_schema(detail: dict, case) -> bool:
    field = re.sub(r"\[\d+\]", "[]", str(detail.get("field", "")))
    issue = detail.get("issue")
    # A CSV import's rows and header are checked one by one (a dry run reports them in a 200).
    if case.operation.path == "/api/products/import" and re.match(r"^(header\.|rows\[\]\.|row$)", field):
        return True
    if (field, issue) in BEYOND_SCHEMA or (field, "*") in BEYOND_SCHEMA:
        return True
    # A free-form object (a payment return's `params`) states nothing of what it nests; the
    # edge's rule holds there too: no control characters but whitespace in any string or key.
    if issue == "control_character" and field.startswith("params."):
        return True
    # A review's length counts its text once HTML is removed and whitespace collapsed, and a
    # blocklist refuses some words.
    if case.operation.path == "/api/products/{id}/reviews" and (field, issue) in {
        ("body", "too_short"),
        ("body", "inappropriate_language"),
        ("title", "inappropriate_language"),
    }:
        return True
    # A percent coupon's value is 1–100, a fixed one's up to the schema's maximum: the schema
    # states the wider range, the narrower one depends on `type`.
    body = case.body if isinstance(case.body, dict) else {}
    value = body.get("value")
    percent = body.get("type") == "percent" or (
        "type" not in body and isinstance(value, (int, float)) and value > 100
    )
    return (field, issue) == ("value", "out_of_range") and percent


@schemathesis.check
def positive_data_acceptance_beyond_schema(ctx, response, case):
    if response.status_code == 400:
        try:
            details = response.json()["error"]["details"]
        except Exception:
            details = None
        if details and all(beyond_schema(d, case) for d in details):
            return None
    return positive_data_acceptance(ctx, response, case)


@schemathesis.check
def negative_data_rejection_text_bodies(ctx, response, case):
    """The built-in `negative_data_rejection`, except on a text body (CSV) that schemathesis
    "violated" with a JSON value: over `text/csv` it can only send that value's text, which is a
    string as valid as any other."""
    media_type = case.media_type or ""
    if media_type.startswith("text/") and not isinstance(case.body, (str, bytes)):
        return None
    return negative_data_rejection(ctx, response, case)


def _integers(values):
    """Integers in a URL are written without a fraction: JSON Schema counts 223.0 as an
    integer, and hypothesis may generate it, but `/api/variants/223.0` is not how a client writes
    the id 223 (bodies are JSON, where the server does read 223.0 as 223)."""
    if not isinstance(values, dict):
        return values
    return {
        k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in values.items()
    }


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    return _integers(path_parameters)


@schemathesis.hook
def map_query(ctx, query):
    return _integers(query)
