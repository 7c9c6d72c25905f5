//! Where a link in a page points: outside the module, or at one of its paths.
//!
//! Relative references resolve against the page's directory the way a
//! browser would (WHATWG URL: `\` is `/`, `%2e` is `.`, surrounding spaces
//! are dropped), but inside the module only: a `../` that climbs above the
//! module root is an error, because the edge serves nothing there and the
//! link would break (or reach another module) once published. Anything with
//! a scheme, `//host`, a root-relative `/path` (the edge's own routes) or a
//! bare `#fragment` is left as written. Pure: no I/O.

use percent_encoding::percent_decode_str;

/// What a link refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Left as written: another site, a scheme (`mailto:`, `data:`,
    /// `javascript:`), a root-relative path or a fragment of this page.
    Untouched,
    /// A path inside the module (`img/cover.jpg`), decoded, with whatever
    /// query and fragment followed it (`?x=1#top`, kept as written).
    Module { path: String, suffix: String },
}

/// A relative link that leaves the module root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("link {link:?} leaves the module (links must stay inside the module directory)")]
pub struct Escapes {
    pub link: String,
}

/// Resolves `link`, found in the page at module path `page`.
pub fn resolve(page: &str, link: &str) -> Result<Target, Escapes> {
    let trimmed = link.trim_matches(|c: char| c <= ' ');
    let cleaned: String = trimmed
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect();
    if cleaned.is_empty()
        || cleaned.starts_with('#')
        || cleaned.starts_with('/')
        || has_scheme(&cleaned)
    {
        return Ok(Target::Untouched);
    }
    let split = cleaned.find(['?', '#']).unwrap_or(cleaned.len());
    let (path_part, suffix) = cleaned.split_at(split);
    if path_part.is_empty() {
        // `?query` alone: this page with another query; nothing to resolve.
        return Ok(Target::Untouched);
    }

    let mut segments: Vec<String> = match page.rsplit_once('/') {
        Some((dir, _)) => dir.split('/').map(str::to_owned).collect(),
        None => Vec::new(),
    };
    let parts: Vec<&str> = path_part.split('/').collect();
    let last = parts.len() - 1;
    for (i, raw) in parts.iter().enumerate() {
        let decoded = percent_decode_str(raw).decode_utf8_lossy().into_owned();
        match decoded.as_str() {
            "." | "" => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(Escapes {
                        link: link.to_owned(),
                    });
                }
            }
            _ => segments.push(decoded.clone()),
        }
        // `dir/` and `dir/.` name the directory itself: its index page.
        if i == last && matches!(decoded.as_str(), "" | "." | "..") {
            segments.push(String::new());
        }
    }
    let mut path = segments.join("/");
    if path.is_empty() || path.ends_with('/') {
        path.push_str("index.html");
    }
    Ok(Target::Module {
        path,
        suffix: suffix.to_owned(),
    })
}

/// `scheme:` per WHATWG: a letter, then letters, digits, `+`, `-`, `.`.
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(page: &str, link: &str) -> (String, String) {
        match resolve(page, link) {
            Ok(Target::Module { path, suffix }) => (path, suffix),
            other => panic!("{link}: {other:?}"),
        }
    }

    #[test]
    fn relative_links_resolve_against_the_page() {
        assert_eq!(module("index.html", "img/a.jpg").0, "img/a.jpg");
        assert_eq!(module("lessons/x.html", "../img/a.jpg").0, "img/a.jpg");
        assert_eq!(module("lessons/x.html", "./b.html").0, "lessons/b.html");
        assert_eq!(module("a/b/c.html", "../../d.css").0, "d.css");
        assert_eq!(
            module("index.html", "img/my%20photo.jpg?v=2#top"),
            ("img/my photo.jpg".into(), "?v=2#top".into())
        );
        assert_eq!(
            module("index.html", " lessons\\x.html ").0,
            "lessons/x.html"
        );
        assert_eq!(module("lessons/x.html", "..").0, "index.html");
        assert_eq!(module("index.html", "lessons/").0, "lessons/index.html");
    }

    #[test]
    fn leaving_the_module_is_an_error() {
        for link in [
            "../secret.html",
            "img/../../x.jpg",
            "%2e%2e/x.jpg",
            ".%2E/x",
            "..\\x",
        ] {
            assert_eq!(
                resolve("index.html", link),
                Err(Escapes { link: link.into() }),
                "{link}"
            );
        }
        assert!(resolve("lessons/a.html", "../../x").is_err());
    }

    #[test]
    fn other_sites_schemes_and_fragments_are_left_alone() {
        for link in [
            "https://example.org/a.jpg",
            "//cdn.example.org/x.js",
            "mailto:a@b.c",
            "javascript:alert(1)",
            " JavaScript:void(0)",
            "data:image/png;base64,AAAA",
            "#answers",
            "/",
            "?page=2",
            "",
        ] {
            assert_eq!(resolve("index.html", link), Ok(Target::Untouched), "{link}");
        }
    }
}
