//! An in-process SecLang engine: loads ModSecurity rule files (the OWASP Core Rule Set v4
//! and v3.3) and evaluates them against requests and responses, without nginx types.
//!
//! Data flow: [`parser`] splits text into directives → [`ruleset`] compiles them (operators,
//! transformations, actions, variables, one file each in their folders) into a [`RuleSet`],
//! loaded once and shared by `Arc` → a [`Transaction`] per request is fed the request line,
//! headers and body, runs phases 1-5, caches transformed values per target, and reports
//! [`MatchedRule`]s, anomaly scores and an [`Intervention`].
//!
//! ```
//! use std::sync::Arc;
//! use honeytrap_seclang::{RuleSet, TxInput};
//! let rs = Arc::new(RuleSet::from_text(
//!     "SecRuleEngine On\nSecRule ARGS \"@rx <script\" \"id:1,phase:1,deny,status:403\"",
//!     "inline",
//! ).unwrap());
//! let mut tx = rs.transaction(TxInput::default());
//! tx.set_request_line(b"GET", b"/?q=<script>", b"HTTP/1.1");
//! let iv = tx.process_request_headers().unwrap();
//! assert_eq!(iv.status, 403);
//! ```
#![forbid(unsafe_code)]

pub mod actions;
pub mod body;
mod cache;
pub mod error;
pub mod macros;
pub mod operators;
pub mod parser;
mod prefilter;
pub mod rule;
pub mod ruleset;
mod store;
#[cfg(test)]
mod test_crs;
#[cfg(test)]
mod test_hir;
#[cfg(test)]
mod test_rng;
pub mod transaction;
pub mod transformations;
pub mod variables;

pub use actions::EngineMode;
pub use error::LoadError;
pub use ruleset::{EngineConfig, RuleSet, RuleSetBuilder};
pub use transaction::{
    lossy_string, AnomalyScores, Intervention, LoggedMatch, MatchedRule, PooledTransaction,
    Transaction, TxInput,
};
