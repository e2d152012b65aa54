//! The fused f32 products: dense layers forward (bias and activation applied while a row chunk
//! is in cache) and backward (both gradients from one pass over each block), and the reservoir
//! step; thin layers by plain loops.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::{data, data_mut, vectorized};
use crate::compute::{Activation, CancelToken, Tensor};

/// Rows per cache-resident chunk of a fused product: 128 rows of a 256-wide f32 output are
/// 128 KiB, which stays in L2 while the epilogue runs.
const CHUNK_ROWS: usize = 128;

/// Fast tanh for f32: Eigen's clamped [13/6] rational approximation (a few ulp), written as
/// straight-line arithmetic so the compiler vectorises it; libm's tanhf is ~10× slower and the
/// reservoir step calls it N·hidden times.
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let mut p = x2 * -2.760_768_5e-16 + 2.000_188e-13;
    p = p * x2 + -8.604_672e-11;
    p = p * x2 + 5.122_297e-8;
    p = p * x2 + 1.485_722_4e-5;
    p = p * x2 + 6.372_619_3e-4;
    p = p * x2 + 4.893_524_6e-3;
    p *= x;
    let mut q = x2 * 1.198_258_4e-6 + 1.185_347_1e-4;
    q = q * x2 + 2.268_434_6e-3;
    q = q * x2 + 4.893_525e-3;
    // Below 4e-4, tanh(x) = x to f32 precision, and the rational form loses a bit there.
    if x.abs() < 4e-4 { x } else { p / q }
}

#[inline(always)]
pub(super) fn activate_in_place(values: &mut [f32], activation: Activation) {
    match activation {
        Activation::Identity => {}
        Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Tanh => values.iter_mut().for_each(|v| *v = fast_tanh(*v)),
        Activation::Sigmoid => values
            .iter_mut()
            .for_each(|v| *v = 0.5 + 0.5 * fast_tanh(0.5 * *v)),
    }
}

fn row_major(data: &[f32], rows: usize, cols: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(data, rows, cols)
}

fn row_major_mut(data: &mut [f32], rows: usize, cols: usize) -> MatMut<'_, f32> {
    MatMut::from_row_major_slice_mut(data, rows, cols)
}

/// `out = epilogue(prologue + x·W)` in cache-sized row chunks, chunks in parallel.
/// `prologue(first_row, chunk)` fills the chunk before the product is added to it.
/// Chunks left once `cancel` is set are skipped (the caller discards `out`).
pub(super) fn fused_product(
    x: Option<(&[f32], usize)>,
    weights: &[f32],
    out: &mut [f32],
    out_cols: usize,
    cancel: Option<&CancelToken>,
    prologue: impl Fn(usize, &mut [f32]) + Sync,
    epilogue: impl Fn(&mut [f32]) + Sync,
) {
    out.par_chunks_mut(CHUNK_ROWS * out_cols)
        .enumerate()
        .for_each(|(chunk_index, chunk)| {
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return;
            }
            let first_row = chunk_index * CHUNK_ROWS;
            let rows = chunk.len() / out_cols;
            vectorized(
                #[inline(always)]
                || prologue(first_row, chunk),
            );
            if let Some((x, x_cols)) = x {
                let x_chunk = &x[first_row * x_cols..(first_row + rows) * x_cols];
                matmul(
                    row_major_mut(chunk, rows, out_cols),
                    Accum::Add,
                    row_major(x_chunk, rows, x_cols),
                    row_major(weights, x_cols, out_cols),
                    1.0f32,
                    Par::Seq,
                );
            }
            vectorized(
                #[inline(always)]
                || epilogue(chunk),
            );
        });
}

/// The fused reservoir update over row chunks; see [`Backend::reservoir_step`].
pub(super) fn reservoir_step_chunks(
    input: &Tensor,
    input_weights: &Tensor,
    state: Option<&Tensor>,
    recurrent_weights: &Tensor,
    bias: &Tensor,
    out: &mut Tensor,
    cancel: Option<&CancelToken>,
) {
    let (n, hidden) = out.shape();
    let input_dim = input.cols();
    assert_eq!(input.rows(), n);
    assert_eq!(input_weights.shape(), (input_dim, hidden));
    assert_eq!(recurrent_weights.shape(), (hidden, hidden));
    assert_eq!(bias.len(), hidden);
    let (u, w_in, b) = (data(input), data(input_weights), data(bias));
    let x = state.map(|state| {
        assert_eq!(state.shape(), (n, hidden));
        (data(state), hidden)
    });
    fused_product(
        x,
        data(recurrent_weights),
        data_mut(out),
        hidden,
        cancel,
        |first_row, chunk| {
            // Input projection (2–5 wide) and bias, before the recurrent product is added.
            for (r, row) in chunk.chunks_mut(hidden).enumerate() {
                row.copy_from_slice(b);
                let u_row = &u[(first_row + r) * input_dim..][..input_dim];
                for (d, &u_value) in u_row.iter().enumerate() {
                    let w_row = &w_in[d * hidden..][..hidden];
                    for (h, w) in row.iter_mut().zip(w_row) {
                        *h += u_value * w;
                    }
                }
            }
        },
        |chunk| activate_in_place(chunk, Activation::Tanh),
    );
}

/// Rows per block of the fused dense backward pass: the block's dz (≤ 256 KiB at 256 wide)
/// stays in L2 while it feeds both the weight-gradient and the input-gradient products.
const BACKWARD_ROWS: usize = 256;
/// Layers at most this wide take plain loops (sigmoid RGB heads): blocked kernels crawl there.
pub(super) const THIN_LAYER: usize = 8;

/// The whole dense backward pass in one sweep over row blocks: each block forms
/// `dz = dy ⊙ act'(y)` in a scratch buffer, adds `x_blockᵀ·dz` into its task's partial dW and
/// the column sums into its partial db, and writes `dx_block = dz·Wᵀ`; the partials are summed
/// at the end. One task per thread, so dW is never contended and nothing is allocated per row.
#[allow(clippy::too_many_arguments)]
pub(super) fn fused_dense_backward(
    x: &[f32],
    in_dim: usize,
    weights: &[f32],
    y: &[f32],
    dy: &[f32],
    out_dim: usize,
    activation: Activation,
    dx: Option<&mut [f32]>,
    d_weights: &mut [f32],
    d_bias: &mut [f32],
) {
    let n = y.len() / out_dim.max(1);
    let tasks = rayon::current_num_threads().max(1);
    let rows_per_task = n.div_ceil(tasks).div_ceil(BACKWARD_ROWS).max(1) * BACKWARD_ROWS;
    let task_count = n.div_ceil(rows_per_task).max(1);
    // W transposed (out×in) for the thin path's contiguous dx accumulation.
    let thin = out_dim <= THIN_LAYER;
    let weights_t: Vec<f32> = if thin {
        (0..out_dim * in_dim)
            .map(|i| weights[(i % in_dim) * out_dim + i / in_dim])
            .collect()
    } else {
        Vec::new()
    };
    let work = |task: usize, mut dx_task: Option<&mut [f32]>| -> (Vec<f32>, Vec<f64>) {
        let start = task * rows_per_task;
        let end = (start + rows_per_task).min(n);
        // Partial dW: row-major in×out, or out×in on the thin path.
        let mut partial_w = vec![0.0f32; in_dim * out_dim];
        let mut partial_b = vec![0.0f64; out_dim];
        let mut dz = vec![0.0f32; BACKWARD_ROWS.min(end - start) * out_dim];
        for block in (start..end).step_by(BACKWARD_ROWS) {
            let rows = BACKWARD_ROWS.min(end - block);
            let dz = &mut dz[..rows * out_dim];
            let range = block * out_dim..(block + rows) * out_dim;
            let (dy_block, y_block) = (&dy[range.clone()], &y[range]);
            // One loop per activation, so each vectorises.
            match activation {
                Activation::Identity => dz.copy_from_slice(dy_block),
                Activation::Relu => {
                    for ((g, &d), &y) in dz.iter_mut().zip(dy_block).zip(y_block) {
                        *g = if y > 0.0 { d } else { 0.0 };
                    }
                }
                Activation::Tanh => {
                    for ((g, &d), &y) in dz.iter_mut().zip(dy_block).zip(y_block) {
                        *g = d * (1.0 - y * y);
                    }
                }
                Activation::Sigmoid => {
                    for ((g, &d), &y) in dz.iter_mut().zip(dy_block).zip(y_block) {
                        *g = d * (y * (1.0 - y));
                    }
                }
            }
            for row in dz.chunks(out_dim) {
                for (s, &g) in partial_b.iter_mut().zip(row) {
                    *s += g as f64;
                }
            }
            let x_block = &x[block * in_dim..(block + rows) * in_dim];
            let dx_block = dx_task
                .as_deref_mut()
                .map(|d| &mut d[(block - start) * in_dim..(block - start + rows) * in_dim]);
            if thin {
                for (x_row, dz_row) in x_block.chunks(in_dim).zip(dz.chunks(out_dim)) {
                    for (j, &g) in dz_row.iter().enumerate() {
                        let column = &mut partial_w[j * in_dim..(j + 1) * in_dim];
                        for (w, &v) in column.iter_mut().zip(x_row) {
                            *w += v * g;
                        }
                    }
                }
                if let Some(dx_block) = dx_block {
                    for (dx_row, dz_row) in dx_block.chunks_mut(in_dim).zip(dz.chunks(out_dim)) {
                        dx_row.fill(0.0);
                        for (j, &g) in dz_row.iter().enumerate() {
                            let w_row = &weights_t[j * in_dim..(j + 1) * in_dim];
                            for (d, &w) in dx_row.iter_mut().zip(w_row) {
                                *d += g * w;
                            }
                        }
                    }
                }
            } else {
                matmul(
                    row_major_mut(&mut partial_w, in_dim, out_dim),
                    Accum::Add,
                    row_major(x_block, rows, in_dim).transpose(),
                    row_major(dz, rows, out_dim),
                    1.0f32,
                    Par::Seq,
                );
                if let Some(dx_block) = dx_block {
                    matmul(
                        row_major_mut(dx_block, rows, in_dim),
                        Accum::Replace,
                        row_major(dz, rows, out_dim),
                        row_major(weights, in_dim, out_dim).transpose(),
                        1.0f32,
                        Par::Seq,
                    );
                }
            }
        }
        (partial_w, partial_b)
    };
    let partials: Vec<(Vec<f32>, Vec<f64>)> = match dx {
        Some(dx) => dx
            .par_chunks_mut(rows_per_task * in_dim)
            .enumerate()
            .map(|(task, dx_task)| {
                vectorized(
                    #[inline(always)]
                    || work(task, Some(dx_task)),
                )
            })
            .collect(),
        None => (0..task_count)
            .into_par_iter()
            .map(|task| {
                vectorized(
                    #[inline(always)]
                    || work(task, None),
                )
            })
            .collect(),
    };
    d_weights.fill(0.0);
    let mut bias = vec![0.0f64; out_dim];
    for (partial_w, partial_b) in &partials {
        if thin {
            for i in 0..in_dim {
                for j in 0..out_dim {
                    d_weights[i * out_dim + j] += partial_w[j * in_dim + i];
                }
            }
        } else {
            for (d, &p) in d_weights.iter_mut().zip(partial_w) {
                *d += p;
            }
        }
        for (s, &p) in bias.iter_mut().zip(partial_b) {
            *s += p;
        }
    }
    for (d, s) in d_bias.iter_mut().zip(&bias) {
        *d = *s as f32;
    }
}

/// `out = act(x·W + b)` for a layer at most [`THIN_LAYER`] wide: per row, one contiguous dot
/// product per output with W transposed.
pub(super) fn thin_dense_forward(
    x: &[f32],
    in_dim: usize,
    weights: &[f32],
    bias: &[f32],
    activation: Activation,
    out: &mut [f32],
    out_dim: usize,
) {
    let weights_t: Vec<f32> = (0..out_dim * in_dim)
        .map(|i| weights[(i % in_dim) * out_dim + i / in_dim])
        .collect();
    out.par_chunks_mut(CHUNK_ROWS * out_dim)
        .enumerate()
        .for_each(|(chunk_index, chunk)| {
            vectorized(
                #[inline(always)]
                || {
                    let first = chunk_index * CHUNK_ROWS;
                    for (r, out_row) in chunk.chunks_mut(out_dim).enumerate() {
                        let x_row = &x[(first + r) * in_dim..(first + r + 1) * in_dim];
                        for (j, o) in out_row.iter_mut().enumerate() {
                            let w_row = &weights_t[j * in_dim..(j + 1) * in_dim];
                            *o = bias[j] + dot_f32(x_row, w_row);
                        }
                    }
                    activate_in_place(chunk, activation);
                },
            )
        });
}

/// f32 dot product with eight independent accumulators so it vectorises.
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a_chunks, a_rest) = a.as_chunks::<8>();
    let (b_chunks, b_rest) = b.as_chunks::<8>();
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}
