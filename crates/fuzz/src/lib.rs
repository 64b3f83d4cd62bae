//! Fuzz harnesses for `l2tp-proto`.
//!
//! The bodies live in [`harness`], which depends only on `l2tp_proto` and
//! `rand`: `crates/l2tp-proto/tests/fuzz_regressions.rs` includes the same
//! file with `#[path]`, so the regression corpus is replayed on stable
//! `cargo test` through exactly the code the fuzzer runs.

pub mod harness;
