//! Pixels for people: f32 RGB to egui images, thumbnails, colour maps, and the host-side error
//! measure the window uses for images it already has (iterates). Shared by the compute worker
//! (which makes the images it sends) and the views (which colour what they draw).

use egui::{Color32, ColorImage};

/// Mean squared error of an image clipped into [0, 1] against the target, as the methods
/// measure their PSNR; NaN if the image has a NaN.
pub fn host_mse(pixels: &[f32], target: &[f32]) -> f64 {
    if pixels.len() != target.len() || pixels.is_empty() {
        return f64::NAN;
    }
    let sum: f64 = pixels
        .iter()
        .zip(target)
        .map(|(&p, &t)| {
            let d = (p.clamp(0.0, 1.0) - t) as f64;
            if p.is_nan() { f64::NAN } else { d * d }
        })
        .sum();
    sum / pixels.len() as f64
}

/// RGB f32 in [0, 1] (NaN as black) to an egui image.
pub fn color_image_from_rgb(pixels: &[f32], size: usize) -> ColorImage {
    let to_byte = |v: f32| {
        if v.is_nan() {
            0
        } else {
            (v.clamp(0.0, 1.0) * 255.0).round() as u8
        }
    };
    let colors = pixels
        .chunks_exact(3)
        .map(|p| Color32::from_rgb(to_byte(p[0]), to_byte(p[1]), to_byte(p[2])))
        .collect();
    ColorImage::new([size, size], colors)
}

/// Box-filter downsampling by an integer factor.
pub fn downsample(image: &ColorImage, factor: usize) -> ColorImage {
    let [width, height] = image.size;
    let (out_w, out_h) = (width.div_ceil(factor), height.div_ceil(factor));
    let mut pixels = Vec::with_capacity(out_w * out_h);
    for oy in 0..out_h {
        for ox in 0..out_w {
            let mut sum = [0u32; 3];
            let mut n = 0;
            for y in oy * factor..((oy + 1) * factor).min(height) {
                for x in ox * factor..((ox + 1) * factor).min(width) {
                    let c = image.pixels[y * width + x];
                    sum[0] += c.r() as u32;
                    sum[1] += c.g() as u32;
                    sum[2] += c.b() as u32;
                    n += 1;
                }
            }
            let n = n.max(1);
            pixels.push(Color32::from_rgb(
                (sum[0] / n) as u8,
                (sum[1] / n) as u8,
                (sum[2] / n) as u8,
            ));
        }
    }
    ColorImage::new([out_w, out_h], pixels)
}

/// One column of a row-major `rows × cols` tensor as a `side²` map, blue (negative) through
/// black to orange (positive), scaled by the column's largest magnitude.
pub fn diverging_map(data: &[f32], cols: usize, channel: usize, side: usize) -> ColorImage {
    let rows = side * side;
    let values = (0..rows).map(|r| data.get(r * cols + channel).copied().unwrap_or(0.0));
    let scale = values
        .clone()
        .filter(|v| v.is_finite())
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(1e-12);
    let pixels = values.map(|v| diverging_color(v / scale)).collect();
    ColorImage::new([side, side], pixels)
}

/// −1 → blue, 0 → near black, +1 → orange.
pub fn diverging_color(t: f32) -> Color32 {
    let t = if t.is_finite() {
        t.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (r, g, b) = if t >= 0.0 {
        (255.0 * t, 150.0 * t, 40.0 * t)
    } else {
        (60.0 * -t, 150.0 * -t, 255.0 * -t)
    };
    let base = 14.0;
    Color32::from_rgb(
        (base + r * (1.0 - base / 255.0)) as u8,
        (base + g * (1.0 - base / 255.0)) as u8,
        (base + b * (1.0 - base / 255.0)) as u8,
    )
}

/// One level of the Haar transform of an RGB image `side` pixels a side: for each 2×2 block
/// a b / c d and each channel, LL = (a+b+c+d)/2, LH = (a−b+c−d)/2 (differs along x),
/// HL = (a+b−c−d)/2 (along y), HH = (a−b−c+d)/2, each band RGB row-major at ⌊side/2⌋ (an odd
/// last row and column are left out). `None` for a side under 2 or pixels not side²·3 long.
pub fn haar_bands(pixels: &[f32], side: usize) -> Option<[Vec<f32>; 4]> {
    if side < 2 || pixels.len() != side * side * 3 {
        return None;
    }
    let half = side / 2;
    let mut bands: [Vec<f32>; 4] = std::array::from_fn(|_| Vec::with_capacity(half * half * 3));
    for y in 0..half {
        for x in 0..half {
            let top = (2 * y * side + 2 * x) * 3;
            let bottom = top + side * 3;
            for channel in 0..3 {
                let a = pixels[top + channel];
                let b = pixels[top + 3 + channel];
                let c = pixels[bottom + channel];
                let d = pixels[bottom + 3 + channel];
                bands[0].push((a + b + c + d) / 2.0);
                bands[1].push((a - b + c - d) / 2.0);
                bands[2].push((a + b - c - d) / 2.0);
                bands[3].push((a - b - c + d) / 2.0);
            }
        }
    }
    Some(bands)
}

/// A detail band (RGB values around 0, `side` a side) as a picture: the channel mean on the
/// diverging map, multiplied by `gain` so that small details show.
pub fn band_image(values: &[f32], side: usize, gain: f32) -> ColorImage {
    let pixels = values
        .chunks_exact(3)
        .map(|v| diverging_color((v[0] + v[1] + v[2]) / 3.0 * gain))
        .collect();
    ColorImage::new([side, side], pixels)
}

/// Root mean square of `values` (0 for none).
pub fn rms(values: &[f32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let sum: f64 = values.iter().map(|&v| (v as f64) * (v as f64)).sum();
    (sum / values.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haar_bands_of_one_block_follow_their_definitions() {
        // One 2×2 block a b / c d, the same in every channel.
        let (a, b, c, d) = (0.9f32, 0.1, 0.5, 0.3);
        let pixels: Vec<f32> = [a, b, c, d].iter().flat_map(|&v| [v, v, v]).collect();
        let [ll, lh, hl, hh] = haar_bands(&pixels, 2).unwrap();
        let close = |x: f32, y: f32| (x - y).abs() < 1e-6;
        assert!(close(ll[0], (a + b + c + d) / 2.0));
        assert!(close(lh[1], (a - b + c - d) / 2.0), "LH differs along x");
        assert!(close(hl[2], (a + b - c - d) / 2.0), "HL differs along y");
        assert!(close(hh[0], (a - b - c + d) / 2.0));
        // Orthonormal: the bands keep the block's energy.
        let energy: f32 = [&ll, &lh, &hl, &hh]
            .iter()
            .map(|band| band[0] * band[0])
            .sum();
        assert!(close(energy, a * a + b * b + c * c + d * d));
    }

    #[test]
    fn haar_bands_refuse_what_they_cannot_halve() {
        assert!(haar_bands(&[0.5; 3], 1).is_none());
        assert!(haar_bands(&[], 0).is_none());
        assert!(haar_bands(&[0.5; 11], 2).is_none(), "wrong length");
        // An odd side drops its last row and column.
        let [ll, ..] = haar_bands(&[0.25; 5 * 5 * 3], 5).unwrap();
        assert_eq!(ll.len(), 2 * 2 * 3);
        assert!(ll.iter().all(|&v| (v - 0.5).abs() < 1e-6));
    }
}
