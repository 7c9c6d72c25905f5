//! Real-world and hostile images through the image renderer: decompression
//! bombs, cut-off files, CMYK, 16-bit, alpha, EXIF rotation, ICC profiles and
//! animated GIFs. Fixtures are made in code, so each test shows what it feeds.

use std::path::Path;

use image::codecs::gif::GifEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ExtendedColorType, Frame, ImageEncoder, RgbImage, RgbaImage};
use lowband_catalog::profile::ImageSettings;
use lowband_catalog::Profile;
use lowband_pipeline::image::{self as lb_image, Rendered};
use lowband_pipeline::rendition::{Payload, Rendition};

use crate::support;

fn settings() -> ImageSettings {
    let mut s = Profile::builtin_default().image;
    s.formats = vec![
        lowband_catalog::profile::ImageFormat::Avif,
        lowband_catalog::profile::ImageFormat::Webp,
        lowband_catalog::profile::ImageFormat::Jpeg,
    ];
    s
}

fn render(name: &str, bytes: &[u8]) -> Result<Rendered, String> {
    lb_image::render(Path::new(name), bytes, &settings()).map_err(|e| e.to_string())
}

fn bytes_of(r: &Rendition) -> &[u8] {
    match &r.payload {
        Payload::Bytes(b) => b,
        Payload::File(_) => panic!("{} is not in memory", r.name),
    }
}

fn variant<'a>(out: &'a Rendered, name: &str) -> &'a Rendition {
    out.renditions
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no {name} among {:?}", names(out)))
}

fn names(out: &Rendered) -> Vec<&str> {
    out.renditions.iter().map(|r| r.name.as_str()).collect()
}

fn decoded(r: &Rendition) -> DynamicImage {
    load(bytes_of(r))
}

/// Decodes with the `image` crate (JPEG, PNG, WebP).
fn load(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("decodes")
}

fn png(image: &DynamicImage, icc: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = PngEncoder::new(&mut out);
    if let Some(icc) = icc {
        encoder.set_icc_profile(icc).unwrap();
    }
    encoder
        .write_image(
            image.as_bytes(),
            image.width(),
            image.height(),
            ExtendedColorType::from(image.color()),
        )
        .unwrap();
    out
}

/// A PNG chunk with its CRC.
fn chunk(kind: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(&kind);
    crc.update(data);
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(&kind);
    c.extend_from_slice(data);
    c.extend_from_slice(&crc.sum().to_be_bytes());
    c
}

/// A PNG whose header claims `w`×`h` pixels and that holds one tiny IDAT.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    p.extend(chunk(*b"IHDR", &ihdr));
    p.extend(chunk(
        *b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    p.extend(chunk(*b"IEND", &[]));
    p
}

/// A GIF89a of `frames` 1×1 frames on a `w`×`h` logical screen.
fn gif_skeleton(w: u16, h: u16, frames: usize) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&w.to_le_bytes());
    g.extend_from_slice(&h.to_le_bytes());
    g.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    for _ in 0..frames {
        g.extend_from_slice(&[0x21, 0xF9, 4, 0, 10, 0, 0, 0]);
        g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
        g.extend_from_slice(&[2, 2, 0x4C, 0x01, 0]);
    }
    g.push(0x3B);
    g
}

fn jpeg(rgb: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(rgb)
        .unwrap();
    out
}

#[test]
fn a_png_claiming_60000_squared_pixels_is_refused_from_its_header() {
    let err = render("img/bomb.png", &png_claiming(60_000, 60_000)).unwrap_err();
    assert!(err.starts_with("img/bomb.png: "), "{err}");
    assert!(err.contains("60000x60000 is 3600000000 pixels"), "{err}");
}

#[test]
fn a_gif_with_too_many_frames_is_refused_before_decoding() {
    let err = render("img/many.gif", &gif_skeleton(1, 1, 100_000)).unwrap_err();
    assert!(
        err.contains("100000 frames, more than the 500 allowed"),
        "{err}"
    );
    // Few frames, but together too many pixels for the budget.
    let err = render("img/wide.gif", &gif_skeleton(10_000, 2_000, 3)).unwrap_err();
    assert!(err.contains("3 frames of 10000x2000"), "{err}");
}

#[test]
fn zero_sized_and_cut_off_files_get_clear_errors() {
    let err = render("img/zero.png", &png_claiming(0, 10)).unwrap_err();
    assert!(err.starts_with("img/zero.png: "), "{err}");
    let photo = jpeg(&RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([x as u8 * 4, y as u8 * 5, 90])
    }));
    let err = render("img/cut.jpg", &photo[..photo.len() / 2]).unwrap_err();
    assert!(err.contains("truncated JPEG"), "{err}");
    let gif = gif_skeleton(4, 4, 3);
    let err = render("img/cut.gif", &gif[..gif.len() - 5]).unwrap_err();
    assert!(err.contains("truncated GIF"), "{err}");
}

#[test]
fn adobe_cmyk_red_comes_out_red() {
    // Photoshop stores ink inverted (255 = none): full magenta and yellow, no cyan or black.
    let (w, h) = (32, 16);
    let mut comp = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
    comp.set_size(w, h);
    comp.set_quality(90.0);
    let mut started = comp.start_compress(Vec::new()).unwrap();
    let ink: Vec<u8> = [255u8, 0, 0, 255].repeat(w * h);
    started.write_scanlines(&ink).unwrap();
    let cmyk = started.finish().unwrap();
    assert!(
        cmyk.windows(5).any(|w| w == b"Adobe"),
        "libjpeg marks CMYK as Adobe"
    );

    let out = render("img/print.jpg", &cmyk).unwrap();
    for name in ["w32-jpeg", "w32-webp"] {
        let rgb = decoded(variant(&out, name)).to_rgb8();
        let [r, g, b] = rgb.get_pixel(16, 8).0;
        assert!(
            r > 200 && g < 60 && b < 60,
            "{name}: {r},{g},{b} is not red"
        );
    }
}

#[test]
fn sixteen_bit_png_comes_down_to_eight_bits() {
    let img = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(40, 20, |x, _| {
        image::Rgb([x as u16 * 1600, 32_896, 65_535])
    });
    let out = render("img/deep.png", &png(&DynamicImage::ImageRgb16(img), None)).unwrap();
    let rgb = decoded(variant(&out, "w40-webp")).to_rgb8();
    let [_, g, b] = rgb.get_pixel(20, 10).0;
    assert!((120..=136).contains(&g) && b > 240, "{g},{b}");
    let rgb = decoded(variant(&out, "w40-jpeg")).to_rgb8();
    let [_, g, b] = rgb.get_pixel(20, 10).0;
    assert!((120..=136).contains(&g) && b > 240, "{g},{b}");
}

#[test]
fn alpha_is_kept_in_webp_and_avif_and_flattened_on_white_in_jpeg() {
    // Left half transparent, right half opaque blue.
    let img = RgbaImage::from_fn(64, 32, |x, _| {
        if x < 32 {
            image::Rgba([0, 0, 0, 0])
        } else {
            image::Rgba([0, 0, 255, 255])
        }
    });
    let out = render("img/logo.png", &png(&DynamicImage::ImageRgba8(img), None)).unwrap();

    let webp = decoded(variant(&out, "w64-webp")).to_rgba8();
    assert!(webp.get_pixel(4, 16).0[3] < 16, "transparent side");
    assert!(webp.get_pixel(60, 16).0[3] > 240, "opaque side");

    let avif = bytes_of(variant(&out, "w64-avif"));
    assert_eq!(&avif[4..12], b"ftypavif");
    let has = |needle: &[u8]| avif.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"auxl") && has(b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"));

    let jpeg = decoded(variant(&out, "w64-jpeg")).to_rgb8();
    let [r, g, b] = jpeg.get_pixel(4, 16).0;
    assert!(r > 240 && g > 240 && b > 240, "white behind: {r},{g},{b}");
    let [r, g, b] = jpeg.get_pixel(60, 16).0;
    assert!(r < 40 && g < 40 && b > 200, "blue: {r},{g},{b}");
}

#[test]
fn an_opaque_avif_has_no_alpha_item_and_is_smaller_than_its_webp() {
    let img = RgbImage::from_fn(320, 200, |x, y| {
        let v = ((x * 3 + y * 2) % 256) as u8;
        image::Rgb([v, 255 - v, (x % 64) as u8 * 4])
    });
    let out = render("img/ramp.png", &png(&DynamicImage::ImageRgb8(img), None)).unwrap();
    let avif = bytes_of(variant(&out, "w320-avif"));
    assert!(!avif.windows(4).any(|w| w == b"auxl"));
    let webp = bytes_of(variant(&out, "w320-webp"));
    assert!(
        avif.len() < webp.len(),
        "avif {} vs webp {}",
        avif.len(),
        webp.len()
    );
}

/// Inserts an EXIF APP1 segment with this orientation right after SOI.
fn with_orientation(jpeg: &[u8], orientation: u8) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&[0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0]);
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_6_turns_a_landscape_sensor_image_portrait() {
    // Top half red, bottom half blue, as the sensor saw it.
    let sensor = RgbImage::from_fn(64, 32, |_, y| {
        if y < 16 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let out = render("img/phone.jpg", &with_orientation(&jpeg(&sensor), 6)).unwrap();
    let r = variant(&out, "w32-jpeg");
    assert_eq!((r.width, r.height), (Some(32), Some(64)));
    let shown = decoded(r).to_rgb8();
    assert_eq!(shown.dimensions(), (32, 64));
    // Rotated 90° clockwise: the sensor's top (red) is now on the right.
    assert!(
        shown.get_pixel(28, 32).0[0] > 200,
        "{:?}",
        shown.get_pixel(28, 32)
    );
    assert!(
        shown.get_pixel(3, 32).0[2] > 200,
        "{:?}",
        shown.get_pixel(3, 32)
    );
}

#[test]
fn a_display_p3_png_is_converted_to_srgb() {
    let green = RgbImage::from_pixel(48, 24, image::Rgb([0, 128, 0]));
    let p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    let tagged = render(
        "img/p3.png",
        &png(&DynamicImage::ImageRgb8(green.clone()), Some(p3)),
    )
    .unwrap();
    let untagged = render("img/srgb.png", &png(&DynamicImage::ImageRgb8(green), None)).unwrap();
    let px = |out: &Rendered| {
        decoded(variant(out, "w48-webp"))
            .to_rgb8()
            .get_pixel(24, 12)
            .0
    };
    let [r, g, _] = px(&tagged);
    let [r0, g0, _] = px(&untagged);
    // P3's green is more saturated than sRGB's: the same numbers mean a greener green.
    assert!(g >= g0 + 3 && r <= r0 + 2, "P3 {r},{g} vs sRGB {r0},{g0}");
}

#[test]
fn an_animated_gif_becomes_an_animated_webp_with_a_jpeg_poster() {
    let mut gif = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut gif);
        for c in [[255u8, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255]] {
            let frame = Frame::from_parts(
                RgbaImage::from_pixel(60, 30, image::Rgba(c)),
                0,
                0,
                image::Delay::from_numer_denom_ms(200, 1),
            );
            enc.encode_frame(frame).unwrap();
        }
    }
    let out = render("img/wave.gif", &gif).unwrap();
    assert_eq!(
        names(&out),
        ["w60-webp", "w60-jpeg"],
        "AVIF left out for animations"
    );
    let webp = variant(&out, "w60-webp");
    assert_eq!(webp.mode.as_deref(), Some("animated"));
    assert!(
        (webp.duration.unwrap() - 0.6).abs() < 0.01,
        "{:?}",
        webp.duration
    );
    let bytes = bytes_of(webp);
    assert!(bytes.windows(4).any(|w| w == b"ANIM"), "an animated WebP");
    assert_eq!(bytes.windows(4).filter(|w| *w == b"ANMF").count(), 3);
    // The JPEG is the first frame: red.
    let poster = decoded(variant(&out, "w60-jpeg")).to_rgb8();
    assert!(poster.get_pixel(30, 15).0[0] > 200);
    assert!(out.placeholder.starts_with("data:image/webp;base64,"));
}

#[test]
fn every_image_gets_a_placeholder_under_1_kb() {
    let photo =
        std::fs::read(support::samples().join("teaching-questions/img/classroom.jpg")).unwrap();
    let mut s = settings();
    s.formats = vec![lowband_catalog::profile::ImageFormat::Jpeg];
    let out = lb_image::render(Path::new("classroom.jpg"), &photo, &s).unwrap();
    assert!(out.placeholder.starts_with("data:image/webp;base64,"));
    assert!(out.placeholder.len() <= 1024, "{}", out.placeholder.len());
    use base64::Engine as _;
    let tiny = base64::engine::general_purpose::STANDARD
        .decode(&out.placeholder["data:image/webp;base64,".len()..])
        .unwrap();
    let tiny = load(&tiny);
    assert_eq!(tiny.width(), 32);
    assert!((20..=22).contains(&tiny.height()), "{}", tiny.height());
}
