//! Bearer-token files: who may publish (the upload API) and who may purge
//! (the edge's admin routes). One format for both binaries.
//!
//! One token per line, optionally followed by a name for the logs
//! (`<token> <name>`); blank lines and `#` comments are ignored. A token is
//! at least 16 visible ASCII characters. Tokens are kept only as SHA-256
//! digests and looked up by digest, so a comparison takes the same time
//! whatever the guess and a memory dump does not hold them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::keys::ContentHash;

/// Shortest token accepted: a guessable token is no authentication.
pub const MIN_TOKEN_CHARS: usize = 16;

/// What is wrong with a token file's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokensProblem {
    #[error("line {0}: token shorter than {MIN_TOKEN_CHARS} characters")]
    TooShort(usize),
    #[error("line {0}: token has characters other than visible ASCII")]
    NotVisibleAscii(usize),
    #[error("no tokens (one per line: <token> [name])")]
    Empty,
}

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("token file {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {}: {problem}", file.display())]
    Invalid {
        file: PathBuf,
        problem: TokensProblem,
    },
}

/// The holders of the tokens in one file, by the digest of their token.
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
        Self::parse(&text).map_err(|problem| TokensError::Invalid {
            file: file.to_owned(),
            problem,
        })
    }

    /// Parses a token file's text.
    pub fn parse(text: &str) -> Result<Self, TokensProblem> {
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
                return Err(TokensProblem::TooShort(n + 1));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(TokensProblem::NotVisibleAscii(n + 1));
            }
            let name = if name.is_empty() {
                format!("token on line {}", n + 1)
            } else {
                name.to_owned()
            };
            by_digest.insert(ContentHash::of(token.as_bytes()), name);
        }
        if by_digest.is_empty() {
            return Err(TokensProblem::Empty);
        }
        Ok(Self { by_digest })
    }

    /// True when the file held no token (only [`Tokens::default`] is).
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The holder's name of the bearer token in an `Authorization` value.
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
        assert!(!t.is_empty());
        assert!(Tokens::default().is_empty());
    }

    #[test]
    fn bad_files_say_which_line_and_why() {
        assert_eq!(
            Tokens::parse("short\n").unwrap_err(),
            TokensProblem::TooShort(1)
        );
        assert_eq!(
            Tokens::parse("# c\nabcdefghijklmnop\u{e9}123\n").unwrap_err(),
            TokensProblem::NotVisibleAscii(2)
        );
        assert_eq!(
            Tokens::parse("# only comments\n\n").unwrap_err(),
            TokensProblem::Empty
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "tiny\n").unwrap();
        let e = Tokens::from_file(&file).unwrap_err().to_string();
        assert!(e.contains("tokens: line 1: token shorter than 16"), "{e}");
        let e = Tokens::from_file(&dir.path().join("absent")).unwrap_err();
        assert!(matches!(e, TokensError::Read { .. }), "{e}");
    }
}
