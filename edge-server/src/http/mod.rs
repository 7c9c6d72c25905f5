//! HTTP itself, apart from what lowband serves over it.
//!
//! [`server`] runs the port (HTTP/1.1 and HTTP/2, [`tls`] when configured)
//! and drives each connection within its limits ([`conn`]); [`body`] makes
//! and meters response bodies; [`range`], [`conditional`] and
//! [`multipart`] are the pure RFC 9110 rules for byte ranges, validators
//! and `multipart/byteranges`; [`response`] is how responses are made and
//! cached; [`error`] is the one place where errors become responses.

pub mod body;
pub mod conditional;
pub mod conn;
pub mod error;
pub mod multipart;
pub mod range;
pub mod response;
pub mod server;
pub mod tls;
