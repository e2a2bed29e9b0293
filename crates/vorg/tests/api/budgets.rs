//! Budget leases across processes on one PostgreSQL: no call is admitted past a limit
//! however the calls are spread, a process killed with headroom in hand strands it only
//! until its lease expires, and `vorg budgets check` proves the ledger afterwards.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures_util::{StreamExt, stream};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vorg::Settings;
use vorg_store::Backend;

use crate::{
    helpers::TestApp,
    org::{Upstream, budget_app_with},
};

/// A second `vorg serve` on the app's database and configuration; killed when dropped.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    async fn start(app: &TestApp, upstream: &Upstream) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s: &Settings = &app.settings;
        let child = Command::new(env!("CARGO_BIN_EXE_vorg"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", s.database_url())
            .env("VORG_DATA_DIR", &s.data_dir)
            .env("VORG_CONFIG", s.data_dir.join("absent.toml"))
            .env("VORG_CONFIG_DIR", s.config_dir.clone().unwrap())
            .env("VORG_BIND", format!("127.0.0.1:{port}"))
            .env("VORG_WORKERS", "0")
            .env("VORG_SCHEDULER", "false")
            .env("VORG_BUDGET_LEASE_SECS", "2")
            .env("OPENAI_API_KEY", "sk-test-0123456789abcdef")
            .env("OPENAI_BASE_URL", &upstream.url)
            .env("VORG_OPENAI_MODEL", "gpt-4o-mini")
            .env("VORG_LLM_MAX_RETRIES", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vorg serve");
        let serve = Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{}/health", serve.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return serve;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the second vorg serve did not start");
    }

    fn kill_9(&mut self) {
        let status = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A completion whose worst case (5 prompt tokens estimated, 20 out) and real cost (the
/// upstream answers 5 + 20 tokens) are both 5 × 0.15 + 20 × 0.60 = 12.75 → 13 µ$.
fn completion() -> Value {
    json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "x" }],
            "max_tokens": 20 })
}

/// One [`completion`] through the vorg at `base`: its status.
async fn complete(client: &reqwest::Client, base: &str, token: &str) -> StatusCode {
    client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(token)
        .json(&completion())
        .send()
        .await
        .unwrap()
        .status()
}

const COST: i64 = 13;
const LIMIT: i64 = 10_000;

async fn two_processes(upstream: &Upstream) -> (TestApp, String) {
    *upstream.usage.lock().unwrap() = (5, 20);
    let app = budget_app_with(Backend::Postgres, upstream, |s| {
        s.budget_lease_secs = 2;
    })
    .await;
    let admin = app.admin().await;
    let (status, token) = app
        .post("/auth/tokens", Some(&admin), json!({ "name": "load" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    (app, token["token"].as_str().unwrap().to_owned())
}

/// Waits until the usage rows number `n`, then returns the ledger's (spent, reserved) and
/// the sum of the usage costs.
async fn settled(app: &TestApp, n: usize) -> (i64, i64, i64) {
    for _ in 0..200 {
        let rows = app
            .store
            .list_usage(vorg_store::Page {
                limit: 2000,
                before: None,
            })
            .await
            .unwrap();
        if rows.len() >= n {
            assert_eq!(rows.len(), n, "one usage row per provider call");
            let checks = app.store.check_budgets().await.unwrap();
            assert_eq!(checks.len(), 1, "{checks:?}");
            let c = &checks[0];
            return (c.spent_micro_usd, c.reserved_micro_usd, c.usage_micro_usd);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the usage rows never reached {n}");
}

/// `vorg budgets check` on the app's database: its exit status and output.
fn budgets_check(app: &TestApp) -> (bool, String) {
    let s = &app.settings;
    let out = Command::new(env!("CARGO_BIN_EXE_vorg"))
        .args(["budgets", "check"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", s.database_url())
        .env("VORG_DATA_DIR", &s.data_dir)
        .env("VORG_CONFIG", s.data_dir.join("absent.toml"))
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_admit_a_call_past_the_limit() {
    const CALLS: usize = 1_000;
    let upstream = Upstream::start().await;
    let (app, token) = two_processes(&upstream).await;
    let other = Serve::start(&app, &upstream).await;
    let client = reqwest::Client::new();
    let bases = [app.base.clone(), other.base.clone()];
    // 1 000 calls of 13 µ$ against 10 000 µ$, alternating between the processes, 16 at once.
    let statuses: Vec<(usize, StatusCode)> = stream::iter(0..CALLS)
        .map(|i| {
            let (client, token, base) = (client.clone(), token.clone(), bases[i % 2].clone());
            async move { (i % 2, complete(&client, &base, &token).await) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let ok = |p: usize| {
        statuses
            .iter()
            .filter(|(q, s)| *q == p && *s == StatusCode::OK)
            .count()
    };
    let refused = statuses
        .iter()
        .filter(|(_, s)| *s == StatusCode::PAYMENT_REQUIRED)
        .count();
    let admitted = ok(0) + ok(1);
    assert_eq!(admitted + refused, CALLS, "{statuses:?}");
    assert!(ok(0) > 0 && ok(1) > 0, "both processes admitted calls");
    assert_eq!(
        upstream.calls(),
        admitted,
        "a refused call never reaches the model"
    );
    let (spent, _, usage) = settled(&app, admitted).await;
    assert_eq!(spent, usage);
    assert_eq!(spent, admitted as i64 * COST);
    assert!(spent <= LIMIT, "spent {spent} of {LIMIT}");
    // Leases do not strand the last dollars: all but a few calls' worth is spent.
    assert!(
        spent > LIMIT - 20 * COST,
        "only {spent} of {LIMIT} spent: headroom was stranded"
    );
    let (ok_check, out) = budgets_check(&app);
    assert!(ok_check, "{out}");
    assert!(out.contains("all balanced"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_strands_its_headroom_only_until_its_lease_expires() {
    let upstream = Upstream::start().await;
    let (app, token) = two_processes(&upstream).await;
    let mut other = Serve::start(&app, &upstream).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(complete(&client, &other.base, &token).await, StatusCode::OK);
    }
    // The other process holds a lease bigger than what it spent.
    let (spent, reserved, usage) = settled(&app, 3).await;
    assert_eq!((spent, usage), (3 * COST, 3 * COST));
    assert!(reserved > 0, "the other process holds headroom");
    other.kill_9();
    // Its lease is not renewed: within its 2 s (and a keeper round) the headroom is back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (spent, reserved, usage) = settled(&app, 3).await;
        assert_eq!(spent, usage);
        if reserved == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{reserved} µ$ still reserved by a dead process"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok_check, out) = budgets_check(&app);
    assert!(ok_check, "{out}");
    // The whole budget is usable again from the live process.
    assert_eq!(complete(&client, &app.base, &token).await, StatusCode::OK);
}
