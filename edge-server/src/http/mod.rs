//! HTTP itself, apart from what lowband serves over it.
//!
//! The bottom layer of the edge: nothing here knows lowband's routes or
//! state. [`tls`] loads the identity the server (`crate::server`) offers;
//! [`body`] makes
//! and meters response bodies; [`range`], [`conditional`] and
//! [`multipart`] are the pure RFC 9110 rules for byte ranges, validators
//! and `multipart/byteranges`; [`response`] is how responses are made and
//! cached; [`error`] is the one place where errors become responses.

pub mod body;
pub mod conditional;
pub mod error;
pub mod multipart;
pub mod range;
pub mod response;
pub mod tls;
