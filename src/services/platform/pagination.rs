//! Page arguments (spec §2): `page` ≥ 1 (default 1), `pageSize` 1–100 (default 20). Out of range is an error.

use sea_orm::sea_query::{Alias, Asterisk, Expr, Query, SelectStatement, SimpleExpr};
use sea_orm::{DbErr, QueryResult};

use crate::error::{AppError, AppResult, FieldIssue};

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u64,
    pub page_size: u64,
}

impl Page {
    pub fn parse(page: Option<i64>, page_size: Option<i64>) -> AppResult<Self> {
        let mut issues = Vec::new();
        let p = page.unwrap_or(1);
        if p < 1 {
            issues.push(FieldIssue::new("page", "out_of_range"));
        }
        let s = page_size.unwrap_or(DEFAULT_PAGE_SIZE as i64);
        if s < 1 || s > MAX_PAGE_SIZE as i64 {
            issues.push(FieldIssue::new("pageSize", "out_of_range"));
        }
        if !issues.is_empty() {
            return Err(AppError::invalid_fields(issues)
                .with_message("page must be ≥ 1 and pageSize between 1 and 100"));
        }
        Ok(Page {
            page: p as u64,
            page_size: s as u64,
        })
    }

    /// Rows to skip; capped at `i64::MAX` because the databases take a signed 64-bit OFFSET
    /// (past any table's end anyway: a page that far is empty).
    pub fn offset(&self) -> u64 {
        (self.page - 1)
            .saturating_mul(self.page_size)
            .min(i64::MAX as u64)
    }

    /// This page of an (ordered) query, and the total count of its rows, in one round trip (see
    /// [`Page::fetch_rows`]).
    pub async fn fetch<E, C>(
        &self,
        conn: &C,
        query: sea_orm::Select<E>,
    ) -> AppResult<(Vec<E::Model>, u64)>
    where
        E: sea_orm::EntityTrait,
        C: sea_orm::ConnectionTrait,
    {
        use sea_orm::{FromQueryResult, QueryTrait};
        self.fetch_rows(conn, query.into_query(), |row| {
            E::Model::from_query_result(row, "")
        })
        .await
    }

    /// This page of an (ordered) SELECT, each row read by `read`, and the total count of its rows,
    /// in one round trip: every row carries the total as an uncorrelated scalar subquery,
    /// `(SELECT COUNT(*) FROM (<the query, unordered>) counted)`, which SQLite and PostgreSQL
    /// evaluate once per statement. (A window count, `COUNT(*) OVER ()`, gives the same total,
    /// but it makes the database materialise and sort every matching row before LIMIT: on 1,000
    /// products, 5.6 ms a page on SQLite where the page alone takes 0.14 ms and this 0.36 ms.)
    /// A page past the end has no row to carry the total: only then does a second statement (a
    /// COUNT) give it; an empty first page is 0.
    pub async fn fetch_rows<T, C>(
        &self,
        conn: &C,
        query: SelectStatement,
        read: impl Fn(&QueryResult) -> Result<T, DbErr>,
    ) -> AppResult<(Vec<T>, u64)>
    where
        C: sea_orm::ConnectionTrait,
    {
        self.fetch_rows_knowing(conn, query, [], read, None).await
    }

    /// [`Page::fetch_rows`], with `page_columns` added to the page's rows only (not to what the
    /// total counts), and given the total when the caller already knows it (a total kept for the
    /// catalogue's generation): then the page alone is read.
    pub async fn fetch_rows_knowing<T, C>(
        &self,
        conn: &C,
        query: SelectStatement,
        page_columns: impl IntoIterator<Item = (SimpleExpr, Alias)>,
        read: impl Fn(&QueryResult) -> Result<T, DbErr>,
        known_total: Option<u64>,
    ) -> AppResult<(Vec<T>, u64)>
    where
        C: sea_orm::ConnectionTrait,
    {
        let mut paged = query.clone();
        for (expr, alias) in page_columns {
            paged.expr_as(expr, alias);
        }
        if known_total.is_none() {
            paged.expr_as(
                Expr::SubQuery(None, Box::new(count_statement(query.clone()).into())),
                Alias::new(TOTAL_COLUMN),
            );
        }
        paged.offset(self.offset()).limit(self.page_size);
        let rows = conn.query_all(&paged).await?;
        if let Some(total) = known_total {
            let items = rows.iter().map(read).collect::<Result<Vec<_>, _>>()?;
            return Ok((items, total));
        }
        let total = match rows.first() {
            Some(row) => row.try_get::<i64>("", TOTAL_COLUMN)?,
            None if self.offset() == 0 => 0,
            None => match conn.query_one(&count_statement(query)).await? {
                Some(row) => row.try_get_by_index(0)?,
                None => 0,
            },
        };
        let items = rows.iter().map(read).collect::<Result<Vec<_>, _>>()?;
        Ok((items, u64::try_from(total).unwrap_or_default()))
    }
}

/// The alias of the total's column (no table has a column of that name).
const TOTAL_COLUMN: &str = "page_total_rows";

/// `SELECT COUNT(*) FROM (<query, unordered>) AS counted`: the rows of `query`, as SeaORM's
/// `count` counts them (a derived table, so DISTINCT and GROUP BY count right; both databases
/// flatten it and compute no column the count does not need).
fn count_statement(mut query: SelectStatement) -> SelectStatement {
    use sea_orm::sea_query::ExprTrait as _;
    query.clear_order_by();
    Query::select()
        .expr(Expr::col(Asterisk).count())
        .from_subquery(query, Alias::new("counted"))
        .to_owned()
}

impl AppError {
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern and wraps it in `%...%`, lower-cased.
pub fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(
            Page::parse(None, None).unwrap(),
            Page {
                page: 1,
                page_size: 20
            }
        );
        assert!(Page::parse(Some(0), None).is_err());
        assert!(Page::parse(None, Some(0)).is_err());
        assert!(Page::parse(None, Some(101)).is_err());
        assert_eq!(Page::parse(Some(3), Some(100)).unwrap().offset(), 200);
        assert_eq!(
            Page::parse(Some(i64::MAX), Some(100)).unwrap().offset(),
            i64::MAX as u64
        );
    }

    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(like_pattern(" A_b%c "), "%a\\_b\\%c%");
    }
}
