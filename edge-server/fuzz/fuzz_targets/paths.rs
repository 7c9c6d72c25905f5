//! `paths::route` on any request path: whatever it accepts cannot leave its
//! module, and an asset path routes back to itself once re-encoded.
//!
//! Input: the path as the request line carries it (`/m/m1/%2e%2e/x`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use lowband_catalog::{ModuleId, ObjectKey};
use lowband_edge::http::error::EdgeError;
use lowband_edge::routes::table::{route, Route};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// What must be escaped for a segment to stay one segment of a path.
const SEGMENT: &AsciiSet = &CONTROLS.add(b' ').add(b'%').add(b'/').add(b'?').add(b'#');

fn assert_module(id: &ModuleId) {
    let s = id.as_str();
    assert_eq!(ModuleId::parse(s).ok().as_ref(), Some(id));
    assert!(
        !s.contains("..") && !s.contains(['/', '\\', '\0', '%']),
        "{s:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let routed = route(&raw);
    if raw.len() > 2048 {
        assert!(
            matches!(routed, Err(EdgeError::BadRequest(_))),
            "{} bytes",
            raw.len()
        );
    }
    match routed {
        Err(EdgeError::BadRequest(_) | EdgeError::NotFound) => {}
        Err(e) => panic!("{raw:?}: unexpected error {e:?}"),
        Ok(Route::Catalog | Route::Health | Route::Ready | Route::Metrics | Route::Index) => {}
        Ok(Route::ModuleApi(id)) => assert_module(&id),
        Ok(Route::Purge(id)) => {
            assert!(raw.starts_with("/admin/v1/purge/"), "{raw:?}");
            assert_module(&id);
        }
        Ok(Route::Object(key)) => {
            let s = key.to_string();
            assert_eq!(raw.strip_prefix("/o/"), Some(s.as_str()));
            assert_eq!(ObjectKey::parse(&s).ok(), Some(key));
            assert!(!s.contains("..") && !s.contains(['\\', '\0', '%']), "{s:?}");
        }
        Ok(Route::Asset { module, path }) => {
            assert_module(&module);
            let body = path.strip_suffix('/').unwrap_or(&path);
            if !body.is_empty() {
                for segment in body.split('/') {
                    assert!(!matches!(segment, "" | "." | ".."), "{raw:?} -> {path:?}");
                    assert!(
                        !segment.contains(|c: char| c == '\\' || c.is_control()),
                        "{raw:?} -> {path:?}"
                    );
                }
            }
            // The normal form is a fixed point: encoded again, it routes to itself.
            let encoded: Vec<String> = path
                .split('/')
                .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
                .collect();
            let again = format!("/m/{module}/{}", encoded.join("/"));
            if again.len() <= 2048 {
                assert_eq!(
                    route(&again).ok(),
                    Some(Route::Asset { module, path }),
                    "{raw:?} re-encoded as {again:?}"
                );
            }
        }
    }
});
