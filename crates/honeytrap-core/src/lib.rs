//! The nginx-independent core of ngx-honeytrap.
//!
//! Everything here is plain Rust: no nginx types, no FFI, no `unsafe`. The module crate at the
//! repository root translates nginx structures into calls to this crate, so each piece can be
//! unit-tested, fuzzed and benchmarked without an nginx binary.

#![forbid(unsafe_code)]

pub mod bait;
pub mod event;
pub mod flagged;
pub mod panic;
pub mod queue;
pub mod shipper;
pub mod sink;
