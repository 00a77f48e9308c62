//! Baits: values laid into real traffic that only an attacker would touch.

mod choice;
pub mod comment;
pub mod cookie;
pub mod credentials;
pub mod form_field;
pub mod html;
pub mod kind;
pub mod paths;
pub mod robots;
pub mod secret;
pub mod token;
pub mod urlencoded;
