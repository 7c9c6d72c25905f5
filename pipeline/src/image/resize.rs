//! Resizing with a Lanczos3 convolution (fast_image_resize, SIMD), keeping
//! alpha when the picture has it.

use fast_image_resize::{
    images::Image as FirImage, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
};
use image::DynamicImage;

use super::error::Failure;

/// `src` at `width` x `height` (itself, copied, when it is that size).
pub(crate) fn resize(src: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, Failure> {
    if (src.width(), src.height()) == (width, height) {
        return Ok(src.clone());
    }
    let pixel = if src.color().has_alpha() {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let mut dst = FirImage::new(width, height, pixel);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(src, &mut dst, &options)
        .map_err(|source| Failure::Resize {
            width,
            height,
            source,
        })?;
    let buffer = dst.into_vec();
    let out = if pixel == PixelType::U8x4 {
        image::RgbaImage::from_raw(width, height, buffer).map(DynamicImage::ImageRgba8)
    } else {
        image::RgbImage::from_raw(width, height, buffer).map(DynamicImage::ImageRgb8)
    };
    out.ok_or(Failure::ResizedSize { width, height })
}
