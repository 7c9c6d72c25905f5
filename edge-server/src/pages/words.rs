//! The words of the teacher's pages, in the reader's language: the
//! catalog's Fluent messages (`catalog/locales/`), in the language
//! `lowband_catalog::i18n::choose` picks for a request.

use std::borrow::Cow;

use http::header::{HeaderMap, ACCEPT_LANGUAGE};
use lowband_catalog::i18n::{self, Asked, FluentArgs, Lang, Messages, LANG_COOKIE, LANG_PARAM};

use crate::choose::request::{cookies, query_values};

/// What a page's headers add to `Vary`: the language follows the browser's.
pub const VARY_LANGUAGE: &str = "Accept-Language";

/// The messages in one language.
#[derive(Clone, Copy)]
pub struct Words {
    messages: &'static Messages,
    lang: Lang,
}

impl Words {
    /// The language a request asks for (its language link, cookie or
    /// browser), else the module's.
    pub fn for_request(headers: &HeaderMap, query: Option<&str>, module: Option<&str>) -> Self {
        let link = query_values(query, LANG_PARAM).next();
        let cookie = cookies(headers).find_map(|(k, v)| (k == LANG_COOKIE).then_some(v));
        let accept_language = headers.get(ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        let messages = i18n::messages();
        let asked = Asked {
            link: link.as_deref(),
            cookie,
            accept_language,
            module,
        };
        Self {
            messages,
            lang: i18n::choose(messages, &asked),
        }
    }

    /// The fallback language's words, for tests and pages with no request.
    pub fn fallback() -> Self {
        let messages = i18n::messages();
        Self {
            messages,
            lang: messages.fallback(),
        }
    }

    /// The language's tag, for `lang` attributes.
    pub fn lang(&self) -> &'static str {
        self.messages.tag(self.lang)
    }

    /// A message without arguments.
    pub fn get(&self, id: &str) -> Cow<'static, str> {
        self.messages.text(self.lang, id)
    }

    /// A message with text arguments.
    pub fn with(&self, id: &str, args: &[(&'static str, &str)]) -> Cow<'static, str> {
        let mut fluent = FluentArgs::new();
        for &(name, value) in args {
            fluent.set(name, value.to_owned());
        }
        self.messages.text_with(self.lang, id, &fluent)
    }

    /// A message with a count, which its plural forms are chosen by.
    pub fn count(&self, id: &str, count: usize) -> Cow<'static, str> {
        let mut fluent = FluentArgs::new();
        fluent.set("count", count);
        self.messages.text_with(self.lang, id, &fluent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn english_words_with_arguments_and_plurals() {
        let w = Words::fallback();
        assert_eq!(w.lang(), "en");
        assert_eq!(w.get("picker-submit"), "Use this quality");
        assert_eq!(
            w.with("lesson-costs", &[("costs", "Audio only 0.3 MB")]),
            "Data for the whole lesson: Audio only 0.3 MB"
        );
        assert_eq!(w.count("catalog-lessons", 1), "1 lesson");
        assert_eq!(w.count("catalog-lessons", 3), "3 lessons");
    }

    #[test]
    fn a_request_in_a_language_lowband_lacks_gets_the_fallback() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("fr-FR,fr;q=0.9"));
        headers.insert("cookie", HeaderValue::from_static("lowband_lang=de"));
        let w = Words::for_request(&headers, Some("lang=xx"), Some("th"));
        assert_eq!(w.lang(), "en");
    }
}
