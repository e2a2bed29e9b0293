//! Turning object_store's errors into [`BlobError`]s whose messages tell an operator what
//! to check, and never carry a secret.
//!
//! object_store keeps its HTTP status type private, so S3 failures are recognised by the
//! S3 error code in the response body (`<Code>NoSuchBucket</Code>`), by the status line
//! in the message, or by an [`HttpError`] in the source chain (no response at all).

use std::error::Error as StdError;

use object_store::client::HttpError;

use crate::BlobError;

/// What an S3 failure means for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    MissingBucket,
    Credentials,
    Unreachable,
    Other,
}

/// S3 error codes that mean "these credentials are not accepted here".
const CREDENTIAL_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NotSignedUp",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
    "InvalidSecurity",
];

/// Classifies an object_store error from an S3 store.
pub(crate) fn cause(err: &object_store::Error) -> Cause {
    if matches!(
        err,
        object_store::Error::Unauthenticated { .. } | object_store::Error::PermissionDenied { .. }
    ) {
        return Cause::Credentials;
    }
    let text = err.to_string();
    match s3_code(&text) {
        Some("NoSuchBucket") => return Cause::MissingBucket,
        Some(code) if CREDENTIAL_CODES.contains(&code) => return Cause::Credentials,
        _ => {}
    }
    if text.contains("status code: 401") || text.contains("status code: 403") {
        return Cause::Credentials;
    }
    if has_transport_error(err) {
        return Cause::Unreachable;
    }
    Cause::Other
}

/// A short, secret-free account of the failure: the S3 code and message when the server
/// sent one, else the innermost cause.
pub(crate) fn detail(err: &object_store::Error, secret: Option<&str>) -> String {
    let text = err.to_string();
    let detail = match s3_code(&text) {
        Some(code) => match between(&text, "<Message>", "</Message>") {
            Some(message) => format!("{code}: {message}"),
            None => code.to_owned(),
        },
        None => {
            let mut innermost: &(dyn StdError + 'static) = err;
            while let Some(next) = innermost.source() {
                innermost = next;
            }
            let inner = innermost.to_string();
            if has_transport_error(err) && !inner.is_empty() {
                inner
            } else {
                text
            }
        }
    };
    redact(&truncate(detail, 300), secret)
}

/// Maps an error from `put`/`get`/`delete` on `key`. `secret` is the S3 secret key, or
/// `None` for local disk.
pub(crate) fn classify(
    store: &str,
    is_s3: bool,
    key: &str,
    action: &str,
    err: object_store::Error,
    secret: Option<&str>,
) -> BlobError {
    match &err {
        object_store::Error::NotFound { .. } => return BlobError::NotFound(key.to_owned()),
        object_store::Error::InvalidPath { .. } => {
            return BlobError::InvalidKey(format!("{key:?}: {}", redact(&err.to_string(), secret)));
        }
        _ => {}
    }
    // Local disk errors carry file paths and OS errors, nothing secret.
    let detail = detail(&err, secret);
    match (is_s3, cause(&err)) {
        (true, Cause::MissingBucket) => BlobError::Unavailable(format!(
            "cannot {action} {key:?}: the bucket of {store} no longer exists; check S3_BUCKET"
        )),
        (true, Cause::Credentials) => BlobError::Unavailable(format!(
            "cannot {action} {key:?}: {store} refused our credentials; check the AWS credentials \
             (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and their permissions on the bucket ({detail})"
        )),
        (true, Cause::Unreachable) => BlobError::Unavailable(format!(
            "cannot {action} {key:?}: could not reach {store}; check S3_ENDPOINT and the network ({detail})"
        )),
        _ => BlobError::Io(format!("cannot {action} {key:?} in {store}: {detail}")),
    }
}

fn has_transport_error(err: &object_store::Error) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<HttpError>().is_some() {
            return true;
        }
        current = e.source();
    }
    false
}

fn s3_code(text: &str) -> Option<&str> {
    between(text, "<Code>", "</Code>")
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(text[start..start + len].trim()).filter(|s| !s.is_empty())
}

fn truncate(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Belt and braces: neither S3 nor object_store should ever echo the secret key, but if
/// one did, it stops here.
pub(crate) fn redact(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() => text.replace(secret, "[redacted]"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn generic(message: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: message.to_owned().into(),
        }
    }

    #[test]
    fn s3_codes_decide_the_cause() {
        let body = |code: &str| {
            format!(
                "Server returned non-2xx status code: 404 Not Found: <Error><Code>{code}</Code><Message>m</Message></Error>"
            )
        };
        assert_eq!(cause(&generic(&body("NoSuchBucket"))), Cause::MissingBucket);
        assert_eq!(
            cause(&generic(&body("SignatureDoesNotMatch"))),
            Cause::Credentials
        );
        assert_eq!(cause(&generic(&body("InternalError"))), Cause::Other);
        assert_eq!(
            cause(&generic("status code: 403 Forbidden: ")),
            Cause::Credentials
        );
    }

    #[test]
    fn detail_prefers_the_s3_code_and_message_and_hides_the_secret() {
        let err = generic("... <Code>AccessDenied</Code><Message>key s3cr3t is wrong</Message>");
        assert_eq!(
            detail(&err, Some("s3cr3t")),
            "AccessDenied: key [redacted] is wrong"
        );
    }

    #[test]
    fn long_details_are_cut() {
        let err = generic(&"x".repeat(1000));
        assert!(detail(&err, None).chars().count() <= 301);
    }
}
