//! Embeds the message files: every `locales/<language>/*.ftl`, so that a
//! language is added by dropping in a directory, and the binaries carry
//! their messages wherever they run.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("locales");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut languages: Vec<_> = std::fs::read_dir(&root)
        .expect("catalog/locales exists")
        .map(|entry| entry.expect("catalog/locales is readable").path())
        .filter(|path| path.is_dir())
        .collect();
    languages.sort();
    let mut out = String::from("&[\n");
    for dir in languages {
        println!("cargo:rerun-if-changed={}", dir.display());
        let tag = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 language directory");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("a readable language directory")
            .map(|entry| entry.expect("a readable language directory").path())
            .filter(|path| path.extension().is_some_and(|e| e == "ftl"))
            .collect();
        files.sort();
        write!(out, "    ({tag:?}, &[").unwrap();
        for file in files {
            println!("cargo:rerun-if-changed={}", file.display());
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 file name");
            write!(
                out,
                "({name:?}, include_str!({:?})), ",
                file.display().to_string()
            )
            .unwrap();
        }
        out.push_str("]),\n");
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("locales.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
