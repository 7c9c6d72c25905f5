//! Which language a request gets: the one its reader picked (the language
//! link, remembered in a cookie), else the best their browser asks for
//! (`Accept-Language`, by weight), else the module's own, else the fallback.
//! All of these arrive from clients, so parsing is bounded and never fails.

use super::{Lang, Messages};

/// Cookie the language link sets, so the choice holds on later pages.
pub const LANG_COOKIE: &str = "lowband_lang";

/// Query parameter of the language link (`?lang=km`).
pub const LANG_PARAM: &str = "lang";

/// Language ranges of an `Accept-Language` value looked at, at most: a
/// browser sends a handful; a longer list is someone else's.
const MAX_RANGES: usize = 16;

/// What a request and its module say about the language, strongest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    /// `?lang=` of the language link on this request.
    pub link: Option<&'a str>,
    /// The [`LANG_COOKIE`] value.
    pub cookie: Option<&'a str>,
    /// The `Accept-Language` header.
    pub accept_language: Option<&'a str>,
    /// The module's `language` (from its `module.toml`).
    pub module: Option<&'a str>,
}

/// The language to answer in.
pub fn choose(messages: &Messages, asked: &Asked<'_>) -> Lang {
    let named = |tag: Option<&str>| tag.and_then(|t| messages.find(t.trim()));
    named(asked.link)
        .or_else(|| named(asked.cookie))
        .or_else(|| {
            let header = asked.accept_language?;
            ranked(header)
                .into_iter()
                .find_map(|tag| messages.find(tag))
        })
        .or_else(|| named(asked.module))
        .unwrap_or(messages.fallback())
}

/// The language ranges of an `Accept-Language` value, highest weight first
/// (RFC 9110 §12.5.4); equal weights keep their order, `q=0` means "not
/// this one" and `*` adds nothing a fallback does not.
fn ranked(header: &str) -> Vec<&str> {
    let mut ranges: Vec<(&str, u16)> = header
        .split(',')
        .take(MAX_RANGES)
        .filter_map(|item| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1000), weight)?;
            (q > 0 && !tag.is_empty() && tag != "*").then_some((tag, q))
        })
        .collect();
    ranges.sort_by_key(|&(_, q)| std::cmp::Reverse(q));
    ranges.into_iter().map(|(tag, _)| tag).collect()
}

/// A weight `0`, `0.x`..`0.xxx` or `1`, `1.0`.. in thousandths; `None` for
/// anything else, which drops the range.
fn weight(q: &str) -> Option<u16> {
    let (whole, fraction) = q.trim().split_once('.').unwrap_or((q.trim(), ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn messages() -> Messages {
        Messages::parse(&[
            ("en", &[("a.ftl", "a = A\n")]),
            ("km", &[("a.ftl", "a = ក\n")]),
        ])
        .unwrap()
    }

    fn tag(asked: Asked<'_>) -> &'static str {
        let m = messages();
        let lang = choose(&m, &asked);
        m.tag(lang)
    }

    #[test]
    fn the_link_then_the_cookie_then_the_browser_then_the_module() {
        let all = Asked {
            link: Some("km"),
            cookie: Some("en"),
            accept_language: Some("en"),
            module: Some("en"),
        };
        assert_eq!(tag(all), "km");
        assert_eq!(tag(Asked { link: None, ..all }), "en");
        let browser = Asked {
            link: None,
            cookie: None,
            accept_language: Some("km-KH,km;q=0.9,en-US;q=0.8"),
            module: Some("en"),
        };
        assert_eq!(tag(browser), "km");
        assert_eq!(
            tag(Asked {
                accept_language: Some("fr"),
                module: Some("km"),
                ..browser
            }),
            "km"
        );
        assert_eq!(tag(Asked::default()), "en");
        // A link or cookie naming a language lowband lacks falls through.
        assert_eq!(
            tag(Asked {
                link: Some("fr"),
                cookie: Some("xx"),
                module: Some("km"),
                ..Asked::default()
            }),
            "km"
        );
    }

    #[test]
    fn accept_language_goes_by_weight_not_order() {
        assert_eq!(ranked("en;q=0.1, km;q=0.9"), ["km", "en"]);
        assert_eq!(ranked("fr, km;q=0.5, en;q=0.5"), ["fr", "km", "en"]);
        assert_eq!(ranked("km;q=0, en"), ["en"], "q=0 refuses a language");
        assert_eq!(ranked("*, km;q=0.2"), ["km"]);
        assert_eq!(ranked("en;q=2, km;q=0.5x, fr;q=1.000, de;q=0.0001"), ["fr"]);
        assert!(ranked("").is_empty());
        assert!(ranked(",,;;q=,").is_empty());
    }

    proptest! {
        /// Any header, cookie or link gives one of the languages, and a
        /// header never costs more than its first ranges.
        #[test]
        fn hostile_values_always_give_a_language(
            link in proptest::option::of("\\PC{0,40}"),
            cookie in proptest::option::of("\\PC{0,40}"),
            header in proptest::option::of("[a-zA-Z0-9=;,.*\\- ]{0,400}"),
        ) {
            let m = messages();
            let asked = Asked {
                link: link.as_deref(),
                cookie: cookie.as_deref(),
                accept_language: header.as_deref(),
                module: None,
            };
            let lang = choose(&m, &asked);
            prop_assert!(m.languages().any(|l| l == lang));
            if let Some(h) = &header {
                prop_assert!(ranked(h).len() <= MAX_RANGES);
            }
        }
    }
}
