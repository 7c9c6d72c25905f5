//! Structural similarity (SSIM) of two pictures' luma planes.
//!
//! Computed as x264 and FFmpeg's `ssim` filter do: the Wang et al. index
//! over 8x8 windows placed every 4 pixels, averaged. Used to report, for
//! every rung, how close the encoded picture is to the source at that size.

/// `(0.01 * 255)^2` and `(0.03 * 255)^2`.
const C1: f64 = 6.5025;
const C2: f64 = 58.5225;

/// A luma plane: `width` x `height` bytes, rows `stride` bytes apart.
#[derive(Clone, Copy)]
pub struct Plane<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl Plane<'_> {
    fn row(&self, y: usize, x: usize) -> Option<&[u8]> {
        self.data.get(y * self.stride + x..y * self.stride + x + 8)
    }
}

/// Mean SSIM of two equally sized planes, 1.0 for identical pictures.
/// `None` if the sizes differ, a plane is smaller than 8x8 or truncated.
pub fn ssim(a: Plane<'_>, b: Plane<'_>) -> Option<f64> {
    if (a.width, a.height) != (b.width, b.height) || a.width < 8 || a.height < 8 {
        return None;
    }
    let mut total = 0.0;
    let mut windows = 0u32;
    for y in (0..=a.height - 8).step_by(4) {
        for x in (0..=a.width - 8).step_by(4) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0u32, 0u32, 0u32, 0u32, 0u32);
            for dy in 0..8 {
                let (ra, rb) = (a.row(y + dy, x)?, b.row(y + dy, x)?);
                for (&p, &q) in ra.iter().zip(rb) {
                    let (p, q) = (u32::from(p), u32::from(q));
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let (ma, mb) = (f64::from(sa) / 64.0, f64::from(sb) / 64.0);
            let va = f64::from(saa) / 64.0 - ma * ma;
            let vb = f64::from(sbb) / 64.0 - mb * mb;
            let cov = f64::from(sab) / 64.0 - ma * mb;
            total += ((2.0 * ma * mb + C1) * (2.0 * cov + C2))
                / ((ma * ma + mb * mb + C1) * (va + vb + C2));
            windows += 1;
        }
    }
    Some(total / f64::from(windows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(data: &[u8], width: usize, height: usize) -> Plane<'_> {
        Plane {
            data,
            width,
            height,
            stride: width,
        }
    }

    fn gradient(w: usize, h: usize, noise: u32) -> Vec<u8> {
        (0..w * h)
            .map(|i| {
                let base = ((i % w) * 255 / w) as u32;
                let jitter = (i as u32).wrapping_mul(2654435761) >> 28;
                (base + jitter * noise / 15).min(255) as u8
            })
            .collect()
    }

    #[test]
    fn identical_is_one_and_noise_lowers_it() {
        let a = gradient(64, 48, 0);
        assert!((ssim(plane(&a, 64, 48), plane(&a, 64, 48)).unwrap() - 1.0).abs() < 1e-12);
        let slight = gradient(64, 48, 4);
        let heavy = gradient(64, 48, 60);
        let s1 = ssim(plane(&a, 64, 48), plane(&slight, 64, 48)).unwrap();
        let s2 = ssim(plane(&a, 64, 48), plane(&heavy, 64, 48)).unwrap();
        assert!(s1 < 1.0 && s2 < s1 && s2 > 0.0, "{s1} {s2}");
    }

    #[test]
    fn respects_stride_and_refuses_mismatches() {
        let a = gradient(16, 16, 0);
        let mut padded = vec![0u8; 20 * 16];
        for y in 0..16 {
            padded[y * 20..y * 20 + 16].copy_from_slice(&a[y * 16..y * 16 + 16]);
        }
        let strided = Plane {
            data: &padded,
            width: 16,
            height: 16,
            stride: 20,
        };
        assert!((ssim(plane(&a, 16, 16), strided).unwrap() - 1.0).abs() < 1e-12);
        assert!(ssim(plane(&a, 16, 16), plane(&a[..128], 16, 8)).is_none());
        assert!(ssim(plane(&a[..49], 7, 7), plane(&a[..49], 7, 7)).is_none());
        assert!(
            ssim(plane(&a, 16, 16), plane(&a[..100], 16, 16)).is_none(),
            "truncated data"
        );
    }
}
