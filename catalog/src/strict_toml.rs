//! Strict TOML for every settings file lowband reads (profiles, edge
//! settings): a type that denies unknown fields, and an error that names the
//! key path and the line, e.g. `video.rungs[1].colour: unknown field (line 7)`.

use serde::de::DeserializeOwned;

/// Why a TOML text did not parse into the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlError {
    /// Dotted key path (`video.rungs[1].crf`), or `-` for the whole text.
    pub key: String,
    /// What is wrong, with the line when the parser knows it.
    pub reason: String,
}

/// Parses `text` into `T`, naming the failing key and line.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, TomlError> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let key = match e.path().to_string() {
            p if p == "." => "-".to_owned(),
            p => p,
        };
        let inner = e.inner();
        // Lines are counted by the newlines before the span's start, so a key
        // at the start of a line is on that line, not the one before.
        let line = inner
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.matches('\n').count() + 1);
        let reason = match line {
            Some(line) => format!("{} (line {line})", inner.message().trim()),
            None => inner.message().trim().to_owned(),
        };
        TomlError { key, reason }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Settings {
        listen: String,
        limits: Limits,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        connections: u32,
    }

    #[test]
    fn names_the_key_and_the_line_it_starts() {
        let e = from_str::<Settings>("listen = \"a\"\n[limits]\nconections = 3\n").unwrap_err();
        assert_eq!(e.key, "limits.conections");
        assert!(e.reason.contains("unknown field"), "{}", e.reason);
        assert!(e.reason.ends_with("(line 3)"), "{}", e.reason);
        let e = from_str::<Settings>("listen = 4\n[limits]\nconnections = 3\n").unwrap_err();
        assert_eq!(e.key, "listen");
        assert!(e.reason.ends_with("(line 1)"), "{}", e.reason);
    }

    #[test]
    fn broken_syntax_is_an_error_not_a_panic() {
        for text in [
            "listen = ",
            "[limits",
            "\u{0}",
            "listen = \"a\"\nlisten = \"b\"",
        ] {
            assert!(from_str::<Settings>(text).is_err(), "{text:?}");
        }
    }
}
