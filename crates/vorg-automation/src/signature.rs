//! Webhook signatures, each scheme by its own rules.
//!
//! - **Standard Webhooks** (what vorg signs with, and one way a trigger is verified):
//!   `webhook-id`, `webhook-timestamp` (seconds) and `webhook-signature` (`v1,<base64>`,
//!   space-separated when keys rotate); the HMAC-SHA256 of `{id}.{timestamp}.{body}` under
//!   the key that follows `whsec_` in the secret (base64). Timestamps more than five
//!   minutes away from now are refused.
//! - **GitHub**: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the body under
//!   the secret's bytes; the delivery id is `X-GitHub-Delivery`. GitHub sends no timestamp:
//!   replays are stopped by the delivery id, which starts one run.
//! - **Linear**: `Linear-Signature: <hex>`, the HMAC-SHA256 of the body; the body's
//!   `webhookTimestamp` (ms) must be within a minute of now; the delivery id is
//!   `Linear-Delivery`.
//! - **Secret**: the trigger's secret in `X-Vorg-Trigger-Secret` (or as a bearer token),
//!   compared in constant time; the delivery id is the `Idempotency-Key` header if any.

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use reqwest::header::HeaderMap;
use sha2_hmac::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a Standard Webhooks timestamp may be from now.
pub const STANDARD_TOLERANCE_SECS: i64 = 300;
/// How far Linear's `webhookTimestamp` may be from now.
pub const LINEAR_TOLERANCE_MS: i64 = 60_000;
/// Longest delivery id kept (longer ones are refused).
pub const MAX_DELIVERY_ID: usize = 200;

/// How a trigger's deliveries are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    StandardWebhooks,
    Github,
    Linear,
    Secret,
}

impl Scheme {
    pub const ALL: [Scheme; 4] = [
        Scheme::StandardWebhooks,
        Scheme::Github,
        Scheme::Linear,
        Scheme::Secret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard_webhooks",
            Scheme::Github => "github",
            Scheme::Linear => "linear",
            Scheme::Secret => "secret",
        }
    }
}

impl std::str::FromStr for Scheme {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not one of standard_webhooks, github, linear, secret"))
    }
}

/// Why a delivery is not believed (answered 401, nothing started).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {0} header is malformed")]
    Malformed(&'static str),
    #[error("the signature does not match")]
    Mismatch,
    #[error("the timestamp is outside the replay window")]
    Stale,
}

/// A new Standard Webhooks secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("whsec_{}", B64.encode(key))
}

/// The HMAC key of a secret: the bytes after `whsec_` when they are base64 (Standard
/// Webhooks), else the secret's own bytes.
fn key_of(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|k| B64.decode(k).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    }
}

#[cold]
fn unreachable_hmac() -> HmacSha256 {
    // `new_from_slice` on HMAC never fails; an empty key is a valid (weak) key.
    match <HmacSha256 as KeyInit>::new_from_slice(&[0u8]) {
        Ok(m) => m,
        Err(_) => std::process::abort(),
    }
}

/// The Standard Webhooks signature header value for a message.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut m = mac(&key_of(secret));
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!("v1,{}", B64.encode(m.finalize().into_bytes()))
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    headers
        .get(name)
        .ok_or(VerifyError::Missing(name))?
        .to_str()
        .map_err(|_| VerifyError::Malformed(name))
}

fn delivery_id(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, VerifyError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().map_err(|_| VerifyError::Malformed(name))?;
            if s.is_empty() || s.len() > MAX_DELIVERY_ID {
                return Err(VerifyError::Malformed(name));
            }
            Ok(Some(s.to_owned()))
        }
    }
}

fn hex_hmac_matches(secret: &str, body: &[u8], hex_sig: &str) -> bool {
    let Ok(expected) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let mut m = mac(secret.as_bytes());
    m.update(body);
    m.verify_slice(&expected).is_ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Compares MACs of both, so neither length nor content leaks through timing.
    let key = b"vorg-trigger-secret";
    let mut ma = mac(key);
    ma.update(a);
    let mut mb = mac(key);
    mb.update(b);
    mb.verify_slice(&ma.finalize().into_bytes()).is_ok()
}

/// Checks a delivery under `scheme` at `now_ms`; answers its delivery id (the sender's,
/// which makes a redelivery start nothing new).
pub fn verify(
    scheme: Scheme,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
) -> Result<Option<String>, VerifyError> {
    match scheme {
        Scheme::StandardWebhooks => {
            let id = header(headers, "webhook-id")?;
            if id.is_empty() || id.len() > MAX_DELIVERY_ID {
                return Err(VerifyError::Malformed("webhook-id"));
            }
            let ts: i64 = header(headers, "webhook-timestamp")?
                .trim()
                .parse()
                .map_err(|_| VerifyError::Malformed("webhook-timestamp"))?;
            if (now_ms / 1000 - ts).abs() > STANDARD_TOLERANCE_SECS {
                return Err(VerifyError::Stale);
            }
            let given = header(headers, "webhook-signature")?;
            let expected = sign(secret, id, ts, body);
            let ok = given
                .split(' ')
                .filter(|s| s.starts_with("v1,"))
                .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()));
            if !ok {
                return Err(VerifyError::Mismatch);
            }
            Ok(Some(id.to_owned()))
        }
        Scheme::Github => {
            let given = header(headers, "x-hub-signature-256")?;
            let hex_sig = given
                .strip_prefix("sha256=")
                .ok_or(VerifyError::Malformed("x-hub-signature-256"))?;
            if !hex_hmac_matches(secret, body, hex_sig) {
                return Err(VerifyError::Mismatch);
            }
            delivery_id(headers, "x-github-delivery")
        }
        Scheme::Linear => {
            let given = header(headers, "linear-signature")?;
            if !hex_hmac_matches(secret, body, given) {
                return Err(VerifyError::Mismatch);
            }
            // Signed, so the timestamp inside the body is the sender's.
            let ts = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("webhookTimestamp")
                        .and_then(serde_json::Value::as_i64)
                })
                .ok_or(VerifyError::Missing("webhookTimestamp"))?;
            if (now_ms - ts).abs() > LINEAR_TOLERANCE_MS {
                return Err(VerifyError::Stale);
            }
            delivery_id(headers, "linear-delivery")
        }
        Scheme::Secret => {
            let given = match headers.get("x-vorg-trigger-secret") {
                Some(_) => header(headers, "x-vorg-trigger-secret")?,
                None => header(headers, "authorization")?
                    .strip_prefix("Bearer ")
                    .ok_or(VerifyError::Malformed("authorization"))?,
            };
            if !constant_time_eq(given.as_bytes(), secret.as_bytes()) {
                return Err(VerifyError::Mismatch);
            }
            delivery_id(headers, "idempotency-key")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn standard_webhooks_matches_the_specifications_example() {
        // The example in the Standard Webhooks specification (and its libraries' tests).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let h = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
            ("webhook-timestamp", "1614265330".into()),
            ("webhook-signature", format!("v1,bm90IGl0 {sig}")),
        ]);
        let now = 1614265330 * 1000;
        assert_eq!(
            verify(Scheme::StandardWebhooks, secret, &h, body, now),
            Ok(Some("msg_p5jXN8AQM9LWM0D4loKWxJek".into()))
        );
        assert_eq!(
            verify(Scheme::StandardWebhooks, secret, &h, b"{}", now),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(Scheme::StandardWebhooks, secret, &h, body, now + 301_000),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(
                Scheme::StandardWebhooks,
                secret,
                &HeaderMap::new(),
                body,
                now
            ),
            Err(VerifyError::Missing("webhook-id"))
        );
    }

    #[test]
    fn github_and_linear_sign_the_body_in_hex() {
        let body = br#"{"action":"opened","webhookTimestamp":1700000000000}"#;
        let mut m = mac(b"It's a Secret to Everybody");
        m.update(body);
        let hex_sig = hex::encode(m.finalize().into_bytes());
        let gh = headers(&[
            ("x-hub-signature-256", format!("sha256={hex_sig}")),
            (
                "x-github-delivery",
                "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            ),
        ]);
        assert_eq!(
            verify(Scheme::Github, "It's a Secret to Everybody", &gh, body, 0),
            Ok(Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".into()))
        );
        assert_eq!(
            verify(Scheme::Github, "another secret", &gh, body, 0),
            Err(VerifyError::Mismatch)
        );
        let lin = headers(&[
            ("linear-signature", hex_sig.clone()),
            ("linear-delivery", "d-1".into()),
        ]);
        let secret = "It's a Secret to Everybody";
        assert_eq!(
            verify(Scheme::Linear, secret, &lin, body, 1_700_000_030_000),
            Ok(Some("d-1".into()))
        );
        assert_eq!(
            verify(Scheme::Linear, secret, &lin, body, 1_700_000_061_000),
            Err(VerifyError::Stale)
        );
    }

    #[test]
    fn a_plain_secret_is_compared_whole() {
        let h = headers(&[("x-vorg-trigger-secret", "s3cret".into())]);
        assert!(verify(Scheme::Secret, "s3cret", &h, b"", 0).is_ok());
        assert!(verify(Scheme::Secret, "s3cret-longer", &h, b"", 0).is_err());
        let bearer = headers(&[("authorization", "Bearer s3cret".into())]);
        assert!(verify(Scheme::Secret, "s3cret", &bearer, b"", 0).is_ok());
        assert!(new_secret().starts_with("whsec_"));
    }
}
