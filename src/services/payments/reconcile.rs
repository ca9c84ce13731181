//! Reconciliation: asks the provider about every payment still `initiated` or `pending` and
//! applies the answer through the same code path as webhooks and returns (idempotent). This is
//! how a lost webhook or a browser that never came back is recovered. Run by
//! `dispensary reconcile` and periodically by the server (`RECONCILE_INTERVAL_SECONDS`).

use chrono::Duration;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::Applied;
use crate::actor::RequestCtx;
use crate::entities::payment::{self, PaymentStatus, Provider};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// By default payments younger than this are left alone: the buyer may still be at the
/// provider's page (a Webpay token lives about 5 minutes). `dispensary reconcile --min-age`
/// overrides it, e.g. right after an operator learns of a lost notification.
pub const MIN_AGE_SECONDS: i64 = 300;

#[derive(Debug, Clone)]
pub struct Scope {
    pub provider: Option<String>,
    /// How far back to look.
    pub since: Duration,
    /// Payments younger than this are counted as `too_young` and not asked about.
    pub min_age: Duration,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            provider: None,
            since: Duration::days(7),
            min_age: Duration::seconds(MIN_AGE_SECONDS),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Payments asked about (or skipped for their provider); the too-young ones are not counted.
    pub checked: u32,
    pub paid: u32,
    pub failed: u32,
    pub still_pending: u32,
    pub errors: u32,
    /// Providers without a status API here (the `test` provider).
    pub skipped: u32,
    /// Open payments in the window left alone because they are younger than the minimum age.
    pub too_young: u32,
}

impl Report {
    /// Payments whose provider answer changed them (paid, or failed for any reason).
    pub fn applied(&self) -> u32 {
        self.paid + self.failed
    }
}

impl std::fmt::Display for Report {
    /// The operator's report printed by `dispensary reconcile`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "checked        {}", self.checked)?;
        writeln!(
            f,
            "applied        {} (paid {}, failed {})",
            self.applied(),
            self.paid,
            self.failed
        )?;
        writeln!(f, "left pending   {}", self.still_pending)?;
        writeln!(f, "errors         {}", self.errors)?;
        writeln!(f, "too young      {}", self.too_young)?;
        write!(f, "no status API  {}", self.skipped)
    }
}

/// Parses `90s`, `15m`, `2h`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30m, 2h or 7d"))?;
    Ok(match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" | "" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(format!("{s:?} is not a duration like 30m, 2h or 7d")),
    })
}

pub async fn run(st: &AppState, scope: &Scope) -> AppResult<Report> {
    let now = st.clock.now();
    let mut q = payment::Entity::find()
        .filter(payment::Column::Status.is_in([PaymentStatus::Initiated, PaymentStatus::Pending]))
        .filter(payment::Column::CreatedAt.gte(now - scope.since))
        .order_by_asc(payment::Column::Id);
    if let Some(name) = scope.provider.as_deref() {
        let provider = Provider::parse(name).ok_or_else(|| {
            AppError::invalid(
                "provider",
                "invalid_value",
                "provider must be webpay, flow, mp or test",
            )
        })?;
        q = q.filter(payment::Column::Provider.eq(provider));
    }
    let ctx = RequestCtx::anonymous("reconcile".into(), std::net::Ipv4Addr::LOCALHOST.into());
    let mut report = Report::default();
    let youngest = now - scope.min_age;
    for p in q.all(&st.db).await? {
        if p.created_at > youngest {
            report.too_young += 1;
            continue;
        }
        report.checked += 1;
        let Some(applied) = p.provider.reconcile(st, &ctx, &p).await else {
            report.skipped += 1;
            continue;
        };
        match applied {
            Ok(Applied::Paid) => report.paid += 1,
            Ok(Applied::Failed | Applied::AmountMismatch | Applied::RefundRequired) => {
                report.failed += 1
            }
            Ok(Applied::Pending | Applied::Duplicate) => report.still_pending += 1,
            Err(e) => {
                report.errors += 1;
                tracing::warn!(paymentId = p.id, error = %e.message, "reconciliation failed");
            }
        }
    }
    if report.checked > 0 || report.too_young > 0 {
        tracing::info!(?report, "payments reconciled");
    }
    Ok(report)
}

/// The periodic `payments.reconcile` job (every `RECONCILE_INTERVAL_SECONDS`, once across
/// processes): every open payment old enough, as `dispensary reconcile` does by hand.
pub struct Reconcile;

impl crate::services::platform::jobs::Periodic for Reconcile {
    const KIND: &'static str = "payments.reconcile";
    type Context = AppState;

    async fn run(&self, st: &AppState) -> Result<(), crate::services::platform::jobs::JobError> {
        run(st, &Scope::default()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::minutes(15));
        assert_eq!(parse_duration("2h").unwrap(), Duration::hours(2));
        assert_eq!(parse_duration("7d").unwrap(), Duration::days(7));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5w").is_err());
    }
}
