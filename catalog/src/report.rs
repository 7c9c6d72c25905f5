//! How both binaries tell an error on one line: the error, then each cause
//! it does not already say. lowband's error messages include their cause's
//! text (so a log line read alone is whole), and a context a binary adds
//! does not; printing the whole chain would say most causes twice.

use std::error::Error;

/// `e` and its causes on one line, each said once. A cause told over
/// several lines (a TOML error with its snippet) adds its first.
pub fn one_line(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let told = c.to_string();
        let first = told.lines().next().unwrap_or_default();
        if !first.is_empty() && !text.contains(first) {
            text.push_str(": ");
            text.push_str(first);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{what}")]
    struct Layer {
        what: String,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layer(what: &str, source: Option<Layer>) -> Layer {
        Layer {
            what: what.into(),
            source: source.map(Box::new),
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = layer("No such file or directory (os error 2)", None);
        let told = layer(
            "token file /x: No such file or directory (os error 2)",
            Some(io),
        );
        let context = layer("configuration: admin_token_file", Some(told));
        assert_eq!(
            one_line(&context),
            "configuration: admin_token_file: token file /x: No such file or directory (os error 2)"
        );
        let snippet = layer("TOML parse error at line 1, column 3\n  |\n1 | a =\n", None);
        assert_eq!(
            one_line(&layer("module.toml", Some(snippet))),
            "module.toml: TOML parse error at line 1, column 3"
        );
    }
}
