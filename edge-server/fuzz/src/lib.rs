//! What the fuzz targets share: their inputs are text, one item a line, so
//! that the seed corpora in `corpus/<target>/` read like the unit tests they
//! come from and a crashing input can be read without a decoder.

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// The input's lines, split on `\n` (a trailing `\r` is kept: it is part of
/// whatever the line says, and the parsers must cope with it).
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
}

/// `name: value` as a header, if hyper could have handed it to us (a valid
/// name, a value without CR, LF or NUL); the value keeps any bytes above
/// 0x7f, which `HeaderValue::to_str` then refuses.
pub fn header(line: &[u8]) -> Option<(HeaderName, HeaderValue)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = HeaderName::from_bytes(&line[..colon]).ok()?;
    let value = line[colon + 1..].trim_ascii_start();
    Some((name, HeaderValue::from_bytes(value).ok()?))
}

/// Every `name: value` line of `lines` as one header map, repeated names
/// appended in order.
pub fn headers<'a>(lines: impl Iterator<Item = &'a [u8]>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in lines.filter_map(header) {
        map.append(name, value);
    }
    map
}
