//! Bearer tokens from a file: one token per line, optionally followed by a
//! name for the logs (`<token> <name>`); blank lines and `#` comments are
//! ignored. Tokens are kept only as SHA-256 digests and looked up by digest,
//! so a comparison takes the same time whatever the guess.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lowband_catalog::ContentHash;

/// Shortest token accepted: a guessable token is no authentication.
const MIN_TOKEN_CHARS: usize = 16;

/// Why the tokens file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("{file}:0: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{}: {}", .source.line, .source.problem)]
    Parse {
        file: PathBuf,
        #[source]
        source: ParseError,
    },
}

/// What is wrong in the text of a tokens file, and on which line (from 1;
/// 0 for the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ParseError {
    pub line: usize,
    pub problem: TokenProblem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("token shorter than {MIN_TOKEN_CHARS} characters")]
    TooShort,
    #[error("token has characters other than visible ASCII")]
    NotVisibleAscii,
    #[error("no tokens")]
    NoTokens,
}

/// The authors allowed to publish.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_digest: HashMap<ContentHash, String>,
}

impl Tokens {
    pub fn from_file(file: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(file).map_err(|source| TokensError::Read {
            file: file.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|source| TokensError::Parse {
            file: file.to_owned(),
            source,
        })
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let fail = |line, problem| ParseError { line, problem };
        let mut by_digest = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (token, name) = line
                .split_once(char::is_whitespace)
                .map_or((line, ""), |(t, n)| (t, n.trim()));
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(fail(n + 1, TokenProblem::TooShort));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(fail(n + 1, TokenProblem::NotVisibleAscii));
            }
            let name = if name.is_empty() {
                format!("token on line {}", n + 1)
            } else {
                name.to_owned()
            };
            by_digest.insert(ContentHash::of(token.as_bytes()), name);
        }
        if by_digest.is_empty() {
            return Err(fail(0, TokenProblem::NoTokens));
        }
        Ok(Self { by_digest })
    }

    /// The name of the author an `Authorization` header value belongs to.
    pub fn check(&self, authorization: Option<&[u8]>) -> Option<&str> {
        let value = std::str::from_utf8(authorization?).ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.by_digest
            .get(&ContentHash::of(token.trim().as_bytes()))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_check() {
        let t = Tokens::parse("# authors\n\nabcdefghijklmnop0123 sokha\nqrstuvwxyz9876543210\n")
            .unwrap();
        assert_eq!(t.check(Some(b"Bearer abcdefghijklmnop0123")), Some("sokha"));
        assert_eq!(
            t.check(Some(b"bearer qrstuvwxyz9876543210")),
            Some("token on line 4")
        );
        for bad in [
            &b"Bearer nope"[..],
            b"Basic abcdefghijklmnop0123",
            b"Bearer",
            b"",
            b"\xff\xfe",
        ] {
            assert_eq!(t.check(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(t.check(None), None);
        assert_eq!(Tokens::parse("short\n").unwrap_err().line, 1);
        assert!(Tokens::parse("# only comments\n")
            .unwrap_err()
            .to_string()
            .contains("no tokens"));
        let file = Path::new("/etc/lowband/tokens");
        let e = TokensError::Parse {
            file: file.to_owned(),
            source: Tokens::parse("ok-but-\x01-0123456789\n").unwrap_err(),
        };
        assert_eq!(
            e.to_string(),
            "/etc/lowband/tokens:1: token has characters other than visible ASCII"
        );
    }
}
