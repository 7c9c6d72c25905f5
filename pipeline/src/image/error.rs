//! Why an image was not rendered: refused by the limits, unreadable, or an
//! encoder's failure, with the decoder's or encoder's own error kept as
//! `source`.
//!
//! Refusals say what was found and what is allowed, in the words the
//! profile uses, so an author can fix the file or the profile.

use std::path::PathBuf;

use crate::media::MediaError;

/// An image that could not be rendered: the file, and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {source}")]
pub struct ImageError {
    pub file: PathBuf,
    pub source: Failure,
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    // Refused before any pixel is decoded (see `decode`).
    #[error("the file is empty")]
    Empty,
    #[error("{bytes} bytes, more than the {max} allowed")]
    TooManyBytes { bytes: u64, max: u64 },
    #[error("cannot read the image header: {0}")]
    Header(#[source] std::io::Error),
    #[error("not a readable image: the bytes are not JPEG, PNG, WebP or GIF")]
    UnknownFormat,
    #[error("truncated JPEG: the last scan has no end-of-image marker")]
    TruncatedJpeg,
    #[error("not a readable image: {0}")]
    Unreadable(#[source] image::ImageError),
    #[error("the header says {width}x{height}: a picture needs both sides")]
    NoSize { width: u32, height: u32 },
    #[error("{width}x{height} is {pixels} pixels, more than the {max} allowed")]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        max: u64,
    },
    #[error("the GIF has {frames} frames, more than the {max} allowed")]
    TooManyFrames { frames: u64, max: u64 },
    #[error(
        "the GIF's {frames} frames of {width}x{height} are {pixels} pixels, more than the {max} allowed"
    )]
    AnimationTooLarge {
        frames: u64,
        width: u32,
        height: u32,
        pixels: u64,
        max: u64,
    },
    #[error("not a GIF")]
    NotGif,
    #[error("truncated GIF: a block runs past the end of the file")]
    TruncatedGif,
    #[error("corrupt GIF: unknown block 0x{block:02X}")]
    CorruptGif { block: u8 },
    #[error("the GIF has no frames")]
    NoGifFrames,

    // Failed while decoding.
    #[error("cannot decode the image: {0}")]
    Decode(#[source] image::ImageError),
    #[error("not a readable GIF: {0}")]
    UnreadableGif(#[source] image::ImageError),
    #[error("cannot decode the GIF: {0}")]
    DecodeGif(#[source] image::ImageError),
    #[error("cannot decode the GIF: no frame decoded")]
    NoGifFrameDecoded,
    #[error("cannot decode the CMYK JPEG: {0}")]
    DecodeCmyk(#[source] zune_jpeg::errors::DecodeErrors),
    /// The CMYK decoder gave fewer or more samples than the header's size.
    #[error("cannot decode the CMYK JPEG: {got} samples for {width}x{height}")]
    CmykSize { got: usize, width: u32, height: u32 },

    // Colour conversion (see `colour`).
    #[error("cannot apply the embedded ICC profile: {0}")]
    Icc(#[source] moxcms::CmsError),
    #[error("cannot apply the CMYK ICC profile: {0}")]
    CmykIcc(#[source] moxcms::CmsError),

    // Resizing and encoding.
    #[error("resizing to {width}x{height}: {source}")]
    Resize {
        width: u32,
        height: u32,
        source: fast_image_resize::ResizeError,
    },
    /// The resizer's buffer does not hold the picture it was asked for:
    /// only a bug explains it.
    #[error("resizing to {width}x{height}: buffer size mismatch")]
    ResizedSize { width: u32, height: u32 },
    /// Decoding makes RGB or RGBA only: only a bug explains another layout.
    #[error("internal: unexpected pixel layout for {format}")]
    PixelLayout { format: &'static str },
    #[error("cannot make a placeholder under 1 KB")]
    Placeholder,
    #[error("the WebP encoder cannot be configured")]
    WebpConfig,
    /// libwebp's animation encoder failed; its error type implements
    /// neither `Error` nor `Display`, so its debug text is what there is.
    #[error("the animated WebP encoder failed: {0}")]
    AnimatedWebp(String),
    /// mozjpeg reports libjpeg errors by unwinding; the panic is caught.
    #[error("the JPEG encoder failed")]
    JpegPanicked,
    #[error("the JPEG encoder failed: {0}")]
    Jpeg(#[source] std::io::Error),
    #[error(
        "AVIF needs an FFmpeg built with libaom-av1 (Debian 12's libavcodec59 has it); \
         or remove \"avif\" from the profile's image.formats"
    )]
    NoAvifEncoder,
    #[error("AVIF: libaom-av1: {0}")]
    Avif(#[source] MediaError),
    #[error("AVIF: libaom-av1 produced no picture")]
    AvifEmpty,
    #[error("AVIF: libaom-av1 returned a malformed OBU")]
    AvifObu,
}
