//! rustnl message layouts, in one place.
//!
//! This crate is `no_std` with no dependencies and no `unsafe`. Userspace uses
//! it as an ordinary Cargo dependency; the kernel module compiles the very same
//! file, `src/proto.rs`, through a `#[path]` include, so both sides share
//! one definition of every message type number, layout and length check.
#![no_std]
#![forbid(unsafe_code)]

mod proto;
pub use proto::*;

/// The generic netlink face: the numbers of the YNL spec `spec/rustnl.yaml`.
pub mod genl;
