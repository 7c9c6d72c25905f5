//! The `Content-Type` of an object asked for by key (`/o/<key>`), from the
//! key's extension: a manifest's variants carry their own type, a bare key
//! only its extension.

/// MIME type of an object from its key's extension.
pub fn object_mime(ext: &str) -> &'static str {
    match ext {
        "mp4" => "video/mp4",
        "m4a" => "audio/mp4",
        "webm" => "video/webm",
        "jpg" => "image/jpeg",
        "webp" => "image/webp",
        // Every AVIF a page names is an object (`/o/<key>.avif`).
        "avif" => "image/avif",
        "gif" => "image/gif",
        "png" => "image/png",
        "mp3" => "audio/mpeg",
        "aac" => "audio/aac",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" | "opus" => "audio/ogg",
        "woff2" => "font/woff2",
        "xml" => "application/xml",
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "vtt" => "text/vtt; charset=utf-8",
        "json" => "application/json",
        "m3u8" => "application/vnd.apple.mpegurl",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}
