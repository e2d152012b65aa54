//! Resizing square RGB f32 images, up or down, with the image crate's separable filters
//! (`imageops::resize` on an `Rgb32FImage`), which follow PIL's convolution resampler: output
//! pixel centres at `(x + 0.5) · ratio`, the kernel stretched by the ratio when shrinking (so
//! downsampling is antialiased as in PIL), weights renormalised where the window meets the border.
//!
//! Measured against PIL 13 (`Image.resize` per channel on mode 'F' images, reference.py) on a
//! 32² synthetic image, both up (×2, ×4) and down (×½): once PIL's result is clipped to [0, 1]
//! the differences are f32 rounding, at most 3.0e-7, border pixels included (the border ring
//! behaves as the interior). The one real difference: the image crate clamps its result to
//! [0, 1] (f32's nominal range; the intermediate vertical pass is not clamped), while PIL's 'F'
//! mode keeps the overshoot of the negative lobes: on upsampling up to 0.26 below 0 or 0.22
//! above 1 near sharp edges (0.1–1.2 % of the values here); downsampling did not overshoot.

use anyhow::{Context, ensure};
use image::Rgb32FImage;
use image::imageops::{self, FilterType};

/// The resampling filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    /// Catmull–Rom cubic (a = −0.5, support 2): PIL's `BICUBIC`.
    Bicubic,
    /// Lanczos, 3 lobes: PIL's `LANCZOS`.
    Lanczos3,
}

/// `image` (`side × side` RGB) resized to `new_side × new_side`; values stay in [0, 1].
pub fn resize(
    image: &[f32],
    side: usize,
    new_side: usize,
    filter: Resample,
) -> anyhow::Result<Vec<f32>> {
    ensure!(
        image.len() == side * side * 3,
        "expected a {side}×{side} RGB image ({} values), got {}",
        side * side * 3,
        image.len()
    );
    ensure!(
        side > 0 && new_side > 0,
        "cannot resize to or from an empty image"
    );
    let to_u32 = |n: usize| u32::try_from(n).context("image side does not fit in u32");
    let (old, new) = (to_u32(side)?, to_u32(new_side)?);
    let buffer = Rgb32FImage::from_raw(old, old, image.to_vec())
        .context("image buffer has the wrong length")?;
    let filter = match filter {
        Resample::Bicubic => FilterType::CatmullRom,
        Resample::Lanczos3 => FilterType::Lanczos3,
    };
    Ok(imageops::resize(&buffer, new, new, filter).into_raw())
}

#[cfg(test)]
mod tests {
    use super::super::testimage::synthetic_rgb;
    use super::*;

    /// PIL `Image.fromarray(channel, mode='F').resize((new, new), filter)` per channel of
    /// synthetic_rgb(32), clipped to [0, 1]: (filter, new side, mean before clipping, pixels
    /// 0, new+1, (new/2)·new + new/3, new²−1 as RGB).
    #[allow(clippy::type_complexity)]
    const PIL: [(Resample, usize, f64, [[f32; 3]; 4]); 6] = [
        (
            Resample::Bicubic,
            64,
            0.5099165060289579,
            [
                [0.4811262, 0.8334818, -0.1185662],
                [0.5360432, 0.8308863, 0.1899275],
                [0.3130151, 0.1680664, 0.2898598],
                [0.8203682, 0.6724287, 0.5165441],
            ],
        ),
        (
            Resample::Bicubic,
            128,
            0.5099166772730447,
            [
                [0.4760407, 0.8338155, -0.1532392],
                [0.4888365, 0.8329898, -0.068198],
                [0.2888085, 0.1651653, 0.4368426],
                [0.8173362, 0.6719948, 0.5209888],
            ],
        ),
        (
            Resample::Bicubic,
            16,
            0.5098912120593013,
            [
                [0.6169546, 0.8288155, 0.4509211],
                [0.9124047, 0.7966692, 0.5195948],
                [0.4006027, 0.1800965, 0.4182625],
                [0.8963651, 0.6863345, 0.4886917],
            ],
        ),
        (
            Resample::Lanczos3,
            64,
            0.5099272752392636,
            [
                [0.4796638, 0.8326371, -0.1811374],
                [0.5308937, 0.8316392, 0.1688607],
                [0.3123058, 0.1676548, 0.2714672],
                [0.817938, 0.6717097, 0.5563204],
            ],
        ),
        (
            Resample::Lanczos3,
            128,
            0.5099276517406514,
            [
                [0.4706817, 0.8330213, -0.2631037],
                [0.4892951, 0.8324056, -0.092218],
                [0.2880934, 0.1647868, 0.4207396],
                [0.8122047, 0.6708092, 0.5725233],
            ],
        ),
        (
            Resample::Lanczos3,
            16,
            0.5098925843146086,
            [
                [0.6079367, 0.8293768, 0.4740928],
                [0.9166701, 0.7985532, 0.5304023],
                [0.4002203, 0.1796028, 0.4107587],
                [0.8925942, 0.6855587, 0.5115138],
            ],
        ),
    ];

    #[test]
    fn matches_pil_up_and_down() {
        let image = synthetic_rgb(32);
        for (filter, new, pil_mean, pixels) in PIL {
            let out = resize(&image, 32, new, filter).unwrap();
            assert_eq!(out.len(), new * new * 3);
            let picks = [0, new + 1, (new / 2) * new + new / 3, new * new - 1];
            for (pixel, rgb) in picks.into_iter().zip(pixels) {
                for k in 0..3 {
                    // PIL printed to 7 decimals; the clamp is the image crate's.
                    let want = rgb[k].clamp(0.0, 1.0);
                    let got = out[pixel * 3 + k];
                    assert!(
                        (got - want).abs() < 1e-6,
                        "{filter:?} 32->{new} pixel {pixel}/{k}: {got} vs PIL {want}"
                    );
                }
            }
            // The clamped overshoot moves the mean by at most a few 1e-4 here.
            let mean = out.iter().map(|&v| v as f64).sum::<f64>() / out.len() as f64;
            assert!(
                (mean - pil_mean).abs() < 2e-3,
                "{filter:?} {new}: {mean} vs {pil_mean}"
            );
        }
    }

    #[test]
    fn same_size_is_a_copy_and_bad_input_fails() {
        let image = synthetic_rgb(8);
        assert_eq!(resize(&image, 8, 8, Resample::Lanczos3).unwrap(), image);
        assert!(resize(&image, 7, 4, Resample::Bicubic).is_err());
        assert!(resize(&image, 8, 0, Resample::Bicubic).is_err());
    }
}
