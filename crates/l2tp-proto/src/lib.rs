//! Sans-IO implementation of the L2TPv2 control protocol (RFC 2661).
//!
//! The crate performs no I/O, reads no clock and owns no randomness source:
//! every entry point takes `now`, and randomness (tunnel and session ids,
//! Challenge, Random Vector, Tie Breaker) comes from an [`rand_core::RngCore`]
//! the caller hands in. The caller feeds datagrams, timeouts, commands and
//! results of kernel actions into an [`endpoint::Endpoint`] and drains
//! transmits, events, actions and the next deadline out of it.
//!
//! Layers, bottom up:
//! - [`wire`]: header, AVPs (including hidden AVPs, RFC 2661 §4.3) and the
//!   per-message structs of RFC 2661 §6.
//! - [`reliable`]: the reliable control channel of RFC 2661 §5.8 (Ns/Nr,
//!   windows, retransmission, ZLB acknowledgements).
//! - [`tunnel`] and [`session`]: the control-connection and call state machines.
//! - [`endpoint`]: many tunnels behind one driver-facing API.
//!
//! Strings a peer sent reach events and logs only as [`text::PeerText`],
//! which prints escaped and bounded.

pub mod endpoint;
pub mod event;
pub mod ids;
pub mod ratelimit;
pub mod reliable;
pub mod session;
pub mod text;
pub mod tunnel;
pub mod violation;
pub mod wire;
