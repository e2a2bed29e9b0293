//! Delivering webhooks: the `webhook.deliver` job makes one attempt at one delivery.
//!
//! - Signed per Standard Webhooks with the subscription's secret; the `webhook-id` is the
//!   delivery's, the same on every attempt (a receiver deduplicates on it).
//! - SSRF-safe: the client resolves names itself and refuses loopback, private,
//!   link-local (the cloud metadata address), CGNAT, multicast and unspecified addresses
//!   (unless `allow_private`); it connects only to the addresses it checked, follows no
//!   redirect, uses no proxy, gives up after the timeout and reads at most 64 KiB back.
//! - Failures are retried on a schedule of about a day (with jitter), or after the
//!   receiver's `Retry-After`; a 410 disables the subscription; so does a long streak of
//!   failures. Each attempt and what follows is one store transaction.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use futures_util::StreamExt;
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vorg_jobs::{BackgroundJob, JobContext, JobError};
use vorg_store::{AttemptOutcome, AttemptRecord, DeliveryRow, Store, StoreError, WebhookRow};

use crate::signature::sign;

/// How deliveries behave.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Deliver to loopback and private addresses (`VORG_WEBHOOKS_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// One attempt's limit (connect, send, read).
    pub timeout: Duration,
    /// The wait before each retry; attempts = 1 + its length.
    pub retry_delays: Vec<Duration>,
    /// Failed attempts in a row that disable a subscription.
    pub disable_after: i64,
    /// Most bytes of a response kept (and read).
    pub max_response: usize,
    /// Where links in payloads point (`VORG_PUBLIC_URL`), without a trailing slash.
    pub public_url: String,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(60 * n);
        DeliveryConfig {
            allow_private: false,
            timeout: Duration::from_secs(10),
            // 5 s, 1 min, 5 min, 30 min, 2 h, 5 h, 8 h, 8 h: about 24 hours in all.
            retry_delays: vec![
                Duration::from_secs(5),
                m(1),
                m(5),
                m(30),
                m(120),
                m(300),
                m(480),
                m(480),
            ],
            disable_after: 50,
            max_response: 64 * 1024,
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// Whether an address is one a webhook may never reach (without `allow_private`).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                // 100.64.0.0/10, carrier-grade NAT (and some clouds' internal ranges).
                || (o[0] == 100 && (o[1] & 0xC0) == 64)
                // 192.0.0.0/24, IETF protocol assignments; 198.18.0.0/15, benchmarking.
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xFE) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local (fd00:ec2::254 is a metadata address), fe80::/10
                // link-local, 64:ff9b::/96 NAT64 (reaches IPv4 inside), 2001:db8::/32.
                || (seg[0] & 0xFE00) == 0xFC00
                || (seg[0] & 0xFFC0) == 0xFE80
                || (seg[0] == 0x64 && seg[1] == 0xFF9B)
                || (seg[0] == 0x2001 && seg[1] == 0x0DB8)
        }
    }
}

/// Resolves names and refuses any whose addresses include a forbidden one.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: Addrs = Box::new(checked(&host, addrs, allow_private)?.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses `host` resolved to, or why it may not be reached: one forbidden address
/// refuses the name (a name that mixes public and private addresses could be rebound).
pub fn checked(
    host: &str,
    addrs: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    if !allow_private && let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
        return Err(format!(
            "{host} resolves to {}, a private or reserved address: refused",
            bad.ip()
        ));
    }
    Ok(addrs)
}

/// Why a URL may not be a webhook's target.
pub fn url_problem(url: &str, allow_private: bool) -> Option<String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Some(format!("not a URL: {e}")),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Some("must be an http or https URL".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some("must not carry credentials (put a secret in the receiver's check)".into());
    }
    match parsed.host() {
        None => Some("has no host".into()),
        Some(url::Host::Ipv4(ip)) if !allow_private && is_forbidden(IpAddr::V4(ip)) => {
            Some(format!("{ip} is a private or reserved address"))
        }
        Some(url::Host::Ipv6(ip)) if !allow_private && is_forbidden(IpAddr::V6(ip)) => {
            Some(format!("{ip} is a private or reserved address"))
        }
        Some(url::Host::Domain(d)) if !allow_private && d.eq_ignore_ascii_case("localhost") => {
            Some("localhost is a private address".into())
        }
        _ => None,
    }
}

/// The outbound side: a guarded HTTP client and the delivery settings.
pub struct Outbound {
    client: reqwest::Client,
    pub config: DeliveryConfig,
}

impl Outbound {
    pub fn new(config: DeliveryConfig) -> Result<Arc<Outbound>, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("vorg-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(GuardedResolver {
                allow_private: config.allow_private,
            })
            .build()?;
        Ok(Arc::new(Outbound { client, config }))
    }
}

/// The `webhook.deliver` job: attempt `attempt` of delivery `delivery_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub delivery_id: i64,
    pub attempt: i64,
}

impl BackgroundJob for WebhookDelivery {
    const KIND: &'static str = vorg_store::DELIVER_JOB;
    const MAX_ATTEMPTS: i64 = 3;
    type Output = ();
    type Context = Arc<Outbound>;

    async fn run(self, out: &Arc<Outbound>, job: &JobContext) -> Result<(), JobError> {
        let store = &job.store;
        let retry = |e: StoreError| JobError::Retryable(format!("webhook delivery: {e}"));
        let delivery = match store.get_delivery(self.delivery_id).await {
            Ok(d) => d,
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(retry(e)),
        };
        // An attempt already recorded (this job re-ran after a crash) or a delivery ended.
        if delivery.status != "pending" || delivery.attempts >= self.attempt {
            return Ok(());
        }
        let hook = match store.get_webhook(delivery.webhook_id).await {
            Ok(h) => h,
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(retry(e)),
        };
        if !hook.enabled {
            store
                .end_delivery(delivery.id, "the subscription is disabled")
                .await
                .map_err(retry)?;
            return Ok(());
        }
        attempt(store, out, &hook, &delivery, self.attempt)
            .await
            .map_err(retry)
    }
}

/// What one HTTP attempt found.
struct Answer {
    status: Option<u16>,
    excerpt: String,
    error: Option<String>,
    retry_after: Option<Duration>,
}

async fn attempt(
    store: &Store,
    out: &Outbound,
    hook: &WebhookRow,
    delivery: &DeliveryRow,
    n: i64,
) -> Result<(), StoreError> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let answer = send(out, hook, delivery).await;
    let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
    let cfg = &out.config;
    let outcome = match answer.status {
        Some(s) if (200..300).contains(&s) => AttemptOutcome::Delivered,
        Some(410) => AttemptOutcome::Gone,
        _ => match usize::try_from(n - 1)
            .ok()
            .and_then(|i| cfg.retry_delays.get(i))
        {
            Some(delay) => {
                let wait = answer
                    .retry_after
                    .map(|ra| ra.clamp(Duration::from_secs(1), Duration::from_secs(86_400)))
                    .unwrap_or_else(|| jitter(*delay));
                let due = Utc::now().timestamp_millis()
                    + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                AttemptOutcome::RetryAt(due)
            }
            None => AttemptOutcome::GiveUp,
        },
    };
    match &outcome {
        AttemptOutcome::Delivered => {
            tracing::debug!(
                webhook_id = hook.id,
                delivery_id = delivery.id,
                n,
                "webhook delivered"
            );
        }
        other => tracing::info!(
            webhook_id = hook.id, delivery_id = delivery.id, attempt = n,
            status = answer.status, error = answer.error.as_deref(), next = ?other,
            "webhook delivery failed"
        ),
    }
    store
        .record_attempt(
            &AttemptRecord {
                delivery_id: delivery.id,
                attempt: n,
                started_at,
                duration_ms,
                status_code: answer.status,
                response_excerpt: &answer.excerpt,
                error: answer.error.as_deref(),
            },
            &outcome,
            cfg.disable_after,
        )
        .await?;
    Ok(())
}

fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.8..1.2))
}

/// The bytes a subscription receives for a delivery.
pub fn body_for(hook: &WebhookRow, delivery: &DeliveryRow, public_url: &str) -> Vec<u8> {
    let value = if hook.format == "slack" {
        slack_message(&delivery.payload.0, public_url)
    } else {
        delivery.payload.0.clone()
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

async fn send(out: &Outbound, hook: &WebhookRow, delivery: &DeliveryRow) -> Answer {
    let body = body_for(hook, delivery, &out.config.public_url);
    let ts = Utc::now().timestamp();
    let signature = sign(&hook.secret, &delivery.msg_id, ts, &body);
    let sent = out
        .client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            return Answer {
                status: None,
                excerpt: String::new(),
                error: Some(describe(&e)),
                retry_after: None,
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut excerpt = Vec::new();
    let mut stream = response.bytes_stream();
    let mut error = None;
    while excerpt.len() < out.config.max_response {
        match stream.next().await {
            Some(Ok(chunk)) => {
                let room = out.config.max_response - excerpt.len();
                excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Some(Err(e)) => {
                error = Some(describe(&e));
                break;
            }
            None => break,
        }
    }
    // What is not read is dropped with the connection.
    let mut excerpt = String::from_utf8_lossy(&excerpt).into_owned();
    excerpt.truncate(excerpt.floor_char_boundary(2048));
    Answer {
        status: Some(status),
        excerpt,
        error,
        retry_after,
    }
}

/// A reqwest error with its causes (the refused address is in a source).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A Slack-compatible incoming-webhook message for an event: readable text with links to
/// the console (approve and reject for an approval).
pub fn slack_message(payload: &Value, public_url: &str) -> Value {
    let kind = payload["type"].as_str().unwrap_or("event");
    let data = &payload["data"];
    let console = |path: &str| format!("{public_url}/console{path}");
    let text = match kind {
        "approval.requested" => {
            let id = data["approval_id"].as_i64().unwrap_or_default();
            let approvers = data["approvers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!(
                "*Approval #{id} requested* ({} tier): {} for ${:.2}\nApprovers: {}\n<{}|Approve or reject in the console>",
                data["tier"].as_str().unwrap_or("approver"),
                data["description"].as_str().unwrap_or(""),
                data["amount_usd"].as_f64().unwrap_or(0.0),
                if approvers.is_empty() {
                    "anyone with decide_approvals"
                } else {
                    &approvers
                },
                console(&format!("/approvals?focus={id}")),
            )
        }
        "budget.warning" | "budget.exceeded" | "budget.forecast" => format!(
            "*{}*: {} budget {} for {} — ${:.2} of ${:.2}\n<{}|Budgets>",
            match kind {
                "budget.warning" => "Budget warning",
                "budget.exceeded" => "Budget exceeded",
                _ => "Budget forecast over the limit",
            },
            data["scope"].as_str().unwrap_or(""),
            data["subject"].as_str().unwrap_or(""),
            data["period"].as_str().unwrap_or(""),
            data["spent_usd"]
                .as_f64()
                .or(data["projected_usd"].as_f64())
                .unwrap_or(0.0),
            data["limit_usd"].as_f64().unwrap_or(0.0),
            console("/"),
        ),
        k if k.starts_with("run.") => {
            let id = data["run_id"].as_i64().unwrap_or_default();
            format!(
                "Run #{id} ({}) {}\n<{}|Open the run>",
                data["run_type"].as_str().unwrap_or("run"),
                k.trim_start_matches("run."),
                console(&format!("/runs/{id}")),
            )
        }
        other => format!("vorg: {other}\n```{}```", data),
    };
    json!({ "text": text })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn addr(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 443)
    }

    #[test]
    fn a_name_resolving_to_any_private_address_is_refused() {
        for bad in [
            "10.0.0.5",
            "172.16.3.4",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            let err = checked(
                "internal.example",
                vec![addr("93.184.216.34"), addr(bad)],
                false,
            );
            assert!(err.unwrap_err().contains("private or reserved"), "{bad}");
            assert!(
                checked("internal.example", vec![addr(bad)], true).is_ok(),
                "{bad} allowed"
            );
        }
        for good in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
        ] {
            assert!(
                checked("example.com", vec![addr(good)], false).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn urls_are_checked_before_any_lookup() {
        assert!(url_problem("https://hooks.example.com/x", false).is_none());
        for bad in [
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://169.254.169.254/",
            "http://localhost:80/",
            "http://user:pw@example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "not a url",
        ] {
            assert!(url_problem(bad, false).is_some(), "{bad}");
        }
        assert!(url_problem("http://127.0.0.1:9/", true).is_none());
    }

    #[test]
    fn a_slack_message_reads_well_and_links_to_the_console() {
        let payload = serde_json::json!({ "type": "run.failed", "data": { "run_id": 7, "run_type": "workflow" } });
        let text = slack_message(&payload, "https://vorg.example.com")["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            text,
            "Run #7 (workflow) failed\n<https://vorg.example.com/console/runs/7|Open the run>"
        );
    }
}
