//! Budgets at memory speed: this process's headroom leases.
//!
//! For each budget a call is charged to, the process holds a *slot*: a lease taken from the
//! database (a slice of the budget that no other process can spend) and, in memory, the part
//! of it not yet promised to a call in flight. Admitting a call takes its worst case from
//! every slot with an atomic subtraction; only when a slot runs short does the call wait for
//! the database, to grow the lease. When the call ends, what it did not spend goes back to
//! the slot at once and its cost is charged to the lease when its usage row is written.
//!
//! In the database a lease is headroom reserved on the budget's ledger row, so the sum of
//! spend and live leases never passes the limit, however many processes run. Slices are a
//! quarter of what is free at most, so they shrink near the limit; a process refused
//! because other processes hold the rest asks them (a notice) to give back what they are
//! not using, and tries again before it refuses. A keeper task renews this process's
//! leases, gives back headroom unused for a while, and reaps leases whose holder died.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_store::{BudgetBalance, BudgetKey, BudgetRefusal, Notice, Store, StoreError};

/// How leases are sized and kept.
#[derive(Debug, Clone, Copy)]
pub struct LeaseConfig {
    /// A lease not renewed for this long is reaped (its headroom goes back to the budget).
    pub ttl: Duration,
    /// Headroom unused for this long is given back.
    pub idle: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            ttl: Duration::from_secs(30),
            idle: Duration::from_secs(10),
        }
    }
}

/// This process's share of one budget.
#[derive(Debug)]
struct Slot {
    /// The lease in the database (0: none).
    lease: AtomicI64,
    /// Headroom in hand not promised to a call in flight (may go negative when a call
    /// cost more than its worst case).
    avail: AtomicI64,
    /// Calls in flight against this slot.
    inflight: AtomicI64,
    /// Until when (epoch ms) the lease is known to be live.
    expires_ms: AtomicI64,
    last_used_ms: AtomicI64,
    /// One grower at a time: callers short of headroom wait for one database round trip.
    grow: tokio::sync::Mutex<()>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            lease: AtomicI64::new(0),
            avail: AtomicI64::new(0),
            inflight: AtomicI64::new(0),
            expires_ms: AtomicI64::new(0),
            last_used_ms: AtomicI64::new(0),
            grow: tokio::sync::Mutex::new(()),
        }
    }

    /// Takes `need` from the headroom in hand, if the lease is live and holds it.
    fn try_take(&self, need: i64, now_ms: i64, margin_ms: i64) -> Option<i64> {
        let lease = self.lease.load(Ordering::Acquire);
        if lease == 0 || self.expires_ms.load(Ordering::Acquire) <= now_ms + margin_ms {
            return None;
        }
        let mut cur = self.avail.load(Ordering::Acquire);
        loop {
            if cur < need {
                return None;
            }
            match self.avail.compare_exchange_weak(
                cur,
                cur - need,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.inflight.fetch_add(1, Ordering::AcqRel);
                    self.last_used_ms.store(now_ms, Ordering::Release);
                    return Some(lease);
                }
                Err(seen) => cur = seen,
            }
        }
    }

    /// Takes every unpromised unit of headroom (for giving it back).
    fn take_all(&self) -> i64 {
        let mut cur = self.avail.load(Ordering::Acquire);
        loop {
            if cur <= 0 {
                return 0;
            }
            match self
                .avail
                .compare_exchange_weak(cur, 0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return cur,
                Err(seen) => cur = seen,
            }
        }
    }
}

/// A call's hold on one budget: what to give back and which lease to charge.
#[derive(Debug, Clone)]
pub struct Held {
    key: BudgetKey,
    slot: Arc<Slot>,
    lease: i64,
}

/// What a call holds on all its budgets: released by [`Ledger::release`].
#[derive(Debug, Clone)]
pub struct Hold {
    held: Vec<Held>,
    pub worst: i64,
}

impl Hold {
    /// The budgets and leases its cost is to be charged to.
    pub fn charged(&self) -> Vec<(BudgetKey, Option<i64>)> {
        self.held
            .iter()
            .map(|h| (h.key.clone(), Some(h.lease)))
            .collect()
    }
}

/// This process's leases on every budget it has admitted calls to.
#[derive(Debug)]
pub struct Ledger {
    store: Store,
    holder: String,
    config: LeaseConfig,
    slots: RwLock<HashMap<BudgetKey, Arc<Slot>>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A name for this process's leases: host, pid and a random tag.
fn holder_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

impl Ledger {
    pub fn new(store: Store, config: LeaseConfig) -> Self {
        Ledger {
            store,
            holder: holder_name(),
            config,
            slots: RwLock::default(),
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn margin_ms(&self) -> i64 {
        // A lease within a sixth of its life of expiring is renewed before it is used.
        i64::try_from(self.config.ttl.as_millis() / 6).unwrap_or(i64::MAX)
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.config.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    fn slot(&self, key: &BudgetKey) -> Arc<Slot> {
        if let Some(s) = self
            .slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return s.clone();
        }
        self.slots
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Slot::new()))
            .clone()
    }

    /// Holds `worst` on every budget of `keys`, or on none: refused (with the first budget
    /// that could not cover it) only when the budget as a whole cannot.
    pub async fn admit(
        &self,
        keys: &[BudgetKey],
        worst: i64,
    ) -> Result<Result<Hold, BudgetRefusal>, StoreError> {
        let mut held: Vec<Held> = Vec::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            let slot = self.slot(key);
            let taken = match slot.try_take(worst, now_ms(), self.margin_ms()) {
                Some(lease) => Ok(Ok(lease)),
                None => self.grow_and_take(key, &slot, worst).await,
            };
            match taken {
                Ok(Ok(lease)) => held.push(Held {
                    key: key.clone(),
                    slot,
                    lease,
                }),
                // Nothing is held unless everything is.
                Ok(Err(balance)) => {
                    self.give_back(&held, worst, 0);
                    return Ok(Err(BudgetRefusal { index, balance }));
                }
                Err(e) => {
                    self.give_back(&held, worst, 0);
                    return Err(e);
                }
            }
        }
        Ok(Ok(Hold { held, worst }))
    }

    /// The slow path: grows the slot's lease (one database round trip shared by every call
    /// waiting on this slot), then takes `need`.
    async fn grow_and_take(
        &self,
        key: &BudgetKey,
        slot: &Arc<Slot>,
        need: i64,
    ) -> Result<Result<i64, BudgetBalance>, StoreError> {
        let _one = slot.grow.lock().await;
        let mut pressed = 0u32;
        loop {
            let now = now_ms();
            if let Some(lease) = slot.try_take(need, now, self.margin_ms()) {
                return Ok(Ok(lease));
            }
            let lease = slot.lease.load(Ordering::Acquire);
            let in_hand = slot.avail.load(Ordering::Acquire).max(0);
            let live = lease != 0 && slot.expires_ms.load(Ordering::Acquire) > now;
            let short = if live { (need - in_hand).max(0) } else { need };
            // Slices: enough for many calls, and for a small budget a sixteenth of it; the
            // store caps a slice at a quarter of what is free, so slices shrink near the limit.
            let want = short
                .max(need.saturating_mul(32))
                .max(key.limit_micro_usd / 16);
            let expires = now + self.ttl_ms();
            match self
                .store
                .lease_budget(
                    key,
                    live.then_some(lease),
                    (short, want),
                    &self.holder,
                    expires,
                )
                .await?
            {
                Ok(granted) => {
                    if granted.id != lease || !live {
                        // A new lease (the old one was reaped, or there was none): what was
                        // in hand belonged to the old one.
                        slot.avail
                            .store(granted.granted_micro_usd, Ordering::Release);
                        slot.lease.store(granted.id, Ordering::Release);
                    } else {
                        slot.avail
                            .fetch_add(granted.granted_micro_usd, Ordering::AcqRel);
                    }
                    slot.expires_ms.store(expires, Ordering::Release);
                }
                Err(balance) => {
                    // Refused although the budget's spend leaves room: the rest is leased by
                    // other processes (or in flight here). Ask them to give back what they
                    // are not using, and try again a few times before refusing.
                    let room = key.limit_micro_usd - balance.spent_micro_usd;
                    if room < need || pressed >= 3 || !self.store.is_shared() {
                        return Ok(Err(balance));
                    }
                    if let Err(e) = self.store.notify(Notice::BudgetPressure).await {
                        tracing::warn!(error = %e, "could not ask other processes for budget headroom");
                    }
                    pressed += 1;
                    tokio::time::sleep(Duration::from_millis(15 * u64::from(pressed))).await;
                }
            }
        }
    }

    /// Headroom of budget `key` this process holds and has not promised to a call: part of
    /// the ledger's reservation that no call is using yet.
    pub fn unpromised(&self, key: &BudgetKey) -> i64 {
        self.slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .filter(|s| s.lease.load(Ordering::Acquire) != 0)
            .map_or(0, |s| s.avail.load(Ordering::Acquire).max(0))
    }

    /// Ends a call's hold: each budget gets back what the call did not spend (`cost` of
    /// its `worst` is charged to the lease when the usage row is written).
    pub fn release(&self, hold: &Hold, cost: i64) {
        self.give_back(&hold.held, hold.worst, cost);
    }

    fn give_back(&self, held: &[Held], worst: i64, cost: i64) {
        for h in held {
            h.slot.inflight.fetch_sub(1, Ordering::AcqRel);
            // Headroom of a lease since replaced was that lease's; it is not this one's.
            if h.slot.lease.load(Ordering::Acquire) == h.lease {
                h.slot.avail.fetch_add(worst - cost, Ordering::AcqRel);
            }
        }
    }

    /// Gives back the headroom of slots unused since `before_ms` (every slot: `i64::MAX`),
    /// and forgets idle slots that hold nothing.
    async fn give_back_idle(&self, before_ms: i64) {
        let slots: Vec<(BudgetKey, Arc<Slot>)> = self
            .slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, s)| s.last_used_ms.load(Ordering::Acquire) < before_ms)
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        for (key, slot) in slots {
            let _one = slot.grow.lock().await;
            let lease = slot.lease.load(Ordering::Acquire);
            let amount = slot.take_all();
            if lease != 0 && amount > 0 {
                match self.store.shrink_lease(&key, lease, amount).await {
                    Ok(_) => {}
                    Err(e) => {
                        // Still ours: keep it in hand.
                        slot.avail.fetch_add(amount, Ordering::AcqRel);
                        tracing::warn!(error = %e, "could not give budget headroom back");
                        continue;
                    }
                }
            }
            if slot.inflight.load(Ordering::Acquire) == 0
                && slot.avail.load(Ordering::Acquire) == 0
                && slot.last_used_ms.load(Ordering::Acquire) < before_ms
            {
                let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
                if slots.get(&key).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                    slots.remove(&key);
                }
            }
        }
    }

    /// One round of the keeper: renew this process's leases, forget those reaped, end the
    /// leases of slots no longer held, give back idle headroom, reap expired leases.
    pub async fn keep(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let expires = now + self.ttl_ms();
        let live = self.store.renew_leases(&self.holder, expires).await?;
        let held: HashMap<i64, Arc<Slot>> = self
            .slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| s.lease.load(Ordering::Acquire) != 0)
            .map(|s| (s.lease.load(Ordering::Acquire), s.clone()))
            .collect();
        for (id, slot) in &held {
            if live.contains(id) {
                slot.expires_ms.store(expires, Ordering::Release);
            } else if slot
                .lease
                .compare_exchange(*id, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // Reaped while this process was away: its headroom is the budget's again.
                slot.avail.store(0, Ordering::Release);
            }
        }
        let idle = i64::try_from(self.config.idle.as_millis()).unwrap_or(i64::MAX);
        self.give_back_idle(now - idle).await;
        let orphans: Vec<i64> = live
            .into_iter()
            .filter(|id| !held.contains_key(id))
            .filter(|id| {
                // Not taken by a slot since the snapshot.
                !self
                    .slots
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .any(|s| s.lease.load(Ordering::Acquire) == *id)
            })
            .collect();
        for id in orphans {
            self.store.end_lease(id).await?;
        }
        let reaped = self.store.reap_leases(now, None).await?;
        if reaped > 0 {
            tracing::info!(
                leases = reaped,
                "reaped expired budget leases (their holder stopped renewing)"
            );
        }
        Ok(())
    }

    /// Runs the keeper until `shutdown`, then ends every lease this process holds.
    pub fn start(self: &Arc<Self>, tracker: &TaskTracker, shutdown: CancellationToken) {
        let ledger = self.clone();
        let mut notices = self.store.subscribe();
        let every = self.config.ttl / 3;
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = ledger.keep().await {
                            tracing::warn!(error = %e, "budget lease keeper failed; retrying");
                        }
                    }
                    n = notices.recv() => match n {
                        Ok(Notice::BudgetPressure) => ledger.give_back_idle(i64::MAX).await,
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        });
    }

    /// Ends every lease of this process (at shutdown, once no call is in flight and the
    /// usage rows are written).
    pub async fn close(&self) {
        match self.store.reap_leases(now_ms(), Some(&self.holder)).await {
            Ok(n) if n > 0 => tracing::debug!(leases = n, "budget leases ended"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not end budget leases; they expire"),
        }
        self.slots
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
