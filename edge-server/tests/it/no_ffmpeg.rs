//! A cache node must run without FFmpeg: the edge binary links none of it.

#[test]
fn edge_binary_links_no_ffmpeg() {
    let bin = env!("CARGO_BIN_EXE_lowband-edge");
    let out = std::process::Command::new("ldd")
        .arg(bin)
        .output()
        .expect("ldd runs");
    let libs = String::from_utf8_lossy(&out.stdout);
    assert!(libs.contains("libc.so"), "ldd output looks wrong: {libs}");
    for lib in [
        "libavcodec",
        "libavformat",
        "libavfilter",
        "libavutil",
        "libswscale",
        "libswresample",
    ] {
        assert!(!libs.contains(lib), "{bin} links {lib}:\n{libs}");
    }
}
