//! Stored objects, sent: the store side of every response that carries one.
//!
//! [`prepared`] makes, once per manifest, the headers each variant is always
//! sent with; [`files`] reads the objects of a `file://` store (or a cache
//! directory) straight from disk, keeping hot descriptors, small objects and
//! mappings of large ones ([`mapped`]); [`send`] answers with an object:
//! validators, preconditions, ranges, and a body streamed with bounded memory
//! from disk, the cache or the store. An object's type comes from its key's
//! extension through the catalog's one MIME table.

pub mod files;
pub mod mapped;
pub mod prepared;
pub mod send;
