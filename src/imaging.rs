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
