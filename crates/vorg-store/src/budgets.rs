//! The budget ledger: spend per budget and period, and the headroom leases that let each
//! process admit calls without a database round trip.
//!
//! A process *leases* a slice of a budget (the ledger's `reserved_micro_usd` grows by it, only
//! while spent + reserved stays within the limit) and admits calls against the slice in
//! memory. When calls end, their usage rows are written in one transaction that also charges
//! each row's cost to its budgets: spend grows, the lease and the reservation shrink by the
//! same amount. So, whatever the number of processes:
//! - `reserved_micro_usd` is the sum of the budget's live leases, and
//! - `spent_micro_usd` is the sum of the costs of the usage rows charged to the budget,
//!
//! which [`Store::check_budgets`] verifies. A lease that is not renewed expires and is reaped:
//! a process killed with headroom in hand holds it for at most the lease's time to live.

use std::collections::HashMap;

use vorg_domain::BudgetScope;

use crate::BeginWrite;
use crate::{DEFAULT_ORG, Result, Store, with_pool};

/// One budget a call is charged to, with its limit in this period.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// A budget that refused: the index of its key among a call's keys, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetRefusal {
    pub index: usize,
    pub balance: BudgetBalance,
}

/// A slice of a budget held by one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    /// What this grant added to the lease.
    pub granted_micro_usd: i64,
}

/// What a usage row's cost is charged to: each budget, with the lease its call was admitted
/// against (`None`: no lease, the spend is charged without touching a reservation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCharge {
    pub budgets: Vec<(BudgetKey, Option<i64>)>,
    /// Share of a budget (thousandths) at which a `budget.warning` event is emitted.
    pub warn_permille: i64,
}

impl UsageCharge {
    /// The `budgets` column: `[[scope, subject, period], ...]`.
    pub(crate) fn column(&self) -> String {
        let keys: Vec<[&str; 3]> = self
            .budgets
            .iter()
            .map(|(k, _)| [k.scope.as_str(), k.subject.as_str(), k.period.as_str()])
            .collect();
        serde_json::to_string(&keys).unwrap_or_else(|_| "[]".to_owned())
    }
}

/// One budget as [`Store::check_budgets`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetCheck {
    pub scope: String,
    pub subject: String,
    pub period: String,
    pub spent_micro_usd: i64,
    /// The sum of the costs of the usage rows charged to it.
    pub usage_micro_usd: i64,
    pub reserved_micro_usd: i64,
    /// The sum of its live leases.
    pub leased_micro_usd: i64,
}

impl BudgetCheck {
    pub fn balanced(&self) -> bool {
        self.spent_micro_usd == self.usage_micro_usd
            && self.reserved_micro_usd == self.leased_micro_usd
    }
}

/// Charges `$cost` (the sum of some usage rows' costs) to budget `$key` inside `$tx`, drawing
/// on lease `$lease` when it still holds that much; emits the warning and forecast events the
/// charge crosses into `$events`.
macro_rules! charge_in_tx {
    ($store:expr, $tx:expr, $key:expr, $lease:expr, $cost:expr, $warn_permille:expr,
     $events:expr) => {{
        let (k, cost, warn_permille): (&$crate::BudgetKey, i64, i64) = ($key, $cost, $warn_permille);
        // What the lease still holds pays first (all of the cost, unless the call cost more
        // than its worst case); the rest is spend beyond any reservation.
        let taken = match $lease {
            Some(lease) if cost > 0 => {
                let have: Option<i64> = sqlx::query_scalar(
                    "SELECT amount_micro_usd FROM budget_leases WHERE id = $1",
                )
                .bind(lease)
                .fetch_optional(&mut *$tx)
                .await?;
                let take = cost.min(have.unwrap_or(0));
                let drew = take > 0
                    && sqlx::query(
                        "UPDATE budget_leases SET amount_micro_usd = amount_micro_usd - $2 \
                         WHERE id = $1 AND amount_micro_usd >= $2",
                    )
                    .bind(lease)
                    .bind(take)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected()
                        == 1;
                if drew { take } else { 0 }
            }
            _ => 0,
        };
        let spent: i64 = sqlx::query_scalar(
            "INSERT INTO budget_ledger (org_id, scope, subject, period, spent_micro_usd) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (org_id, scope, subject, period) DO UPDATE SET \
             spent_micro_usd = budget_ledger.spent_micro_usd + excluded.spent_micro_usd, \
             reserved_micro_usd = CASE WHEN budget_ledger.reserved_micro_usd > $6 \
               THEN budget_ledger.reserved_micro_usd - $6 ELSE 0 END \
             RETURNING spent_micro_usd",
        )
        .bind($crate::DEFAULT_ORG)
        .bind(k.scope.as_str())
        .bind(&k.subject)
        .bind(&k.period)
        .bind(cost)
        .bind(taken)
        .fetch_one(&mut *$tx)
        .await?;
        // Heading past the limit by month end: a `budget.forecast` once per period.
        let projected = vorg_domain::money::forecast_micro(spent, &k.period, chrono::Utc::now());
        if let Some(projected) = projected
            && cost > 0
            && spent < k.limit_micro_usd
            && projected > k.limit_micro_usd
        {
            let mark = format!(
                "budget.forecast:{}:{}:{}",
                k.scope.as_str(),
                k.subject,
                k.period
            );
            let first = sqlx::query(
                "INSERT INTO alert_marks (key, created_at) VALUES ($1, $2) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(&mark)
            .bind(chrono::Utc::now())
            .execute(&mut *$tx)
            .await?
            .rows_affected()
                == 1;
            if first {
                let data = serde_json::json!({
                    "scope": k.scope, "subject": k.subject, "period": k.period,
                    "limit_micro_usd": k.limit_micro_usd, "spent_micro_usd": spent,
                    "projected_micro_usd": projected,
                });
                let event = $crate::events::insert_event!($store.db, $tx, "budget.forecast", None::<i64>, &data);
                $events.push($crate::notify::Notice::Event { id: event.id });
            }
        }
        let crossed = i128::from(spent) * 1000
            >= i128::from(k.limit_micro_usd) * i128::from(warn_permille);
        if crossed && cost > 0 {
            let first = sqlx::query(
                "UPDATE budget_ledger SET warned = TRUE WHERE org_id = $1 AND scope = $2 \
                 AND subject = $3 AND period = $4 AND warned = FALSE",
            )
            .bind($crate::DEFAULT_ORG)
            .bind(k.scope.as_str())
            .bind(&k.subject)
            .bind(&k.period)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
                == 1;
            if first {
                let data = serde_json::json!({
                    "scope": k.scope,
                    "subject": k.subject,
                    "period": k.period,
                    "limit_micro_usd": k.limit_micro_usd,
                    "spent_micro_usd": spent,
                    "warn_permille": warn_permille,
                });
                let event = $crate::events::insert_event!($store.db, $tx, "budget.warning", None::<i64>, &data);
                $events.push($crate::notify::Notice::Event { id: event.id });
            }
        }
    }};
}
pub(crate) use charge_in_tx;

/// The charges of a batch of usage rows, summed per budget and lease (one ledger update
/// each), in one lock order for every transaction (no deadlocks between processes).
pub(crate) fn sum_charges<'a>(
    rows: impl Iterator<Item = (&'a UsageCharge, i64)>,
) -> Vec<(&'a BudgetKey, Option<i64>, i64, i64)> {
    let mut sums: HashMap<(&BudgetKey, Option<i64>), (i64, i64)> = HashMap::new();
    for (charge, cost) in rows {
        for (key, lease) in &charge.budgets {
            let e = sums
                .entry((key, *lease))
                .or_insert((0, charge.warn_permille));
            e.0 = e.0.saturating_add(cost);
        }
    }
    let mut out: Vec<_> = sums
        .into_iter()
        .map(|((k, l), (cost, warn))| (k, l, cost, warn))
        .collect();
    out.sort_by(|a, b| {
        (a.0.scope.as_str(), &a.0.subject, &a.0.period, a.1).cmp(&(
            b.0.scope.as_str(),
            &b.0.subject,
            &b.0.period,
            b.1,
        ))
    });
    out
}

/// Gives `$amount` of reservation back to budget (`$scope`, `$subject`, `$period`) inside
/// `$tx` (never below zero): what a lease that shrank or ended held.
macro_rules! unreserve_in_tx {
    ($tx:expr, $scope:expr, $subject:expr, $period:expr, $amount:expr) => {
        sqlx::query(
            "UPDATE budget_ledger SET reserved_micro_usd = CASE \
             WHEN reserved_micro_usd > $5 THEN reserved_micro_usd - $5 ELSE 0 END \
             WHERE org_id = $1 AND scope = $2 AND subject = $3 AND period = $4",
        )
        .bind(DEFAULT_ORG)
        .bind($scope)
        .bind($subject)
        .bind($period)
        .bind($amount)
        .execute(&mut *$tx)
        .await?
    };
}

impl Store {
    /// Adds between `min` and `want` to lease `lease` of `holder` on budget `key` (a new
    /// lease when `lease` is `None` or was reaped), only as far as the budget's limit allows:
    /// refused, with what the budget holds, when not even `min` fits.
    pub async fn lease_budget(
        &self,
        key: &BudgetKey,
        lease: Option<i64>,
        (min, want): (i64, i64),
        holder: &str,
        expires_ms: i64,
    ) -> Result<std::result::Result<Lease, BudgetBalance>> {
        let _guard = self.hot_write().await;
        let outcome = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            // Every writer locks a lease before its ledger row (no deadlock with the usage
            // writer charging this lease): the lease first, renewed.
            let lease: Option<i64> =
                match lease {
                    Some(id) => sqlx::query_scalar(
                        "UPDATE budget_leases SET expires_ms = $3 WHERE id = $1 AND holder = $2 \
                     RETURNING id",
                    )
                    .bind(id)
                    .bind(holder)
                    .bind(expires_ms)
                    .fetch_optional(&mut *tx)
                    .await?,
                    None => None,
                };
            sqlx::query(
                "INSERT INTO budget_ledger (org_id, scope, subject, period) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (org_id, scope, subject, period) DO NOTHING",
            )
            .bind(DEFAULT_ORG)
            .bind(key.scope.as_str())
            .bind(&key.subject)
            .bind(&key.period)
            .execute(&mut *tx)
            .await?;
            let mut granted = None;
            let mut balance = BudgetBalance::default();
            // Another process may lease between the read and the update; the update's guard
            // refuses then, and the next round reads the new balance.
            for _ in 0..8 {
                let (spent, reserved): (i64, i64) = sqlx::query_as(
                    "SELECT spent_micro_usd, reserved_micro_usd FROM budget_ledger \
                     WHERE org_id = $1 AND scope = $2 AND subject = $3 AND period = $4",
                )
                .bind(DEFAULT_ORG)
                .bind(key.scope.as_str())
                .bind(&key.subject)
                .bind(&key.period)
                .fetch_one(&mut *tx)
                .await?;
                balance = BudgetBalance {
                    spent_micro_usd: spent,
                    reserved_micro_usd: reserved,
                };
                let free = key.limit_micro_usd - spent - reserved;
                if free < min || min > key.limit_micro_usd {
                    break;
                }
                // A quarter of what is free at most: slices shrink near the limit.
                let grant = want.min(free / 4).max(min);
                let fitted = sqlx::query(
                    "UPDATE budget_ledger SET reserved_micro_usd = reserved_micro_usd + $5 \
                     WHERE org_id = $1 AND scope = $2 AND subject = $3 AND period = $4 \
                     AND spent_micro_usd + reserved_micro_usd + $5 <= $6",
                )
                .bind(DEFAULT_ORG)
                .bind(key.scope.as_str())
                .bind(&key.subject)
                .bind(&key.period)
                .bind(grant)
                .bind(key.limit_micro_usd)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if fitted {
                    granted = Some(grant);
                    break;
                }
            }
            match granted {
                None => {
                    tx.rollback().await?;
                    Err(balance)
                }
                Some(grant) => {
                    let grown: Option<i64> = match lease {
                        Some(id) => sqlx::query_scalar(
                            "UPDATE budget_leases SET amount_micro_usd = amount_micro_usd + $3, \
                             expires_ms = $4 WHERE id = $1 AND holder = $2 RETURNING id",
                        )
                        .bind(id)
                        .bind(holder)
                        .bind(grant)
                        .bind(expires_ms)
                        .fetch_optional(&mut *tx)
                        .await?,
                        None => None,
                    };
                    let id = match grown {
                        Some(id) => id,
                        None => sqlx::query_scalar(
                            "INSERT INTO budget_leases (org_id, scope, subject, period, holder, \
                                 amount_micro_usd, expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                                 RETURNING id",
                        )
                        .bind(DEFAULT_ORG)
                        .bind(key.scope.as_str())
                        .bind(&key.subject)
                        .bind(&key.period)
                        .bind(holder)
                        .bind(grant)
                        .bind(expires_ms)
                        .fetch_one(&mut *tx)
                        .await?,
                    };
                    tx.commit().await?;
                    Ok(Lease {
                        id,
                        granted_micro_usd: grant,
                    })
                }
            }
        });
        Ok(outcome)
    }

    /// Gives `amount` of lease `id` on `key` back to the budget (deleting the lease when
    /// nothing is left). False when the lease is gone or holds less.
    pub async fn shrink_lease(&self, key: &BudgetKey, id: i64, amount: i64) -> Result<bool> {
        let _guard = self.hot_write().await;
        let shrunk = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let left: Option<i64> = sqlx::query_scalar(
                "UPDATE budget_leases SET amount_micro_usd = amount_micro_usd - $2 \
                 WHERE id = $1 AND amount_micro_usd >= $2 RETURNING amount_micro_usd",
            )
            .bind(id)
            .bind(amount)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(left) = left {
                unreserve_in_tx!(tx, key.scope.as_str(), &key.subject, &key.period, amount);
                if left == 0 {
                    sqlx::query("DELETE FROM budget_leases WHERE id = $1 AND amount_micro_usd = 0")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            left.is_some()
        });
        Ok(shrunk)
    }

    /// Ends lease `id` now: what it holds goes back to its budget.
    pub async fn end_lease(&self, id: i64) -> Result<()> {
        let _guard = self.hot_write().await;
        with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let gone: Option<(String, String, String, i64)> = sqlx::query_as(
                "DELETE FROM budget_leases WHERE id = $1 \
                 RETURNING scope, subject, period, amount_micro_usd",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((scope, subject, period, amount)) = gone {
                unreserve_in_tx!(tx, scope, subject, period, amount);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Moves the expiry of every lease `holder` holds to `expires_ms`; returns the ids of
    /// those still live (a lease missing from the answer was reaped).
    pub async fn renew_leases(&self, holder: &str, expires_ms: i64) -> Result<Vec<i64>> {
        let ids = with_pool!(self, |p| sqlx::query_scalar(
            "UPDATE budget_leases SET expires_ms = $2 WHERE holder = $1 RETURNING id"
        )
        .bind(holder)
        .bind(expires_ms)
        .fetch_all(p)
        .await)?;
        Ok(ids)
    }

    /// Ends the leases that expired before `now_ms` (or, with `holder`, every lease of that
    /// holder): their headroom goes back to their budgets. Returns how many ended.
    pub async fn reap_leases(&self, now_ms: i64, holder: Option<&str>) -> Result<usize> {
        let _guard = self.hot_write().await;
        let ended = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let mut gone: Vec<(String, String, String, i64)> = sqlx::query_as(
                "DELETE FROM budget_leases WHERE expires_ms < $1 OR holder = $2 \
                 RETURNING scope, subject, period, amount_micro_usd",
            )
            .bind(now_ms)
            .bind(holder.unwrap_or(""))
            .fetch_all(&mut *tx)
            .await?;
            gone.sort();
            for (scope, subject, period, amount) in &gone {
                unreserve_in_tx!(tx, scope, subject, period, amount);
            }
            tx.commit().await?;
            gone.len()
        });
        Ok(ended)
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

    /// Every budget of the ledger beside what backs it: its spend beside the costs of the
    /// usage rows charged to it, its reservation beside its live leases.
    pub async fn check_budgets(&self) -> Result<Vec<BudgetCheck>> {
        type Key = (String, String, String);
        let ledger: Vec<(String, String, String, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT scope, subject, period, spent_micro_usd, reserved_micro_usd \
                 FROM budget_ledger WHERE org_id = $1 ORDER BY scope, subject, period",
            )
            .bind(DEFAULT_ORG)
            .fetch_all(p)
            .await
        })?;
        let leases: Vec<(String, String, String, i64)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT scope, subject, period, amount_micro_usd FROM budget_leases \
                 WHERE org_id = $1",
            )
            .bind(DEFAULT_ORG)
            .fetch_all(p)
            .await
        })?;
        let mut leased: HashMap<Key, i64> = HashMap::new();
        for (scope, subject, period, amount) in leases {
            *leased.entry((scope, subject, period)).or_default() += amount;
        }
        let mut used: HashMap<Key, i64> = HashMap::new();
        let mut after = 0i64;
        loop {
            let page: Vec<(i64, String, i64)> = with_pool!(self, |p| {
                sqlx::query_as(
                    "SELECT id, budgets, cost_micro_usd FROM usage_events \
                     WHERE org_id = $1 AND id > $2 AND budgets IS NOT NULL ORDER BY id LIMIT 5000",
                )
                .bind(DEFAULT_ORG)
                .bind(after)
                .fetch_all(p)
                .await
            })?;
            let Some(last) = page.last() else { break };
            after = last.0;
            for (_, budgets, cost) in page {
                let keys: Vec<[String; 3]> = serde_json::from_str(&budgets).unwrap_or_default();
                for [scope, subject, period] in keys {
                    *used.entry((scope, subject, period)).or_default() += cost;
                }
            }
        }
        Ok(ledger
            .into_iter()
            .map(|(scope, subject, period, spent, reserved)| {
                let key = (scope, subject, period);
                let usage = used.get(&key).copied().unwrap_or(0);
                let leased = leased.get(&key).copied().unwrap_or(0);
                BudgetCheck {
                    scope: key.0,
                    subject: key.1,
                    period: key.2,
                    spent_micro_usd: spent,
                    usage_micro_usd: usage,
                    reserved_micro_usd: reserved,
                    leased_micro_usd: leased,
                }
            })
            .collect())
    }
}
