//! HS256 JWTs with the original's claims (`iss`, `aud`, `sub`, `adm`, `iat`, `exp`).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The claims vorg issues. `email` is vorg's addition; clients of the original ignore it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id, as a string.
    pub sub: String,
    /// Whether the user was an admin when the token was issued.
    pub adm: bool,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Stream tokens: the API token or session they were minted with (vorg's addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<i64>,
    /// Stream tokens: when the credential they were minted with expires (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pexp: Option<i64>,
}

/// What a stream token carries of the credential that asked for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamParent {
    pub token_id: Option<i64>,
    pub expires_at: Option<i64>,
}

/// Signing and verification keys plus the expected issuer and audience.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    stream_validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

/// Lifetime of a stream token (`?access_token=` for `EventSource`).
pub const STREAM_TOKEN_SECS: i64 = 60;

/// Stream tokens carry the audience `<JWT_AUDIENCE>:stream`, so they are refused everywhere
/// but on `/streams/*`, and session tokens are refused in URLs.
fn stream_audience(audience: &str) -> String {
    format!("{audience}:stream")
}

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl_minutes: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = 30;
        let mut stream_validation = validation.clone();
        stream_validation.set_audience(&[stream_audience(audience)]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            stream_validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs: ttl_minutes * 60,
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Issues a session token for `user_id`.
    pub fn issue(&self, user_id: i64, email: &str, is_admin: bool) -> Result<String, ApiError> {
        self.sign(
            user_id,
            email,
            is_admin,
            self.audience.clone(),
            self.ttl_secs,
            StreamParent::default(),
        )
    }

    /// Issues a short-lived token valid only on `/streams/*`.
    pub fn issue_stream(
        &self,
        user_id: i64,
        email: &str,
        parent: StreamParent,
    ) -> Result<String, ApiError> {
        self.sign(
            user_id,
            email,
            false,
            stream_audience(&self.audience),
            STREAM_TOKEN_SECS,
            parent,
        )
    }

    fn sign(
        &self,
        user_id: i64,
        email: &str,
        is_admin: bool,
        aud: String,
        ttl: i64,
        parent: StreamParent,
    ) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud,
            sub: user_id.to_string(),
            adm: is_admin,
            iat: now,
            exp: match parent.expires_at {
                Some(until) => (now + ttl).min(until),
                None => now + ttl,
            },
            email: Some(email.to_owned()),
            tid: parent.token_id,
            pexp: parent.expires_at,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("signing a JWT")))
    }

    /// Verifies a session token: signature, algorithm, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        self.check(token, &self.validation)
    }

    /// Verifies a stream token.
    pub fn verify_stream(&self, token: &str) -> Result<Claims, ApiError> {
        self.check(token, &self.stream_validation)
    }

    fn check(&self, token: &str, validation: &Validation) -> Result<Claims, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        decode::<Claims>(token, &self.decoding, validation)
            .map(|data| data.claims)
            .map_err(|e| {
                ApiError::Unauthenticated(match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::InvalidIssuer => "token has the wrong issuer",
                    ErrorKind::InvalidAudience => "token has the wrong audience",
                    ErrorKind::InvalidSignature => "token signature is invalid",
                    ErrorKind::InvalidAlgorithm => "token algorithm is not accepted",
                    ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                    _ => "token is malformed",
                })
            })
    }
}
