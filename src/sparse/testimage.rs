//! Synthetic test images, the same formulas as `synthetic_rgb` / `synthetic_pair` in
//! reference.py, so tests need no image files.

/// Smooth-plus-texture RGB in [0, 1] (computed in f64, stored as f32 like numpy's `astype`).
pub fn synthetic_rgb(side: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(side * side * 3);
    for row in 0..side {
        for col in 0..side {
            let (r, c) = (row as f64, col as f64);
            let red = 0.5 + 0.45 * (0.31 * c + 0.17 * r).sin();
            let green =
                0.5 + 0.45 * (0.23 * r - 0.11 * c + 0.5).cos() * (0.05 * (r + c) + 1.0).sin();
            let blue = ((7 * row + 13 * col) % 17) as f64 / 16.0;
            out.extend([red as f32, green as f32, blue as f32]);
        }
    }
    out
}

/// [`synthetic_rgb`] and a distorted copy: `0.8 a + 0.1 + 0.05 sin(2.1 r + 1.7 c + k)`.
pub fn synthetic_pair(side: usize) -> (Vec<f32>, Vec<f32>) {
    let a = synthetic_rgb(side);
    let mut b = Vec::with_capacity(a.len());
    for (i, &v) in a.iter().enumerate() {
        let (pixel, k) = (i / 3, i % 3);
        let (r, c) = ((pixel / side) as f64, (pixel % side) as f64);
        b.push((0.8 * v as f64 + 0.1 + 0.05 * (2.1 * r + 1.7 * c + k as f64).sin()) as f32);
    }
    (a, b)
}
