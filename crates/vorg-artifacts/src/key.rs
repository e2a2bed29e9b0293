//! Blob keys: the one check every key passes before it reaches a store.
//!
//! The alphabet is small on purpose. A key that passes [`validate_key`] is the same string
//! on every backend (no percent-encoding by object_store, no case or Unicode surprises), and
//! it cannot name anything outside the local root: there is no `..`, no `.`, no empty
//! segment, no leading `/` and no `\`.

use crate::BlobError;

/// Longest key accepted, in bytes (S3's own limit is 1024 bytes of UTF-8).
pub const MAX_KEY_LEN: usize = 1024;
/// Longest segment accepted, in bytes.
pub const MAX_SEGMENT_LEN: usize = 200;

/// Checks that `key` is safe on every backend.
///
/// A key is one or more segments separated by `/`; each segment is 1..=200 characters of
/// `[A-Za-z0-9._-]` and is neither `.` nor `..`; the whole key is at most 1024 characters.
/// So `runs/0193/report.json` is fine and `../x`, `a//b`, `/etc/passwd` and `a\b` are not.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let invalid = |why: &str| Err(BlobError::InvalidKey(format!("{:?}: {why}", shorten(key))));
    if key.is_empty() {
        return invalid("is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return invalid("is longer than 1024 characters");
    }
    if key.starts_with('/') {
        return invalid("starts with '/'");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return invalid("has an empty segment ('//' or a trailing '/')");
        }
        if segment == "." || segment == ".." {
            return invalid("has a '.' or '..' segment");
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return invalid("has a segment longer than 200 characters");
        }
        if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(BlobError::InvalidKey(format!(
                "{:?}: character {bad:?} is not allowed (use A-Z a-z 0-9 . _ - and '/' between segments)",
                shorten(key)
            )));
        }
    }
    Ok(())
}

/// Keeps error messages readable when someone sends a huge key.
fn shorten(key: &str) -> &str {
    match key.char_indices().nth(80) {
        Some((end, _)) => &key[..end],
        None => key,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn ordinary_keys_are_accepted() {
        for key in [
            "a",
            "report.json",
            "runs/0193c2f0-7d1a/step-3/output_v1.tar.gz",
            ".hidden",
            "a/..b/c..",
            "...",
        ] {
            assert!(validate_key(key).is_ok(), "{key} should be valid");
        }
    }

    #[test]
    fn traversal_and_odd_keys_are_rejected() {
        for key in [
            "",
            "../x",
            "a/../../b",
            "..",
            ".",
            "a/./b",
            "/etc/passwd",
            "a//b",
            "a/",
            "a\\b",
            "..\\x",
            "a b",
            "a%2e%2e",
            "é",
            "a\0b",
            "C:x",
        ] {
            let err = validate_key(key).expect_err(key);
            assert!(matches!(err, BlobError::InvalidKey(_)), "{key}: {err:?}");
        }
    }

    #[test]
    fn lengths_are_bounded() {
        let segment = "s".repeat(MAX_SEGMENT_LEN);
        assert!(validate_key(&segment).is_ok());
        assert!(validate_key(&format!("{segment}s")).is_err());

        // 5 segments of 200 plus 4 slashes = 1004; one more segment of 19 chars reaches 1024.
        let long = [segment.as_str(); 5].join("/");
        let at_limit = format!("{long}/{}", "t".repeat(MAX_KEY_LEN - long.len() - 1));
        assert_eq!(at_limit.len(), MAX_KEY_LEN);
        assert!(validate_key(&at_limit).is_ok());
        assert!(validate_key(&format!("{at_limit}t")).is_err());
    }

    #[test]
    fn the_message_names_the_key_and_the_rule() {
        let err = validate_key("a/../b").expect_err("traversal");
        let message = err.to_string();
        assert!(message.contains("a/../b"), "{message}");
        assert!(message.contains("'..'"), "{message}");
    }
}
