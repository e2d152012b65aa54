//! The CPU twins of the operations on stacked square grids (`Grids`) that the wavelet operator
//! is built from: Haar bands as columns, the 3×3 depthwise stencil, GELU, the clipped residual
//! and the per-level losses. Rows of one grid row (or one Haar block row) are independent, so
//! each grid is split by rows across the pool; per-channel loops are contiguous and vectorise.

use rayon::prelude::*;

use super::vectorized;
use crate::compute::{Grids, LevelSums};

/// Splits `data` (rows × `width` values) into the per-grid slices of `grids`, in row order.
fn grid_slices_mut(data: &mut [f32], width: usize, grids: Grids) -> Vec<(&mut [f32], usize)> {
    let mut rest = data;
    let mut out = Vec::new();
    for (_, side, _) in grids.grids() {
        let (grid, tail) = std::mem::take(&mut rest).split_at_mut(side * side * width);
        out.push((grid, side));
        rest = tail;
    }
    out
}

fn grid_slice(data: &[f32], width: usize, first: usize, side: usize) -> &[f32] {
    &data[first * width..(first + side * side) * width]
}

pub(super) fn haar_split(
    image: &[f32],
    channels: usize,
    grids: Grids,
    low: &mut [f32],
    high: &mut [f32],
) {
    let half = grids.halved();
    let lows = grid_slices_mut(low, channels, half);
    let highs = grid_slices_mut(high, 3 * channels, half);
    for (((first, side, _), (low, half_side)), (high, _)) in grids.grids().zip(lows).zip(highs) {
        let x = grid_slice(image, channels, first, side);
        low.par_chunks_mut(half_side * channels)
            .zip(high.par_chunks_mut(half_side * 3 * channels))
            .enumerate()
            .for_each(|(by, (low_row, high_row))| {
                vectorized(
                    #[inline(always)]
                    || {
                        for bx in 0..half_side {
                            let top = (2 * by * side + 2 * bx) * channels;
                            let bottom = top + side * channels;
                            let ll = &mut low_row[bx * channels..][..channels];
                            let (lh, rest) = high_row[bx * 3 * channels..][..3 * channels]
                                .split_at_mut(channels);
                            let (hl, hh) = rest.split_at_mut(channels);
                            for c in 0..channels {
                                let (a, b) = (x[top + c], x[top + channels + c]);
                                let (cc, d) = (x[bottom + c], x[bottom + channels + c]);
                                ll[c] = 0.5 * (a + b + cc + d);
                                lh[c] = 0.5 * (a - b + cc - d);
                                hl[c] = 0.5 * (a + b - cc - d);
                                hh[c] = 0.5 * (a - b - cc + d);
                            }
                        }
                    },
                )
            });
    }
}

pub(super) fn haar_merge(
    low: &[f32],
    high: &[f32],
    channels: usize,
    grids: Grids,
    image: &mut [f32],
) {
    let half = grids.halved();
    let images = grid_slices_mut(image, channels, grids);
    for ((first, half_side, _), (image, side)) in half.grids().zip(images) {
        let low = grid_slice(low, channels, first, half_side);
        let high = grid_slice(high, 3 * channels, first, half_side);
        // Two image rows per block row, so each task owns a 2·side slab.
        image
            .par_chunks_mut(2 * side * channels)
            .enumerate()
            .for_each(|(by, slab)| {
                vectorized(
                    #[inline(always)]
                    || {
                        let (top_row, bottom_row) = slab.split_at_mut(side * channels);
                        for bx in 0..half_side {
                            let block = by * half_side + bx;
                            let ll = &low[block * channels..][..channels];
                            let h = &high[block * 3 * channels..][..3 * channels];
                            let (lh, hl, hh) = (
                                &h[..channels],
                                &h[channels..2 * channels],
                                &h[2 * channels..],
                            );
                            let (a, b) =
                                top_row[2 * bx * channels..][..2 * channels].split_at_mut(channels);
                            let (cc, d) = bottom_row[2 * bx * channels..][..2 * channels]
                                .split_at_mut(channels);
                            for c in 0..channels {
                                a[c] = 0.5 * (ll[c] + lh[c] + hl[c] + hh[c]);
                                b[c] = 0.5 * (ll[c] - lh[c] + hl[c] - hh[c]);
                                cc[c] = 0.5 * (ll[c] + lh[c] - hl[c] - hh[c]);
                                d[c] = 0.5 * (ll[c] - lh[c] - hl[c] + hh[c]);
                            }
                        }
                    },
                )
            });
    }
}

/// The columns of the output row that tap column offset `j` (0, 1, 2 for −1, 0, +1) reaches
/// inside a row of `side` pixels.
fn tap_columns(j: usize, side: usize) -> std::ops::Range<usize> {
    match j {
        0 => 1..side,
        1 => 0..side,
        _ => 0..side.saturating_sub(1),
    }
}

/// `out[k·C + c] += weights[c] · source[k·C + c]` over whole pixel rows (zipped, so the inner
/// loop has no bounds checks and vectorises).
#[inline(always)]
fn multiply_add_rows(out: &mut [f32], source: &[f32], weights: &[f32]) {
    let channels = weights.len();
    for (o, s) in out
        .chunks_exact_mut(channels)
        .zip(source.chunks_exact(channels))
    {
        for ((o, &s), &w) in o.iter_mut().zip(s).zip(weights) {
            *o += w * s;
        }
    }
}

pub(super) fn depthwise3x3(
    x: &[f32],
    channels: usize,
    grids: Grids,
    weights: &[f32],
    out: &mut [f32],
) {
    let outs = grid_slices_mut(out, channels, grids);
    for ((first, side, _), (out, _)) in grids.grids().zip(outs) {
        let x = grid_slice(x, channels, first, side);
        out.par_chunks_mut(side * channels)
            .enumerate()
            .for_each(|(y, out_row)| {
                vectorized(
                    #[inline(always)]
                    || {
                        for i in 0..3 {
                            let Some(source_y) = (y + i).checked_sub(1).filter(|&r| r < side)
                            else {
                                continue;
                            };
                            let source_row = &x[source_y * side * channels..][..side * channels];
                            for j in 0..3 {
                                let w = &weights[(3 * i + j) * channels..][..channels];
                                let columns = tap_columns(j, side);
                                let out_span =
                                    &mut out_row[columns.start * channels..columns.end * channels];
                                let source_span = &source_row[(columns.start + j - 1) * channels
                                    ..(columns.end + j - 1) * channels];
                                multiply_add_rows(out_span, source_span, w);
                            }
                        }
                    },
                )
            });
    }
}

pub(super) fn depthwise3x3_backward(
    x: &[f32],
    d_out: &[f32],
    channels: usize,
    grids: Grids,
    weights: &[f32],
    d_x: &mut [f32],
    d_weights: &mut [f32],
) {
    let mut total = vec![0.0f64; 9 * channels];
    let d_xs = grid_slices_mut(d_x, channels, grids);
    for ((first, side, _), (d_x, _)) in grids.grids().zip(d_xs) {
        let x = grid_slice(x, channels, first, side);
        let d_out = grid_slice(d_out, channels, first, side);
        let row_len = side * channels;
        let partial = d_x
            .par_chunks_mut(row_len)
            .enumerate()
            .map(|(y, d_x_row)| {
                vectorized(
                    #[inline(always)]
                    || {
                        let mut d_w = vec![0.0f32; 9 * channels];
                        let d_out_row = &d_out[y * row_len..][..row_len];
                        for i in 0..3 {
                            // dx at row y gathers d_out at row y − (i − 1); dW pairs d_out at row
                            // y with x at row y + (i − 1).
                            if let Some(r) = (y + 1).checked_sub(i).filter(|&r| r < side) {
                                let source_row = &d_out[r * row_len..][..row_len];
                                for j in 0..3 {
                                    let w = &weights[(3 * i + j) * channels..][..channels];
                                    // dx[col] += w · d_out[col − (j − 1)]
                                    let columns = tap_columns(2 - j, side);
                                    let d_span = &mut d_x_row
                                        [columns.start * channels..columns.end * channels];
                                    let source_span = &source_row[(columns.start + 1 - j) * channels
                                        ..(columns.end + 1 - j) * channels];
                                    multiply_add_rows(d_span, source_span, w);
                                }
                            }
                            if let Some(r) = (y + i).checked_sub(1).filter(|&r| r < side) {
                                let x_row = &x[r * row_len..][..row_len];
                                for j in 0..3 {
                                    let d_w = &mut d_w[(3 * i + j) * channels..][..channels];
                                    let columns = tap_columns(j, side);
                                    let source_span = &x_row[(columns.start + j - 1) * channels
                                        ..(columns.end + j - 1) * channels];
                                    let g_span = &d_out_row
                                        [columns.start * channels..columns.end * channels];
                                    for (s, g) in source_span
                                        .chunks_exact(channels)
                                        .zip(g_span.chunks_exact(channels))
                                    {
                                        for ((d, &s), &g) in d_w.iter_mut().zip(s).zip(g) {
                                            *d += g * s;
                                        }
                                    }
                                }
                            }
                        }
                        d_w
                    },
                )
            })
            .fold(
                || vec![0.0f64; 9 * channels],
                |mut sum, row| {
                    sum.iter_mut().zip(&row).for_each(|(s, &v)| *s += v as f64);
                    sum
                },
            )
            .reduce(
                || vec![0.0f64; 9 * channels],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(s, &v)| *s += v);
                    a
                },
            );
        total.iter_mut().zip(&partial).for_each(|(s, &v)| *s += v);
    }
    for (d, s) in d_weights.iter_mut().zip(&total) {
        *d = *s as f32;
    }
}

/// erf for f32 as a clamped odd rational function (Eigen's `generic_fast_erf_float`): a few
/// ulp, straight-line so that it vectorises; libm's erff does not.
#[inline(always)]
pub fn fast_erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_2e-3;
    q = q * x2 + -1.426_474e-2;
    p / q
}

/// e^x for f32 (Cephes' expf: range reduction by powers of two and a degree-5 polynomial),
/// straight-line so that it vectorises; within 2 ulp for x ≥ −87.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and subtracting 1.5·2²³: one vector add each, where floor()
    // is a libm call that stops the loop from vectorising.
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// GELU(x) = x·Φ(x) with the exact (erf) Φ.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + fast_erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU'(x) = Φ(x) + x·φ(x).
#[inline(always)]
pub fn gelu_derivative(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    0.5 * (1.0 + fast_erf(x * std::f32::consts::FRAC_1_SQRT_2))
        + x * INV_SQRT_2PI * fast_exp(-0.5 * x * x)
}

/// Per level of `grids`, the (first, last) rows of each of its grids, for per-level loss sums.
fn level_of_rows(grids: Grids) -> Vec<(usize, usize, usize)> {
    grids
        .grids()
        .map(|(first, side, level)| (first, first + side * side, level))
        .collect()
}

pub(super) fn l1_grad(
    pred: &[f32],
    target: &[f32],
    channels: usize,
    grids: Grids,
    level_scales: &[f32],
    grad: &mut [f32],
) -> Vec<LevelSums> {
    let mut sums = vec![LevelSums::default(); grids.levels];
    let grads = grid_slices_mut(grad, channels, grids);
    for ((first, end, level), (grad, _)) in level_of_rows(grids).into_iter().zip(grads) {
        let scale = level_scales[level];
        let range = first * channels..end * channels;
        let (p, t) = (&pred[range.clone()], &target[range]);
        let (absolute, squared) = grad
            .par_chunks_mut(super::ELEMENTWISE_CHUNK)
            .zip(p.par_chunks(super::ELEMENTWISE_CHUNK))
            .zip(t.par_chunks(super::ELEMENTWISE_CHUNK))
            .map(|((g, p), t)| {
                vectorized(
                    #[inline(always)]
                    || {
                        let (mut absolute, mut squared) = (0.0f64, 0.0f64);
                        for ((g, &p), &t) in g.iter_mut().zip(p).zip(t) {
                            let d = p - t;
                            *g = if d > 0.0 {
                                scale
                            } else if d < 0.0 {
                                -scale
                            } else {
                                0.0
                            };
                            absolute += d.abs() as f64;
                            squared += (d as f64) * (d as f64);
                        }
                        (absolute, squared)
                    },
                )
            })
            .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        sums[level].absolute += absolute;
        sums[level].squared += squared;
    }
    sums
}

fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

pub(super) fn image_gradient_l1_grad(
    pred: &[f32],
    target: &[f32],
    channels: usize,
    grids: Grids,
    level_scales: &[f32],
    grad: &mut [f32],
) -> Vec<f64> {
    let mut sums = vec![0.0f64; grids.levels];
    let grads = grid_slices_mut(grad, channels, grids);
    for ((first, side, level), (grad, _)) in grids.grids().zip(grads) {
        let scale = level_scales[level];
        let p = grid_slice(pred, channels, first, side);
        let t = grid_slice(target, channels, first, side);
        let row_len = side * channels;
        // The difference of the differences leaving pixel (y, x) rightwards and downwards.
        let right = |y: usize, x: usize, c: usize| {
            let at = (y * side + x) * channels + c;
            (p[at + channels] - p[at]) - (t[at + channels] - t[at])
        };
        let down = |y: usize, x: usize, c: usize| {
            let at = (y * side + x) * channels + c;
            (p[at + row_len] - p[at]) - (t[at + row_len] - t[at])
        };
        let total: f64 = grad
            .par_chunks_mut(row_len)
            .enumerate()
            .map(|(y, g_row)| {
                let mut absolute = 0.0f64;
                for x in 0..side {
                    for c in 0..channels {
                        // Each difference is counted once, at the pixel it leaves; the gradient
                        // gathers the signs of the differences that touch this pixel.
                        let mut g = 0.0f32;
                        if x + 1 < side {
                            let d = right(y, x, c);
                            absolute += d.abs() as f64;
                            g -= sign(d);
                        }
                        if x > 0 {
                            g += sign(right(y, x - 1, c));
                        }
                        if y + 1 < side {
                            let d = down(y, x, c);
                            absolute += d.abs() as f64;
                            g -= sign(d);
                        }
                        if y > 0 {
                            g += sign(down(y - 1, x, c));
                        }
                        g_row[x * channels + c] += scale * g;
                    }
                }
                absolute
            })
            .sum();
        sums[level] += total;
    }
    sums
}

/// SSIM's Gaussian window per axis: σ = 1.5, taps at offsets −5..=5 (index 5 is the centre).
const SSIM_RADIUS: usize = 5;
/// SSIM's stabilising constants for values in [0, 1]: (0.01)² and (0.03)².
const SSIM_C1: f64 = 1e-4;
const SSIM_C2: f64 = 9e-4;

fn ssim_taps() -> [f64; 2 * SSIM_RADIUS + 1] {
    std::array::from_fn(|i| {
        let d = i as f64 - SSIM_RADIUS as f64;
        (-d * d / (2.0 * 1.5 * 1.5)).exp()
    })
}

/// The offsets of the taps around `at` that land inside `0..side`, as a range of tap indices.
fn taps_inside(at: usize, side: usize) -> std::ops::Range<usize> {
    let first = SSIM_RADIUS.saturating_sub(at);
    let last = (side - 1 - at).min(SSIM_RADIUS) + SSIM_RADIUS;
    first..last + 1
}

/// `out[y, x, ·] = Σ_d g(d)·field[y, x + d, ·]` over the taps inside the grid, for `width`
/// values per pixel: the horizontal half of the (unnormalised, symmetric) window.
fn blur_along_rows(field: &[f64], width: usize, side: usize, taps: &[f64], out: &mut [f64]) {
    out.par_chunks_mut(side * width)
        .zip(field.par_chunks(side * width))
        .for_each(|(out_row, row)| {
            for x in 0..side {
                let o = &mut out_row[x * width..][..width];
                o.fill(0.0);
                for t in taps_inside(x, side) {
                    let source = &row[(x + t - SSIM_RADIUS) * width..][..width];
                    for (o, &s) in o.iter_mut().zip(source) {
                        *o += taps[t] * s;
                    }
                }
            }
        });
}

/// The vertical half: `out[y, x, ·] = Σ_d g(d)·field[y + d, x, ·]`.
fn blur_along_columns(field: &[f64], width: usize, side: usize, taps: &[f64], out: &mut [f64]) {
    let row_len = side * width;
    out.par_chunks_mut(row_len)
        .enumerate()
        .for_each(|(y, out_row)| {
            out_row.fill(0.0);
            for t in taps_inside(y, side) {
                let source = &field[(y + t - SSIM_RADIUS) * row_len..][..row_len];
                for (o, &s) in out_row.iter_mut().zip(source) {
                    *o += taps[t] * s;
                }
            }
        });
}

/// The window's mass at each position of a row of `side`: the separable factor of Z.
fn window_masses(side: usize, taps: &[f64]) -> Vec<f64> {
    (0..side)
        .map(|at| taps_inside(at, side).map(|t| taps[t]).sum())
        .collect()
}

/// Moments blurred per pixel and channel, in this order.
const MOMENTS: usize = 5;
const MEAN_X: usize = 0;
const MEAN_Y: usize = 1;
const MEAN_XX: usize = 2;
const MEAN_YY: usize = 3;
const MEAN_XY: usize = 4;
/// The SSIM partials carried back through the window: wrt μx, E[x²] and E[xy].
const PARTIALS: usize = 3;

pub(super) fn ssim_grad(
    pred: &[f32],
    target: &[f32],
    channels: usize,
    grids: Grids,
    level_scales: &[f32],
    grad: &mut [f32],
) -> Vec<f64> {
    let taps = ssim_taps();
    let mut sums = vec![0.0f64; grids.levels];
    let grads = grid_slices_mut(grad, channels, grids);
    for ((first, side, level), (grad, _)) in grids.grids().zip(grads) {
        let x = grid_slice(pred, channels, first, side);
        let y = grid_slice(target, channels, first, side);
        let pixels = side * side;
        let masses = window_masses(side, &taps);
        // dLoss/dSSIM(p) for every value: the grid's loss is scale·(1 − mean).
        let d_ssim = -f64::from(level_scales[level]) / (pixels * channels) as f64;

        let width = MOMENTS * channels;
        let mut fields = vec![0.0f64; pixels * width];
        fields
            .par_chunks_mut(width)
            .zip(x.par_chunks(channels).zip(y.par_chunks(channels)))
            .for_each(|(f, (x, y))| {
                for c in 0..channels {
                    let (x, y) = (f64::from(x[c]), f64::from(y[c]));
                    f[c * MOMENTS..][..MOMENTS].copy_from_slice(&[x, y, x * x, y * y, x * y]);
                }
            });
        let mut half = vec![0.0f64; pixels * width];
        blur_along_rows(&fields, width, side, &taps, &mut half);
        blur_along_columns(&half, width, side, &taps, &mut fields);

        // Per pixel: SSIM, and its partials over Z (the adjoint of the normalisation).
        let mut partials = vec![0.0f64; pixels * PARTIALS * channels];
        let total: f64 = partials
            .par_chunks_mut(side * PARTIALS * channels)
            .zip(fields.par_chunks(side * width))
            .enumerate()
            .map(|(row, (partial_row, moment_row))| {
                let mut sum = 0.0f64;
                for column in 0..side {
                    let z = masses[row] * masses[column];
                    let moments = &moment_row[column * width..][..width];
                    let partial = &mut partial_row[column * PARTIALS * channels..];
                    for c in 0..channels {
                        let m = &moments[c * MOMENTS..][..MOMENTS];
                        let (mu_x, mu_y) = (m[MEAN_X] / z, m[MEAN_Y] / z);
                        let variance_x = m[MEAN_XX] / z - mu_x * mu_x;
                        let variance_y = m[MEAN_YY] / z - mu_y * mu_y;
                        let covariance = m[MEAN_XY] / z - mu_x * mu_y;
                        let luminance = 2.0 * mu_x * mu_y + SSIM_C1;
                        let contrast = 2.0 * covariance + SSIM_C2;
                        let luminance_norm = mu_x * mu_x + mu_y * mu_y + SSIM_C1;
                        let contrast_norm = variance_x + variance_y + SSIM_C2;
                        let denominator = luminance_norm * contrast_norm;
                        let ssim = luminance * contrast / denominator;
                        sum += ssim;
                        // ∂S/∂σx² = −S/(σx² + σy² + C2), ∂S/∂σxy = 2·L/D; μx also moves σx²
                        // (by −2μx) and σxy (by −μy).
                        let d_variance = -ssim / contrast_norm;
                        let d_covariance = 2.0 * luminance / denominator;
                        let d_mean = 2.0 * mu_y * contrast / denominator
                            - 2.0 * mu_x * ssim / luminance_norm
                            - 2.0 * mu_x * d_variance
                            - mu_y * d_covariance;
                        let weight = d_ssim / z;
                        partial[c * PARTIALS..][..PARTIALS].copy_from_slice(&[
                            weight * d_mean,
                            weight * d_variance,
                            weight * d_covariance,
                        ]);
                    }
                }
                sum
            })
            .sum();
        sums[level] += total / (pixels * channels) as f64;

        // The window is symmetric, so its adjoint is the same unnormalised blur of the
        // partials already divided by Z.
        let width = PARTIALS * channels;
        let (back, blurred) = (&mut half[..pixels * width], &mut fields[..pixels * width]);
        blur_along_rows(&partials, width, side, &taps, back);
        blur_along_columns(back, width, side, &taps, blurred);
        grad.par_chunks_mut(channels)
            .zip(blurred.par_chunks(width))
            .zip(x.par_chunks(channels).zip(y.par_chunks(channels)))
            .for_each(|((g, b), (x, y))| {
                for c in 0..channels {
                    let b = &b[c * PARTIALS..][..PARTIALS];
                    let (x, y) = (f64::from(x[c]), f64::from(y[c]));
                    g[c] += (b[0] + 2.0 * x * b[1] + y * b[2]) as f32;
                }
            });
    }
    sums
}

pub(super) fn upsample_nearest_backward(
    d_up: &[f32],
    channels: usize,
    grids: Grids,
    d_image: &mut [f32],
) {
    let doubled = grids.doubled();
    let images = grid_slices_mut(d_image, channels, grids);
    for ((first, big_side, _), (d_image, side)) in doubled.grids().zip(images) {
        let d_up = grid_slice(d_up, channels, first, big_side);
        let big_row = big_side * channels;
        d_image
            .par_chunks_mut(side * channels)
            .enumerate()
            .for_each(|(y, row)| {
                vectorized(
                    #[inline(always)]
                    || {
                        let (top, bottom) = (
                            &d_up[2 * y * big_row..][..big_row],
                            &d_up[(2 * y + 1) * big_row..][..big_row],
                        );
                        for x in 0..side {
                            let o = &mut row[x * channels..][..channels];
                            let (left, right) = (2 * x * channels, (2 * x + 1) * channels);
                            for c in 0..channels {
                                o[c] = top[left + c]
                                    + top[right + c]
                                    + bottom[left + c]
                                    + bottom[right + c];
                            }
                        }
                    },
                )
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_exp_and_gelu_are_accurate() {
        let mut worst_erf = 0.0f64;
        let mut worst_exp = 0.0f64;
        for i in -6000..=6000 {
            let x = i as f64 / 1000.0;
            let erf = libm::erf(x);
            worst_erf = worst_erf.max((fast_erf(x as f32) as f64 - erf).abs());
            // The reference is e to the f32 argument fast_exp receives: rounding −x²/2 to f32 moves
            // e^(−x²/2) by up to |x²/2|·2⁻²⁴ relative (1e-6 at x = 6).
            let argument = (-0.5 * x * x) as f32;
            let e = f64::from(argument).exp();
            worst_exp = worst_exp.max((f64::from(fast_exp(argument)) - e).abs() / e.max(1e-30));
        }
        assert!(worst_erf < 1e-6, "erf error {worst_erf}");
        // Two ulp (2·2⁻²³ relative).
        assert!(worst_exp < 2.4e-7, "exp relative error {worst_exp}");
        // GELU' by central differences of GELU in f64.
        for i in -400..=400 {
            let x = i as f64 / 100.0;
            let g = |v: f64| 0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2));
            let numeric = (g(x + 1e-5) - g(x - 1e-5)) / 2e-5;
            assert!(
                (gelu_derivative(x as f32) as f64 - numeric).abs() < 1e-5,
                "GELU'({x})"
            );
            assert!((gelu(x as f32) as f64 - g(x)).abs() < 1e-5, "GELU({x})");
        }
    }
}
