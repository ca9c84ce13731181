//! PDF receipts for paid orders (`GET /api/orders/{id}/invoice`).
//!
//! The document is drawn with `pdf-writer` in Helvetica, one of the 14 standard fonts every PDF
//! reader ships, so nothing is embedded and a receipt stays a few kilobytes. Text is encoded as
//! WinAnsi, which covers Spanish; anything outside it prints as `?`.

use chrono::{DateTime, Utc};
use pdf_writer::{Content, Date, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::actor::RequestCtx;
use crate::entities::order::{self, OrderStatus};
use crate::entities::{order_item, payment};
use crate::error::{AppError, AppResult};
use crate::services::commerce::orders;
use crate::state::AppState;

/// Everything a receipt prints, gathered before drawing.
pub struct Receipt<'a> {
    pub store_name: &'a str,
    pub order: &'a order::Model,
    pub items: &'a [order_item::Model],
    pub paid_at: Option<DateTime<Utc>>,
    pub provider_txn_id: Option<&'a str>,
}

/// The receipt of an order the caller may see, once it is paid (paid, shipped or delivered).
pub async fn for_order(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<Vec<u8>> {
    let o = orders::visible(&st.db, ctx, id).await?;
    if !matches!(
        o.status,
        OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered
    ) {
        return Err(AppError::conflict_field(
            "status",
            "not_paid",
            format!(
                "Order {} is {}: a receipt exists once it is paid",
                o.id,
                o.status.as_str()
            ),
        ));
    }
    pdf_of(st, &o).await
}

/// The receipt PDF of order `o` (its caller has checked who may have it and that it is paid).
pub async fn pdf_of(st: &AppState, o: &order::Model) -> AppResult<Vec<u8>> {
    let items = order_item::Entity::find()
        .filter(order_item::Column::OrderId.eq(o.id))
        .order_by_asc(order_item::Column::Id)
        .all(&st.db)
        .await?;
    let paid = payment::Entity::find()
        .filter(payment::Column::OrderId.eq(o.id))
        .filter(payment::Column::Status.eq(crate::entities::payment::PaymentStatus::Paid))
        .order_by_desc(payment::Column::Id)
        .one(&st.db)
        .await?;
    Ok(render(&Receipt {
        store_name: &st.config.store.name,
        order: o,
        items: &items,
        paid_at: paid.as_ref().map(|p| p.updated_at),
        provider_txn_id: paid.as_ref().map(|p| p.provider_txn_id.as_str()),
    }))
}

/// Whole pesos with Chilean thousands separators: `$12.990`.
pub fn clp(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 2);
    if amount < 0 {
        out.push('-');
    }
    out.push('$');
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// WinAnsi bytes of `s` (Latin-1 range kept, anything else `?`).
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c as u32 {
            0x20..=0x7e | 0xa0..=0xff => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

/// Cuts `s` to at most `max` characters, marking the cut.
fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(3)).collect();
        t.push_str("...");
        t
    }
}

fn pdf_date(t: DateTime<Utc>) -> Date {
    use chrono::{Datelike, Timelike};
    Date::new(t.year().clamp(0, 9999) as u16)
        .month(t.month() as u8)
        .day(t.day() as u8)
        .hour(t.hour() as u8)
        .minute(t.minute() as u8)
        .second(t.second() as u8)
        .utc_offset_hour(0)
}

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;
const LINE: f32 = 16.0;
const REGULAR: Name = Name(b"F1");
const BOLD: Name = Name(b"F2");

/// A text cursor that adds pages as lines run out.
struct Writer {
    pages: Vec<Content>,
    y: f32,
}

impl Writer {
    fn new() -> Self {
        Writer {
            pages: vec![Content::new()],
            y: PAGE_H - MARGIN,
        }
    }

    fn page(&mut self) -> &mut Content {
        self.pages.last_mut().expect("a page")
    }

    /// Moves down by `dy`, starting a new page when the bottom margin is reached.
    fn advance(&mut self, dy: f32) {
        self.y -= dy;
        if self.y < MARGIN {
            self.pages.push(Content::new());
            self.y = PAGE_H - MARGIN - dy;
        }
    }

    fn text(&mut self, x: f32, font: Name, size: f32, s: &str) {
        let y = self.y;
        let bytes = win_ansi(s);
        let c = self.page();
        c.begin_text();
        c.set_font(font, size);
        c.next_line(x, y);
        c.show(Str(&bytes));
        c.end_text();
    }

    /// Right-aligned at `right` (Helvetica digits are 0.556 em wide; close enough for figures).
    fn text_right(&mut self, right: f32, font: Name, size: f32, s: &str) {
        let width = s.chars().count() as f32 * size * 0.556;
        self.text(right - width, font, size, s);
    }

    fn rule(&mut self) {
        let y = self.y + LINE * 0.6;
        let c = self.page();
        c.set_line_width(0.5);
        c.move_to(MARGIN, y);
        c.line_to(PAGE_W - MARGIN, y);
        c.stroke();
    }
}

/// Draws the receipt. Pure: the same receipt always yields the same bytes.
pub fn render(r: &Receipt<'_>) -> Vec<u8> {
    let o = r.order;
    let mut w = Writer::new();
    let right = PAGE_W - MARGIN;

    w.text(MARGIN, BOLD, 20.0, r.store_name);
    w.advance(LINE * 1.8);
    w.text(
        MARGIN,
        BOLD,
        14.0,
        &format!("Comprobante de pago - Pedido #{}", o.id),
    );
    w.advance(LINE * 1.5);
    let issued = o.created_at.format("%Y-%m-%d %H:%M UTC").to_string();
    w.text(
        MARGIN,
        REGULAR,
        10.0,
        &format!("Fecha del pedido: {issued}"),
    );
    w.advance(LINE);
    if let Some(paid_at) = r.paid_at {
        let paid = paid_at.format("%Y-%m-%d %H:%M UTC").to_string();
        w.text(MARGIN, REGULAR, 10.0, &format!("Fecha de pago: {paid}"));
        w.advance(LINE);
    }
    w.text(
        MARGIN,
        REGULAR,
        10.0,
        &format!("Estado: {}", o.status.as_str()),
    );
    w.advance(LINE);
    let provider = o.payment_provider.as_deref().unwrap_or("-");
    w.text(MARGIN, REGULAR, 10.0, &format!("Medio de pago: {provider}"));
    w.advance(LINE);
    let reference = o.payment_ref.as_deref().unwrap_or("-");
    w.text(
        MARGIN,
        REGULAR,
        10.0,
        &format!("Referencia de pago: {reference}"),
    );
    w.advance(LINE);
    if let Some(txn) = r.provider_txn_id {
        w.text(
            MARGIN,
            REGULAR,
            10.0,
            &format!("Transacción: {}", fit(txn, 70)),
        );
        w.advance(LINE);
    }
    w.advance(LINE);

    let qty_x = 340.0;
    let unit_right = 445.0;
    w.text(MARGIN, BOLD, 10.0, "Producto");
    w.text(qty_x, BOLD, 10.0, "Cant.");
    w.text_right(unit_right, BOLD, 10.0, "Precio");
    w.text_right(right, BOLD, 10.0, "Total");
    w.advance(LINE);
    w.rule();
    for item in r.items {
        let name = if item.option_label.is_empty() {
            item.product_name.clone()
        } else {
            format!("{} ({})", item.product_name, item.option_label)
        };
        w.text(MARGIN, REGULAR, 10.0, &fit(&name, 52));
        w.text(qty_x, REGULAR, 10.0, &item.quantity.to_string());
        w.text_right(unit_right, REGULAR, 10.0, &clp(item.unit_price_cents));
        w.text_right(right, REGULAR, 10.0, &clp(item.line_total_cents));
        w.advance(LINE);
    }
    w.rule();
    let label_x = 340.0;
    let total_row = |w: &mut Writer, label: &str, amount: String, font: Name| {
        w.text(label_x, font, 10.0, label);
        w.text_right(right, font, 10.0, &amount);
        w.advance(LINE);
    };
    total_row(&mut w, "Subtotal", clp(o.subtotal_cents), REGULAR);
    if o.discount_cents > 0 {
        total_row(&mut w, "Descuento", clp(-o.discount_cents), REGULAR);
    }
    total_row(
        &mut w,
        &format!("Despacho ({})", o.shipping_method.code()),
        clp(o.shipping_price_cents),
        REGULAR,
    );
    total_row(&mut w, "Total", clp(o.total_cents), BOLD);
    w.advance(LINE);
    w.text(
        MARGIN,
        REGULAR,
        8.0,
        "Montos en pesos chilenos (CLP). Este comprobante no reemplaza la boleta electrónica.",
    );

    let mut pdf = Pdf::new();
    let catalog_id = Ref::new(1);
    let tree_id = Ref::new(2);
    let regular_id = Ref::new(3);
    let bold_id = Ref::new(4);
    let info_id = Ref::new(5);
    let first_page = 6;
    let page_ids: Vec<Ref> = (0..w.pages.len())
        .map(|i| Ref::new(first_page + 2 * i as i32))
        .collect();

    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids(page_ids.iter().copied())
        .count(page_ids.len() as i32);
    for (font_id, base) in [(regular_id, "Helvetica"), (bold_id, "Helvetica-Bold")] {
        pdf.type1_font(font_id)
            .base_font(Name(base.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let title = format!("{} - Pedido #{}", r.store_name, o.id);
    pdf.document_info(info_id)
        .title(TextStr(&title))
        .producer(TextStr("dispensary"))
        .creation_date(pdf_date(r.paid_at.unwrap_or(o.created_at)));
    for (i, content) in w.pages.into_iter().enumerate() {
        let page_id = page_ids[i];
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree_id);
        page.contents(content_id);
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts.pair(REGULAR, regular_id);
        fonts.pair(BOLD, bold_id);
        fonts.finish();
        resources.finish();
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pesos_use_chilean_separators() {
        assert_eq!(clp(0), "$0");
        assert_eq!(clp(990), "$990");
        assert_eq!(clp(12_990), "$12.990");
        assert_eq!(clp(1_234_567), "$1.234.567");
        assert_eq!(clp(-5_000), "-$5.000");
    }

    #[test]
    fn spanish_text_is_win_ansi() {
        assert_eq!(win_ansi("Año ñandú"), b"A\xf1o \xf1and\xfa".to_vec());
        assert_eq!(win_ansi("a→b"), b"a?b".to_vec());
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(fit("abcdef", 10), "abcdef");
        assert_eq!(fit("abcdefghijkl", 8), "abcde...");
    }
}
