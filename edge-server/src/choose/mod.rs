//! Choosing what a client gets: pure functions of the request and the manifest.
//!
//! [`signals`] parses what a request says about its client (hints, `Accept`,
//! the picker's cookie), [`estimate`] keeps what each client's connections
//! measured (read from the socket by [`probe`], the only effect here),
//! (a speed or a round trip becomes a tier by the catalog's thresholds,
//! shared by both), [`select`] picks the
//! variant of an asset, and [`transform`] honours `Cache-Control: no-transform`.
//! [`request`] reads query parameters and cookies, for the signals and the
//! lesson page's quality picker.

pub mod estimate;
pub mod probe;
pub mod request;
pub mod select;
pub mod signals;
pub mod transform;
