//! What the edge reads from a request's query and cookies (a chosen tier,
//! AV1, the quality picker's answer), each parsed in one place.

use std::borrow::Cow;

use http::header::{HeaderMap, COOKIE};

/// The values of `name` in a query string, in order, decoded as a form
/// submits them (`%xx`, `+` for a space); a name without `=` has an empty value.
pub fn query_values<'a>(
    query: Option<&'a str>,
    name: &'a str,
) -> impl Iterator<Item = Cow<'a, str>> + 'a {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The request's cookies: the `name=value` pairs of every `Cookie` header,
/// in order, each value without the quotes it may be sent in (RFC 6265 §4.1.1).
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            Some((name, value.trim_matches('"')))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn first(query: &str, name: &str) -> Option<String> {
        query_values(Some(query), name).next().map(Cow::into_owned)
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(first("a=1&v=144p&q=2g", "v").as_deref(), Some("144p"));
        assert_eq!(first("v=a%20b+c", "v").as_deref(), Some("a b c"));
        assert_eq!(first("x=1", "v"), None);
        assert_eq!(first("v&x=1", "v").as_deref(), Some(""));
        assert_eq!(query_values(None, "v").count(), 0);
        let all: Vec<_> = query_values(Some("t=&t=2g"), "t").collect();
        assert_eq!(all, ["", "2g"]);
    }

    #[test]
    fn cookies_of_every_header() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; b=\"two\""));
        h.append(COOKIE, HeaderValue::from_static("junk; c=3"));
        let all: Vec<_> = cookies(&h).collect();
        assert_eq!(all, [("a", "1"), ("b", "two"), ("c", "3")]);
    }
}
