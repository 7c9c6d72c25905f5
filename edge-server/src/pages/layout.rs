//! What every page shares: the document around it with its inline style
//! and font stack, and how a lesson's name and length are shown.

use std::sync::LazyLock;

use maud::{html, Markup, PreEscaped};

/// Khmer-capable fonts that phones (Noto Sans Khmer on Android), Windows
/// (Khmer UI, Leelawadee UI) and Debian (Khmer OS) have, before the generic
/// family: the page downloads no font.
const FONTS: &str = "system-ui,\"Noto Sans Khmer\",\"Khmer OS\",\"Khmer OS System\",\"Khmer UI\",\"Leelawadee UI\",Hanuman,sans-serif";

/// The pages' only style, inline. Each page also names an empty icon
/// (`data:,`): no favicon request, which on 2G costs a round trip for a 404.
const STYLE: &str = "body{margin:0 auto;max-width:42rem;padding:0 .75rem 2rem;color:#1c2733;background:#fbfaf6;line-height:1.6}\
body,button,input{font-family:FONTS}\
a{color:#1d4e89}h1{font-size:1.35rem;margin:.5rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .3rem}\
nav{padding:.5rem 0;font-size:.95rem}\
video{display:block;width:100%;height:auto;aspect-ratio:16/9;background:#ddd center/cover no-repeat}\
.now{margin:.4rem 0;font-weight:600}.cost{color:#4a5563}\
fieldset{border:1px solid #d8d4c8;border-radius:6px;padding:.3rem .7rem}\
label{display:block;padding:.35rem 0}small{color:#4a5563}\
button{font-size:1rem;margin-top:.5rem;padding:.45rem 1.1rem;border:0;border-radius:4px;background:#1d4e89;color:#fff}\
ul{padding-left:1.2rem}li{margin:.3rem 0}";

/// [`STYLE`] with its font stack, made once.
static STYLE_WITH_FONTS: LazyLock<String> = LazyLock::new(|| STYLE.replace("FONTS", FONTS));

/// A whole page: `body` in a document of language `lang`, with its
/// description, title and the pages' style.
pub fn document(lang: &str, description: &str, title: &str, body: &Markup) -> Markup {
    html! {
        (PreEscaped("<!doctype html>"))
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                link rel="icon" href="data:,";
                meta name="description" content=(description);
                title { (title) }
                style { (PreEscaped(STYLE_WITH_FONTS.as_str())) }
            }
            body { (body) }
        }
    }
}

/// A lesson's name from its path: the file name without its extension.
pub fn lesson_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rsplit_once('.').map_or(file, |(s, _)| s).to_owned()
}

/// `1:12`, `1:02:05`.
pub fn clock(seconds: f64) -> String {
    let s = seconds.round().max(0.0) as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}
