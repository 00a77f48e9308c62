//! Baits: values laid into real traffic that only an attacker would touch.

pub mod kind;
pub mod secret;
pub mod token;
