//! Request body processors: URLENCODED, MULTIPART, JSON, XML. Each turns a buffered body
//! into arguments (and files, part headers, XML text); a malformed body yields an error
//! message (→ `REQBODY_ERROR`), never a panic.

pub mod json;
pub mod multipart;
pub mod urlencoded;
pub mod xml;

/// A name/value pair (argument, header, cookie).
pub type Pair = (Vec<u8>, Vec<u8>);
