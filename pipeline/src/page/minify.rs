//! Minification of pages (with their inline CSS and JS) by minify-html.
//!
//! minify-html keeps text as written (it only collapses ASCII whitespace the
//! way a browser renders it), minifies `<style>` with lightningcss and
//! `<script>` with oxc, and falls back to the trimmed original for a style
//! or script it cannot parse. It is used in its spec-compliant mode: quoted
//! attributes where needed, doctype and entities kept valid.
//!
//! Standalone stylesheets and scripts go through the same two minifiers
//! directly ([`css`], [`js`]); a file either fails to parse is kept as is.
//!
//! minify-html parses recursively: elements nested thousands deep would
//! overflow the stack, which no `catch_unwind` can stop. Pages nested deeper
//! than [`MAX_DEPTH`] (browsers stop building the tree at 512) are kept
//! unminified; a panic inside the minifier also leaves the page unminified.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Deepest element nesting handed to the minifier.
pub const MAX_DEPTH: usize = 512;

/// The minified page, or the page as given when it cannot be minified safely.
pub fn html(page: &str) -> String {
    if nesting_depth(page) > MAX_DEPTH {
        tracing::warn!(
            depth_over = MAX_DEPTH,
            "page nested too deep to minify; kept as is"
        );
        return page.to_owned();
    }
    let mut cfg = minify_html::Cfg::new();
    cfg.minify_css = true;
    cfg.minify_js = true;
    let input = page.as_bytes();
    match catch_unwind(AssertUnwindSafe(|| minify_html::minify(input, &cfg))) {
        Ok(out) => match String::from_utf8(out) {
            Ok(s) if s.len() <= page.len() => s,
            _ => page.to_owned(),
        },
        Err(_) => {
            tracing::warn!("the minifier panicked on a page; kept as is");
            page.to_owned()
        }
    }
}

/// A stylesheet minified by lightningcss, or `None` if it does not parse.
pub fn css(text: &str) -> Option<String> {
    use lightningcss::stylesheet::{MinifyOptions, ParserOptions, PrinterOptions, StyleSheet};
    let mut sheet = StyleSheet::parse(text, ParserOptions::default()).ok()?;
    sheet.minify(MinifyOptions::default()).ok()?;
    let printed = sheet
        .to_css(PrinterOptions {
            minify: true,
            ..PrinterOptions::default()
        })
        .ok()?;
    Some(printed.code)
}

/// A classic script minified by oxc as minify-html does for inline ones
/// (safest compression; top-level names kept, since other scripts of the
/// page share them), or `None` if it does not parse.
pub fn js(text: &str) -> Option<String> {
    use oxc_minifier::{CompressOptions, MangleOptions, Minifier, MinifierOptions};
    let allocator = oxc_allocator::Allocator::default();
    let parsed = oxc_parser::Parser::new(&allocator, text, oxc_span::SourceType::default()).parse();
    if !parsed.errors.is_empty() || parsed.panicked {
        return None;
    }
    let mut program = parsed.program;
    Minifier::new(MinifierOptions {
        mangle: Some(MangleOptions::default()),
        compress: Some(CompressOptions::safest()),
    })
    .minify(&allocator, &mut program);
    let code = oxc_codegen::Codegen::new()
        .with_options(oxc_codegen::CodegenOptions {
            minify: true,
            ..oxc_codegen::CodegenOptions::default()
        })
        .build(&program)
        .code;
    Some(code)
}

/// An upper bound on element nesting: start tags minus end tags, counted
/// without any notion of implied end tags or void elements beyond the
/// common ones, so it over-counts sloppy HTML and never under-counts.
fn nesting_depth(page: &str) -> usize {
    const VOID: [&str; 14] = [
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "param",
    ];
    // Elements whose end tag authors often leave out: each new one closes the last.
    const IMPLIED: [&str; 8] = ["p", "li", "dt", "dd", "tr", "td", "th", "option"];
    let bytes = page.as_bytes();
    let (mut depth, mut max) = (0usize, 0usize);
    let mut open_implied: Vec<usize> = Vec::new();
    let mut i = 0;
    while let Some(off) = memchr(b'<', &bytes[i..]) {
        i += off + 1;
        let closing = bytes.get(i) == Some(&b'/');
        let start = i + usize::from(closing);
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .map_or(bytes.len(), |n| start + n);
        if end == start {
            continue;
        }
        let name = page[start..end].to_ascii_lowercase();
        if VOID.contains(&name.as_str()) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
            if IMPLIED.contains(&name.as_str()) {
                open_implied.pop();
            }
        } else if IMPLIED.contains(&name.as_str()) && open_implied.last() == Some(&depth) {
            // `<li>a<li>b`: the second closes the first; depth unchanged.
        } else {
            depth += 1;
            if IMPLIED.contains(&name.as_str()) {
                open_implied.push(depth);
            }
            max = max.max(depth);
        }
    }
    max
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|b| *b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nesting_not_length() {
        assert_eq!(nesting_depth("<p>a<p>b<p>c"), 1);
        assert_eq!(nesting_depth("<ul><li>a<li>b</ul>"), 2);
        assert_eq!(nesting_depth("<div><img><br><div></div></div>"), 2);
        assert_eq!(nesting_depth(&"<div>".repeat(10_000)), 10_000);
    }

    #[test]
    fn standalone_css_and_js() {
        let sheet = "/* layout */\nbody {\n  margin : 0px ;\n  color: #ffffff;\n}\n";
        assert_eq!(css(sheet).as_deref(), Some("body{color:#fff;margin:0}"));
        let script = "// greet\nfunction greet(name) {\n  var message = 'សួស្តី ' + name;\n  return message;\n}\n";
        let out = js(script).unwrap();
        assert!(
            out.len() < script.len() && out.contains("function greet("),
            "{out}"
        );
        assert!(out.contains("សួស្តី "), "{out}");
        assert_eq!(js("function ("), None);
    }

    #[test]
    fn minifies_and_keeps_text() {
        let page = "<!doctype html>\n<html lang=\"km\">\n<head>\n  <style>\n  p { color : red ; }\n  </style>\n</head>\n<body>\n  <p>សួស្តី   ពិភពលោក</p>\n  <script>\n  var answer = 1 + 1;\n  </script>\n</body>\n</html>\n";
        let out = html(page);
        assert!(out.len() < page.len(), "{out}");
        assert!(out.contains("សួស្តី ពិភពលោក"), "{out}");
        assert!(out.contains("p{color:red}"), "{out}");
    }
}
