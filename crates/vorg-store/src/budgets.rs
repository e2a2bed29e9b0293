//! The budget ledger: spend per budget and period, charged atomically.
//!
//! A call first *reserves* its worst-case cost on every budget that applies, in one
//! transaction that refuses the lot if any budget would pass its limit; when the call ends
//! it *settles*: the reservation is released and the real cost charged. Concurrent calls
//! therefore cannot overshoot a limit together (each reservation row update is serialised
//! by the row lock on PostgreSQL, by the single writer on SQLite).

use serde_json::json;
use vorg_domain::BudgetScope;

use crate::BeginWrite;
use crate::{DEFAULT_ORG, Result, Store, events::insert_event, notify::Notice, with_pool};

/// One budget a call is charged to, with its limit in this period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetKey {
    pub scope: BudgetScope,
    /// Who within the scope: `default`, an e-mail, a persona id, a token id, a run id.
    pub subject: String,
    /// `2026-11` (monthly), `2026-11-29` (daily) or `all`.
    pub period: String,
    pub limit_micro_usd: i64,
}

/// What a budget holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetBalance {
    pub spent_micro_usd: i64,
    pub reserved_micro_usd: i64,
}

/// A reservation that did not fit: the first budget (index into the keys) that refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetRefusal {
    pub index: usize,
    pub balance: BudgetBalance,
}

/// A budget that crossed its warning share with this charge (reported once per period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetWarning {
    pub index: usize,
    pub spent_micro_usd: i64,
}

impl Store {
    /// Reserves `amount` on every budget of `keys`, or on none: refused when
    /// spent + reserved + amount would exceed a limit.
    pub async fn reserve_budget(
        &self,
        keys: &[BudgetKey],
        amount: i64,
    ) -> Result<Result<(), BudgetRefusal>> {
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        // One lock order for every transaction: no deadlocks between concurrent calls.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|&a, &b| {
            let (ka, kb) = (&keys[a], &keys[b]);
            (ka.scope.as_str(), &ka.subject, &ka.period).cmp(&(
                kb.scope.as_str(),
                &kb.subject,
                &kb.period,
            ))
        });
        let _guard = self.hot_write().await;
        let outcome = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let mut refused = None;
            for &i in &order {
                let k = &keys[i];
                // One statement per budget: a new row takes the reservation (when it fits
                // the limit at all), an existing one only when it still fits.
                let fitted: Option<i64> = if amount > k.limit_micro_usd {
                    None
                } else {
                    sqlx::query_scalar(
                        "INSERT INTO budget_ledger (org_id, scope, subject, period, reserved_micro_usd) \
                         VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (org_id, scope, subject, period) DO UPDATE \
                         SET reserved_micro_usd = budget_ledger.reserved_micro_usd + excluded.reserved_micro_usd \
                         WHERE budget_ledger.spent_micro_usd + budget_ledger.reserved_micro_usd \
                           + excluded.reserved_micro_usd <= $6 \
                         RETURNING spent_micro_usd",
                    )
                    .bind(DEFAULT_ORG)
                    .bind(k.scope.as_str())
                    .bind(&k.subject)
                    .bind(&k.period)
                    .bind(amount)
                    .bind(k.limit_micro_usd)
                    .fetch_optional(&mut *tx)
                    .await?
                };
                if fitted.is_none() {
                    let balance: Option<(i64, i64)> = sqlx::query_as(
                        "SELECT spent_micro_usd, reserved_micro_usd FROM budget_ledger \
                         WHERE org_id = $1 AND scope = $2 AND subject = $3 AND period = $4",
                    )
                    .bind(DEFAULT_ORG)
                    .bind(k.scope.as_str())
                    .bind(&k.subject)
                    .bind(&k.period)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let (spent, reserved) = balance.unwrap_or_default();
                    refused = Some(BudgetRefusal {
                        index: i,
                        balance: BudgetBalance {
                            spent_micro_usd: spent,
                            reserved_micro_usd: reserved,
                        },
                    });
                    break;
                }
            }
            if refused.is_none() {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            refused
        });
        Ok(match outcome {
            None => Ok(()),
            Some(r) => Err(r),
        })
    }

    /// Releases a reservation of `reserved` and charges `actual` on every budget of `keys`.
    /// Budgets whose spend reaches `warn_permille`/1000 of their limit for the first time in
    /// the period get a `budget.warning` event (committed with the charge) and are returned.
    pub async fn settle_budget(
        &self,
        keys: &[BudgetKey],
        reserved: i64,
        actual: i64,
        warn_permille: i64,
    ) -> Result<Vec<BudgetWarning>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|&a, &b| {
            let (ka, kb) = (&keys[a], &keys[b]);
            (ka.scope.as_str(), &ka.subject, &ka.period).cmp(&(
                kb.scope.as_str(),
                &kb.subject,
                &kb.period,
            ))
        });
        let _guard = self.hot_write().await;
        let (warnings, events) = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let mut warnings = Vec::new();
            let mut events = Vec::new();
            for &i in &order {
                let k = &keys[i];
                let spent: Option<i64> = sqlx::query_scalar(
                    "UPDATE budget_ledger SET \
                     reserved_micro_usd = CASE WHEN reserved_micro_usd > $5 \
                       THEN reserved_micro_usd - $5 ELSE 0 END, \
                     spent_micro_usd = spent_micro_usd + $6 \
                     WHERE org_id = $1 AND scope = $2 AND subject = $3 AND period = $4 \
                     RETURNING spent_micro_usd",
                )
                .bind(DEFAULT_ORG)
                .bind(k.scope.as_str())
                .bind(&k.subject)
                .bind(&k.period)
                .bind(reserved)
                .bind(actual)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(spent) = spent else { continue };
                // Heading past the limit by month end: a `budget.forecast` once per period.
                let projected =
                    vorg_domain::money::forecast_micro(spent, &k.period, chrono::Utc::now());
                if let Some(projected) = projected
                    && actual > 0
                    && spent < k.limit_micro_usd
                    && projected > k.limit_micro_usd
                {
                    let key = format!(
                        "budget.forecast:{}:{}:{}",
                        k.scope.as_str(),
                        k.subject,
                        k.period
                    );
                    let first = sqlx::query(
                        "INSERT INTO alert_marks (key, created_at) VALUES ($1, $2) \
                         ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(&key)
                    .bind(chrono::Utc::now())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    if first {
                        let data = json!({
                            "scope": k.scope, "subject": k.subject, "period": k.period,
                            "limit_micro_usd": k.limit_micro_usd, "spent_micro_usd": spent,
                            "projected_micro_usd": projected,
                        });
                        let event =
                            insert_event!(self.db, tx, "budget.forecast", None::<i64>, &data);
                        events.push(Notice::Event { id: event.id });
                    }
                }
                let crossed = i128::from(spent) * 1000
                    >= i128::from(k.limit_micro_usd) * i128::from(warn_permille);
                if !crossed || actual == 0 {
                    continue;
                }
                let first = sqlx::query(
                    "UPDATE budget_ledger SET warned = TRUE WHERE org_id = $1 AND scope = $2 \
                     AND subject = $3 AND period = $4 AND warned = FALSE",
                )
                .bind(DEFAULT_ORG)
                .bind(k.scope.as_str())
                .bind(&k.subject)
                .bind(&k.period)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if first {
                    let data = json!({
                        "scope": k.scope,
                        "subject": k.subject,
                        "period": k.period,
                        "limit_micro_usd": k.limit_micro_usd,
                        "spent_micro_usd": spent,
                        "warn_permille": warn_permille,
                    });
                    let event = insert_event!(self.db, tx, "budget.warning", None::<i64>, &data);
                    events.push(Notice::Event { id: event.id });
                    warnings.push(BudgetWarning {
                        index: i,
                        spent_micro_usd: spent,
                    });
                }
            }
            tx.commit().await?;
            (warnings, events)
        });
        self.local_notify(&events);
        Ok(warnings)
    }

    /// What each budget of `keys` holds now (zero for budgets never charged).
    pub async fn budget_balances(&self, keys: &[BudgetKey]) -> Result<Vec<BudgetBalance>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let row: Option<(i64, i64)> = with_pool!(self, |p| sqlx::query_as(
                "SELECT spent_micro_usd, reserved_micro_usd FROM budget_ledger \
                 WHERE org_id = $1 AND scope = $2 AND subject = $3 AND period = $4"
            )
            .bind(DEFAULT_ORG)
            .bind(k.scope.as_str())
            .bind(&k.subject)
            .bind(&k.period)
            .fetch_optional(p)
            .await)?;
            let (spent, reserved) = row.unwrap_or_default();
            out.push(BudgetBalance {
                spent_micro_usd: spent,
                reserved_micro_usd: reserved,
            });
        }
        Ok(out)
    }
}
