//! What lowband's pages say, in the reader's language: Mozilla's Fluent
//! message files, one directory per language under `catalog/locales/`
//! (`locales/km/pages.ftl`, `locales/en/pages.ftl`, ...), embedded at build
//! time. The edge's teacher pages, the studio and the operator pages all
//! read their words from here, so a translation lives once and a language
//! is added by dropping in a directory.
//!
//! English is the fallback: every message exists in it (a test checks), and
//! a message a language lacks is shown in English rather than not at all.
//! [`choose`] picks the language a request gets.

mod choose;

use std::borrow::Cow;
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::FluentResource;
use unic_langid::LanguageIdentifier;

pub use choose::{choose, Asked, LANG_COOKIE, LANG_PARAM};
/// A message's arguments (`{ $size }`), as pages pass them.
pub use fluent_bundle::FluentArgs;

/// The language every message exists in.
pub const FALLBACK: &str = "en";

/// Every `locales/<tag>/*.ftl`: (tag, [(file name, text)]).
const LOCALES: &[(&str, &[(&str, &str)])] = include!(concat!(env!("OUT_DIR"), "/locales.rs"));

/// One of the languages the messages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lang(usize);

/// The parsed message files of every language.
pub struct Messages {
    languages: Vec<Language>,
    fallback: Lang,
}

struct Language {
    tag: &'static str,
    bundle: FluentBundle<FluentResource>,
    ids: Vec<String>,
}

static MESSAGES: LazyLock<Messages> = LazyLock::new(|| {
    Messages::parse(LOCALES).unwrap_or_else(|e| panic!("the embedded message files: {e}"))
});

/// The messages, parsed once per process. The files are checked by this
/// crate's tests, so the first call cannot fail on a built binary.
pub fn messages() -> &'static Messages {
    &MESSAGES
}

/// A message file that does not parse or clashes with another.
#[derive(Debug, thiserror::Error)]
#[error("locales/{tag}/{file}: {reason}")]
pub struct MessagesError {
    pub tag: String,
    pub file: String,
    pub reason: String,
}

impl Messages {
    /// Parses message files: `(language tag, [(file name, text)])`.
    pub fn parse(locales: &[(&'static str, &[(&str, &str)])]) -> Result<Self, MessagesError> {
        let mut languages = Vec::new();
        for &(tag, files) in locales {
            let fail = |file: &str, reason: String| MessagesError {
                tag: tag.to_owned(),
                file: file.to_owned(),
                reason,
            };
            let id: LanguageIdentifier = tag
                .parse()
                .map_err(|e| fail("", format!("not a language tag: {e}")))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Pages are written left to right in every language lowband has:
            // Unicode isolation marks around each value would only cost bytes.
            bundle.set_use_isolating(false);
            let mut ids = Vec::new();
            for &(file, text) in files {
                let resource = FluentResource::try_new(text.to_owned())
                    .map_err(|(_, errors)| fail(file, format!("{errors:?}")))?;
                ids.extend(resource.entries().filter_map(|entry| match entry {
                    fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                    _ => None,
                }));
                bundle
                    .add_resource(resource)
                    .map_err(|errors| fail(file, format!("{errors:?}")))?;
            }
            languages.push(Language { tag, bundle, ids });
        }
        let fallback = languages
            .iter()
            .position(|l| l.tag == FALLBACK)
            .map(Lang)
            .ok_or_else(|| MessagesError {
                tag: FALLBACK.into(),
                file: String::new(),
                reason: "the fallback language has no messages".into(),
            })?;
        Ok(Self {
            languages,
            fallback,
        })
    }

    /// Every language, in tag order: the choices a language link offers.
    pub fn languages(&self) -> impl Iterator<Item = Lang> + '_ {
        (0..self.languages.len()).map(Lang)
    }

    /// The fallback language.
    pub fn fallback(&self) -> Lang {
        self.fallback
    }

    /// The BCP 47 tag of a language, for `<html lang>` and links.
    pub fn tag(&self, lang: Lang) -> &'static str {
        self.languages[lang.0].tag
    }

    /// The language a tag names: exactly, or by its primary subtag (`km-KH`
    /// is `km`). Case-insensitive, as tags are.
    pub fn find(&self, tag: &str) -> Option<Lang> {
        let primary = |t: &str| t.split(['-', '_']).next().unwrap_or_default().to_owned();
        let exact = self
            .languages
            .iter()
            .position(|l| l.tag.eq_ignore_ascii_case(tag));
        exact
            .or_else(|| {
                let wanted = primary(tag);
                self.languages
                    .iter()
                    .position(|l| primary(l.tag).eq_ignore_ascii_case(&wanted))
            })
            .map(Lang)
    }

    /// A message without arguments.
    pub fn text(&self, lang: Lang, id: &str) -> Cow<'_, str> {
        self.format(lang, id, None)
    }

    /// A message with arguments (`{ $size }`).
    pub fn text_with(&self, lang: Lang, id: &str, args: &FluentArgs) -> Cow<'_, str> {
        self.format(lang, id, Some(args))
    }

    /// The message in `lang`, else in the fallback, else its id: a page
    /// shows a missing message's name rather than nothing (tests keep every
    /// id a page uses in the fallback file).
    fn format(&self, lang: Lang, id: &str, args: Option<&FluentArgs>) -> Cow<'_, str> {
        for lang in [lang, self.fallback] {
            let bundle = &self.languages[lang.0].bundle;
            if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                return bundle.format_pattern(pattern, args, &mut errors);
            }
        }
        Cow::Owned(id.to_owned())
    }

    /// The ids of every message a language has.
    pub fn ids(&self, lang: Lang) -> &[String] {
        &self.languages[lang.0].ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Messages {
        Messages::parse(&[
            (
                "en",
                &[(
                    "pages.ftl",
                    "hello = Hello\nsize = { $mb } MB\nonly-english = Only here\n",
                )],
            ),
            (
                "km",
                &[("pages.ftl", "hello = សួស្ដី\nsize = { $mb } មេកាបៃ\n")],
            ),
        ])
        .unwrap()
    }

    #[test]
    fn messages_come_in_the_language_asked_else_english() {
        let m = sample();
        let km = m.find("km").unwrap();
        let en = m.find("en").unwrap();
        assert_eq!(m.text(km, "hello"), "សួស្ដី");
        assert_eq!(m.text(en, "hello"), "Hello");
        assert_eq!(m.text(km, "only-english"), "Only here");
        assert_eq!(m.text(km, "no-such-message"), "no-such-message");
        let mut args = FluentArgs::new();
        args.set("mb", "1.5");
        assert_eq!(
            m.text_with(km, "size", &args),
            "1.5 មេកាបៃ",
            "no isolation marks"
        );
        assert_eq!(m.tag(km), "km");
    }

    #[test]
    fn tags_match_by_primary_subtag_in_any_case() {
        let m = sample();
        assert_eq!(m.find("km-KH"), m.find("km"));
        assert_eq!(m.find("EN-gb"), m.find("en"));
        assert_eq!(m.find("KM"), m.find("km"));
        for none in ["fr", "", "k", "-", "kmx"] {
            assert_eq!(m.find(none), None, "{none:?}");
        }
    }

    #[test]
    fn a_broken_file_is_named() {
        let e = Messages::parse(&[("en", &[("pages.ftl", "hello = {")])])
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("locales/en/pages.ftl: "), "{e}");
        let e = Messages::parse(&[("km", &[("pages.ftl", "a = b\n")])])
            .err()
            .unwrap();
        assert!(e.to_string().contains("fallback"), "{e}");
    }

    /// The shipped files parse, and every message of every language exists
    /// in the fallback (so a page never shows a message id).
    #[test]
    fn the_shipped_messages_parse_and_english_has_them_all() {
        let m = messages();
        let english = m.ids(m.fallback());
        assert!(!english.is_empty());
        for lang in m.languages() {
            for id in m.ids(lang) {
                assert!(english.contains(id), "{}: {id} is not in en", m.tag(lang));
            }
        }
    }
}
