//! Continuous zoom into a fitted field: a square region of the image evaluated at the display's
//! own resolution, by the model (re-evaluated at the region's coordinates, not a magnified
//! texture) and, for comparison, by bicubic and Lanczos-3 interpolation of the training image
//! at the same points.

/// A square region of the image in physical coordinates (the image is [0, 1]², pixel i of an
/// S grid covers [i/S, (i+1)/S]), shown `pixels` display pixels a side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZoomRegion {
    pub center: [f64; 2],
    /// Side of the region; 1 is the whole image.
    pub span: f64,
    pub pixels: usize,
}

/// How far a view may zoom in: the region is at least 1/64 of the image wide.
pub const MAX_ZOOM: f64 = 64.0;

/// An interpolation kernel for [`ZoomRegion::resample`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Keys' cubic convolution with a = −0.5 (PIL's BICUBIC).
    Bicubic,
    Lanczos3,
}

impl Kernel {
    fn radius(self) -> i64 {
        match self {
            Kernel::Bicubic => 2,
            Kernel::Lanczos3 => 3,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Kernel::Bicubic => {
                let a = -0.5;
                if x < 1.0 {
                    (a + 2.0) * x * x * x - (a + 3.0) * x * x + 1.0
                } else if x < 2.0 {
                    a * x * x * x - 5.0 * a * x * x + 8.0 * a * x - 4.0 * a
                } else {
                    0.0
                }
            }
            Kernel::Lanczos3 => {
                if x < 1e-12 {
                    1.0
                } else if x < 3.0 {
                    let px = std::f64::consts::PI * x;
                    3.0 * px.sin() * (px / 3.0).sin() / (px * px)
                } else {
                    0.0
                }
            }
        }
    }
}

impl ZoomRegion {
    /// The whole image.
    pub fn whole(pixels: usize) -> Self {
        ZoomRegion {
            center: [0.5, 0.5],
            span: 1.0,
            pixels,
        }
    }

    /// Display pixels per pixel of a `side` grid.
    pub fn magnification(&self, side: usize) -> f64 {
        self.pixels as f64 / (self.span * side as f64)
    }

    /// How much of the image it leaves out: 1 for the whole image, 64 for a 64th of its width.
    pub fn zoom(&self) -> f64 {
        1.0 / self.span
    }

    /// The region between the whole image and [`MAX_ZOOM`]× into it, its centre kept inside.
    pub fn clamped(mut self) -> Self {
        self.span = self.span.clamp(1.0 / MAX_ZOOM, 1.0);
        let half = self.span / 2.0;
        for c in &mut self.center {
            *c = c.clamp(half, 1.0 - half);
        }
        self
    }

    /// The physical coordinate of display pixel `j`'s centre along one axis.
    fn point(&self, axis: usize, j: usize) -> f64 {
        self.center[axis] - self.span / 2.0 + (j as f64 + 0.5) * self.span / self.pixels as f64
    }

    /// Model coordinates of the display pixels' centres for a model trained on a `side` grid
    /// (its coordinate u stands for the physical point u + 1/(2·side); see
    /// [`crate::target::rendering_grid`]), (x, y) pairs row-major.
    pub fn model_coords(&self, side: usize) -> Vec<f32> {
        let shift = 0.5 / side as f64;
        let xs: Vec<f32> = (0..self.pixels)
            .map(|j| (self.point(0, j) - shift) as f32)
            .collect();
        let mut coords = Vec::with_capacity(2 * self.pixels * self.pixels);
        for row in 0..self.pixels {
            let y = (self.point(1, row) - shift) as f32;
            for &x in &xs {
                coords.extend([x, y]);
            }
        }
        coords
    }

    /// `image` (RGB, `side`²) interpolated at the display pixels' centres with `kernel`,
    /// normalised taps, edges clamped.
    pub fn resample(&self, image: &[f32], side: usize, kernel: Kernel) -> Vec<f32> {
        // Separable: per display column (and row) the source taps and their weights, once.
        let taps = |axis: usize| -> Vec<Vec<(usize, f64)>> {
            (0..self.pixels)
                .map(|j| {
                    let t = self.point(axis, j) * side as f64 - 0.5;
                    let base = t.floor() as i64;
                    let mut taps: Vec<(usize, f64)> = (base - kernel.radius() + 1
                        ..=base + kernel.radius())
                        .map(|i| {
                            let w = kernel.weight(t - i as f64);
                            (i.clamp(0, side as i64 - 1) as usize, w)
                        })
                        .filter(|&(_, w)| w != 0.0)
                        .collect();
                    let total: f64 = taps.iter().map(|t| t.1).sum();
                    for tap in &mut taps {
                        tap.1 /= total;
                    }
                    taps
                })
                .collect()
        };
        let (columns, rows) = (taps(0), taps(1));
        let mut out = Vec::with_capacity(3 * self.pixels * self.pixels);
        for row_taps in &rows {
            for column_taps in &columns {
                let mut rgb = [0.0f64; 3];
                for &(r, wr) in row_taps {
                    for &(c, wc) in column_taps {
                        let at = 3 * (r * side + c);
                        for k in 0..3 {
                            rgb[k] += wr * wc * f64::from(image[at + k]);
                        }
                    }
                }
                out.extend(rgb.map(|v| v.clamp(0.0, 1.0) as f32));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_image_at_its_own_size_is_the_training_grid_and_the_image() {
        let side = 8;
        let image: Vec<f32> = (0..side * side * 3)
            .map(|i| (i % 11) as f32 / 11.0)
            .collect();
        let region = ZoomRegion::whole(side);
        assert_eq!(
            region.model_coords(side),
            crate::target::coordinate_grid(side)
        );
        for kernel in [Kernel::Bicubic, Kernel::Lanczos3] {
            let same = region.resample(&image, side, kernel);
            let worst = same
                .iter()
                .zip(&image)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-5, "{kernel:?}: {worst}");
        }
    }

    #[test]
    fn zoom_is_clamped_to_64_times_and_to_the_image() {
        let region = ZoomRegion {
            center: [0.01, 0.99],
            span: 1e-6,
            pixels: 256,
        }
        .clamped();
        assert!((region.zoom() - MAX_ZOOM).abs() < 1e-9);
        // 256 display pixels over 2 of the 128 image pixels.
        assert!((region.magnification(128) - 128.0).abs() < 1e-9);
        assert!(region.center[0] >= region.span / 2.0);
        assert!(region.center[1] <= 1.0 - region.span / 2.0);
        let wide = ZoomRegion {
            center: [0.5, 0.5],
            span: 5.0,
            pixels: 256,
        }
        .clamped();
        assert_eq!(wide.span, 1.0);
    }
}
