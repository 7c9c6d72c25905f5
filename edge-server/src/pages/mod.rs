//! What the edge writes for a client from a manifest: the teacher's HTML
//! pages and the HLS playlists.
//!
//! The pages are the catalog at `/` ([`catalog`]) and one lesson page per
//! video ([`lesson`]) with its quality picker ([`quality`]). A teacher on a
//! 2G phone must see what each choice costs in data before anything plays,
//! so every page is made from the manifest's measured sizes and weighs a few
//! kilobytes: one HTML response with its CSS inline ([`layout`]), no script,
//! no webfont (the font stack names the Khmer fonts phones and desktops
//! ship), the poster the only image. Everything from a manifest (titles,
//! paths, languages) is escaped: an author's file name cannot break the HTML.
//!
//! Their words come from the catalog's Fluent messages in the reader's
//! language ([`words`]), so a translation is a file in `catalog/locales/`.
//!
//! [`hls`] writes the master and subtitle playlists; [`captions`] finds a
//! caption's WebVTT object for both the pages and the playlists.
//!
//! Everything here is pure (manifest and request signals in, HTML or text
//! out); `routes` does the I/O.

pub mod captions;
pub mod catalog;
pub mod hls;
pub mod layout;
pub mod lesson;
pub mod quality;
pub mod words;
