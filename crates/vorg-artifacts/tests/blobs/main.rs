//! Black-box tests of `Blobs`: the same behaviour on local disk and on a real
//! S3-protocol server (s3s-fs, in-process).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract;
mod local;
mod s3;
