//! Bearer tokens from a file: one token per line, optionally followed by a
//! name for the logs (`<token> <name>`); blank lines and `#` comments are
//! ignored. Tokens are kept only as SHA-256 digests and looked up by digest,
//! so a comparison takes the same time whatever the guess.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lowband_catalog::ContentHash;

/// Shortest token accepted: a guessable token is no authentication.
const MIN_TOKEN_CHARS: usize = 16;

#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct TokensError {
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

/// The authors allowed to publish.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_digest: HashMap<ContentHash, String>,
}

impl Tokens {
    pub fn from_file(file: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(file).map_err(|e| TokensError {
            file: file.to_owned(),
            line: 0,
            reason: e.to_string(),
        })?;
        Self::parse(&text).map_err(|(line, reason)| TokensError {
            file: file.to_owned(),
            line,
            reason,
        })
    }

    /// Parses the file's text; an error gives the line (from 1) and why.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
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
                return Err((
                    n + 1,
                    format!("token shorter than {MIN_TOKEN_CHARS} characters"),
                ));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err((
                    n + 1,
                    "token has characters other than visible ASCII".into(),
                ));
            }
            let name = if name.is_empty() {
                format!("token on line {}", n + 1)
            } else {
                name.to_owned()
            };
            by_digest.insert(ContentHash::of(token.as_bytes()), name);
        }
        if by_digest.is_empty() {
            return Err((0, "no tokens".into()));
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
        assert_eq!(Tokens::parse("short\n").unwrap_err().0, 1);
        assert!(Tokens::parse("# only comments\n")
            .unwrap_err()
            .1
            .contains("no tokens"));
    }
}
