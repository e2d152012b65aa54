//! Structural similarity per pixel, as scikit-image 0.26 computes it, so that SSIM on a set of
//! pixels (the unobserved ones, say) can be reported next to PSNR.
//!
//! [`ssim_map`] is `skimage.metrics.structural_similarity(a, b, gaussian_weights=True,
//! sigma=1.5, data_range=1.0, channel_axis=2, full=True)[1].mean(axis=2)` on float64 inputs:
//! Gaussian weights (σ = 1.5, truncate 3.5, so an 11-tap window), `scipy.ndimage.gaussian_filter`
//! with `mode='reflect'`, skimage's default `use_sample_covariance=True` (variances scaled by
//! NP/(NP−1) with NP = 11² even though the weights are Gaussian), K1 = 0.01, K2 = 0.03.
//! skimage keeps float32 inputs in float32 (its map then differs from the float64 one by up to
//! 1.2e-5 on the test pair); we compute in f64 and compare with skimage on float64 copies.
//!
//! skimage's scalar `mssim` crops a 5-pixel border (the filter radius) before averaging; that is
//! [`cropped_mean`]. Our per-set averages ([`mean_over`]) use the full map, border included,
//! because a pixel set (validation, unobserved) reaches the border.

use anyhow::ensure;

/// Gaussian σ of the window.
const SIGMA: f64 = 1.5;
/// scipy's radius `int(truncate * sigma + 0.5)` with skimage's truncate = 3.5.
const RADIUS: usize = 5;
/// Pixels in the window, for skimage's sample-covariance factor.
const WINDOW_PIXELS: f64 = ((2 * RADIUS + 1) * (2 * RADIUS + 1)) as f64;
const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

/// Per-pixel SSIM of two `side × side` RGB images in [0, 1] (data range 1), averaged over
/// the three channels. Computed in f64; skimage refuses images under 11 pixels, so do we.
pub fn ssim_map(a: &[f32], b: &[f32], side: usize) -> anyhow::Result<Vec<f32>> {
    let n = side * side;
    ensure!(
        a.len() == n * 3 && b.len() == n * 3,
        "SSIM needs two {side}×{side} RGB images ({} values), got {} and {}",
        n * 3,
        a.len(),
        b.len()
    );
    ensure!(
        side > 2 * RADIUS,
        "SSIM's 11-pixel window needs images of at least 11×11, got {side}×{side}"
    );
    let kernel = gaussian_kernel();
    let cov_norm = WINDOW_PIXELS / (WINDOW_PIXELS - 1.0);
    let mut map = vec![0.0f64; n];
    for k in 0..3 {
        let x: Vec<f64> = a[k..].iter().step_by(3).map(|&v| v as f64).collect();
        let y: Vec<f64> = b[k..].iter().step_by(3).map(|&v| v as f64).collect();
        let product =
            |p: &[f64], q: &[f64]| -> Vec<f64> { p.iter().zip(q).map(|(p, q)| p * q).collect() };
        let ux = filter(&x, side, &kernel);
        let uy = filter(&y, side, &kernel);
        let uxx = filter(&product(&x, &x), side, &kernel);
        let uyy = filter(&product(&y, &y), side, &kernel);
        let uxy = filter(&product(&x, &y), side, &kernel);
        for i in 0..n {
            let vx = cov_norm * (uxx[i] - ux[i] * ux[i]);
            let vy = cov_norm * (uyy[i] - uy[i] * uy[i]);
            let vxy = cov_norm * (uxy[i] - ux[i] * uy[i]);
            let a1 = 2.0 * ux[i] * uy[i] + C1;
            let a2 = 2.0 * vxy + C2;
            let b1 = ux[i] * ux[i] + uy[i] * uy[i] + C1;
            let b2 = vx + vy + C2;
            map[i] += (a1 * a2) / (b1 * b2) / 3.0;
        }
    }
    Ok(map.into_iter().map(|s| s as f32).collect())
}

/// Mean of `map` over the pixels `indices` (0 for an empty set).
pub fn mean_over(map: &[f32], indices: &[u32]) -> f64 {
    if indices.is_empty() {
        return 0.0;
    }
    indices.iter().map(|&i| map[i as usize] as f64).sum::<f64>() / indices.len() as f64
}

/// skimage's scalar `mssim`: the map's mean without its 5-pixel border.
pub fn cropped_mean(map: &[f32], side: usize) -> f64 {
    let inner = side.saturating_sub(2 * RADIUS);
    if inner == 0 {
        return 0.0;
    }
    let mut sum = 0.0;
    for row in RADIUS..side - RADIUS {
        for col in RADIUS..side - RADIUS {
            sum += map[row * side + col] as f64;
        }
    }
    sum / (inner * inner) as f64
}

/// scipy's `_gaussian_kernel1d(σ, 0, radius)`: exp(−x²/2σ²), normalised to sum 1.
fn gaussian_kernel() -> Vec<f64> {
    let raw: Vec<f64> = (-(RADIUS as i64)..=RADIUS as i64)
        .map(|x| (-0.5 * (x * x) as f64 / (SIGMA * SIGMA)).exp())
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|w| w / sum).collect()
}

/// scipy's `mode='reflect'` index: d c b a | a b c d | d c b a, for any offset.
fn reflect(i: i64, n: usize) -> usize {
    let n = n as i64;
    let m = i.rem_euclid(2 * n);
    (if m >= n { 2 * n - 1 - m } else { m }) as usize
}

/// Separable Gaussian filter of a `side × side` plane: along rows (axis 0), then columns.
fn filter(plane: &[f64], side: usize, kernel: &[f64]) -> Vec<f64> {
    let r = RADIUS as i64;
    let mut vertical = vec![0.0; plane.len()];
    for row in 0..side {
        for (t, &w) in kernel.iter().enumerate() {
            let src = reflect(row as i64 + t as i64 - r, side);
            for col in 0..side {
                vertical[row * side + col] += w * plane[src * side + col];
            }
        }
    }
    let mut out = vec![0.0; plane.len()];
    for row in 0..side {
        for col in 0..side {
            out[row * side + col] = kernel
                .iter()
                .enumerate()
                .map(|(t, &w)| w * vertical[row * side + reflect(col as i64 + t as i64 - r, side)])
                .sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testimage::synthetic_pair;
    use super::*;

    #[test]
    fn matches_skimage_structural_similarity() {
        let (a, b) = synthetic_pair(20);
        let map = ssim_map(&a, &b, 20).unwrap();
        // structural_similarity(a.astype(float64), b.astype(float64), gaussian_weights=True,
        // sigma=1.5, data_range=1.0, channel_axis=2, full=True)[1].mean(axis=2).ravel()[i]
        let expected = [
            (0, 0.8991971624313653),
            (19, 0.9129865050031624),
            (21, 0.9217757808700796),
            (105, 0.952722483161712),
            (210, 0.8907587936567435),
            (399, 0.7997662940970036),
        ];
        for (i, e) in expected {
            assert!(
                (map[i] as f64 - e).abs() < 1e-5,
                "pixel {i}: {} vs {e}",
                map[i]
            );
        }
        // S.mean() and the returned (border-cropped) mssim.
        let all: Vec<u32> = (0..400).collect();
        assert!((mean_over(&map, &all) - 0.9041618535634792).abs() < 1e-6);
        assert!((cropped_mean(&map, 20) - 0.9209039495916688).abs() < 1e-6);
        // S.mean(axis=2).ravel()[0:200:3].mean()
        let some: Vec<u32> = (0..200).step_by(3).collect();
        assert!((mean_over(&map, &some) - 0.9117793051401704).abs() < 1e-6);
    }

    #[test]
    fn identical_images_score_one_and_bad_sizes_fail() {
        let (a, _) = synthetic_pair(12);
        let map = ssim_map(&a, &a, 12).unwrap();
        assert!(map.iter().all(|&s| (s - 1.0).abs() < 1e-6));
        assert!(ssim_map(&a[..30], &a[..30], 10).is_err());
        assert!(ssim_map(&a, &a[..6], 12).is_err());
        assert_eq!(mean_over(&map, &[]), 0.0);
        assert_eq!(
            [-1, 0, 5, 6, 12, -7].map(|i| reflect(i, 6)),
            [0, 0, 5, 5, 0, 5]
        );
    }
}
