//! The f64 products of the ridge systems: the Gram products `[A₁ … A_k]ᵀ·B` (faer on the cached
//! f64 copies, in tasks rayon runs in parallel, thin ones by dot products) and the readout's rows.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::{host, vectorized};
use crate::compute::{CancelToken, Tensor};

/// `[A₁ … A_k]ᵀ·B` in f64; see [`Backend::gram`]. Tasks left once `cancel` is set are skipped.
pub(super) fn gram_chunks(
    blocks: &[&Tensor],
    b: &Tensor,
    cancel: Option<&CancelToken>,
) -> Vec<f64> {
    let n = b.rows();
    let total_cols: usize = blocks.iter().map(|a| a.cols()).sum();
    let b_cols = b.cols();
    // Column-major result: block i occupies rows offset..offset+cols of a total_cols × b_cols
    // matrix; converted to row-major at the end.
    let mut result = Mat::<f64>::zeros(total_cols, b_cols);
    let b_mat = columns(b);
    // Products for every block go into one task list, so the threads meet once per call
    // rather than once per block.
    let mut tasks = Vec::new();
    let mut symmetric_blocks = Vec::new();
    let mut rest = result.as_mut();
    let mut row_offset = 0;
    for block in blocks {
        assert_eq!(block.rows(), n, "Gram blocks must have the same rows");
        let cols = block.cols();
        let a_mat = columns(block);
        let (dst, remaining) = rest.split_at_row_mut(cols);
        rest = remaining;
        let symmetric = std::ptr::eq(*block, b);
        if symmetric {
            symmetric_blocks.push((row_offset, cols));
        }
        if !symmetric && b_cols <= THIN_COLS {
            thin_gram(dst, a_mat, b_mat);
        } else {
            gram_tasks(&mut tasks, dst, a_mat, b_mat.ncols(), symmetric);
        }
        row_offset += cols;
    }
    // Largest first: the thread that finishes early takes the small ones at the end.
    tasks.sort_by_key(|task| std::cmp::Reverse(task.a.ncols() * task.cols));
    tasks.into_par_iter().for_each(|mut task| {
        // Down the rows in pieces, so a cancellation is seen within ~0.1 s even for the
        // largest products; the same pieces with or without a token, so results agree.
        for start in (0..n).step_by(GRAM_ROW_PIECE) {
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return;
            }
            let rows = GRAM_ROW_PIECE.min(n - start);
            matmul(
                task.dst.as_mut().subcols_mut(0, task.cols),
                if start == 0 {
                    Accum::Replace
                } else {
                    Accum::Add
                },
                task.a.subrows(start, rows).transpose(),
                b_mat.subrows(start, rows).subcols(0, task.cols),
                1.0f64,
                Par::Seq,
            );
        }
    });
    for (offset, cols) in symmetric_blocks {
        for i in 0..cols {
            for j in (i + 1)..cols {
                result[(offset + i, j)] = result[(offset + j, i)];
            }
        }
    }
    let mut out = vec![0.0f64; total_cols * b_cols];
    for i in 0..total_cols {
        for j in 0..b_cols {
            out[i * b_cols + j] = result[(i, j)];
        }
    }
    out
}

/// A CPU tensor as an f64 column-major matrix (its cached wide copy).
fn columns(tensor: &Tensor) -> MatRef<'_, f64> {
    let (rows, cols) = tensor.shape();
    MatRef::from_column_major_slice(host(tensor).wide_columns(rows, cols), rows, cols)
}

/// Products with at most this many right-hand columns (targets, RGB) take the dot-product path:
/// faer's blocked kernels are built for wide outputs and crawl on 3 columns.
const THIN_COLS: usize = 8;

/// `dst = AᵀB` for a thin `B`, as independent f64 dot products of contiguous columns.
fn thin_gram(mut dst: MatMut<'_, f64>, a: MatRef<'_, f64>, b: MatRef<'_, f64>) {
    let rows: Vec<Vec<f64>> = (0..a.ncols())
        .into_par_iter()
        .map(|i| {
            let a_col = a.col(i).try_as_col_major().expect("contiguous").as_slice();
            vectorized(
                #[inline(always)]
                || {
                    (0..b.ncols())
                        .map(|j| {
                            let b_col = b.col(j).try_as_col_major().expect("contiguous").as_slice();
                            dot(a_col, b_col)
                        })
                        .collect()
                },
            )
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        for (j, &value) in row.iter().enumerate() {
            dst[(i, j)] = value;
        }
    }
}

/// f64 dot product with four independent accumulators so it vectorises.
pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (a_chunks, a_rest) = a.as_chunks::<4>();
    let (b_chunks, b_rest) = b.as_chunks::<4>();
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Rows per parallel task of a readout product.
pub(super) const READOUT_ROWS: usize = 1024;

/// Rows of the output per task of a Gram product: a multiple of the f64 micro-kernel's 12 rows
/// (faer on AVX2), so only a block's last task runs the narrow edge kernel.
const GRAM_ROWS: usize = 48;
/// Rows of H per partial product in a Gram task (the contraction is split into pieces of this
/// many pixels, accumulated in f64).
const GRAM_ROW_PIECE: usize = 32768;

/// One single-threaded product of a Gram call: `dst[:, ..cols] = aᵀ·B[:, ..cols]`.
struct GramTask<'a> {
    dst: MatMut<'a, f64>,
    a: MatRef<'a, f64>,
    cols: usize,
}

/// Splits `dst = AᵀB` into tasks of [`GRAM_ROWS`] output rows. With `lower_only` (A and B the
/// same matrix) each task stops at the diagonal, so a symmetric product does ~60% of the work;
/// the caller mirrors the rest. On 2 cores independent single-threaded products beat faer's
/// own parallel split by 1.5–2×, which spends its time in barrier waits on thin outputs.
fn gram_tasks<'a>(
    tasks: &mut Vec<GramTask<'a>>,
    dst: MatMut<'a, f64>,
    a: MatRef<'a, f64>,
    b_cols: usize,
    lower_only: bool,
) {
    let mut rest = dst;
    let mut start = 0;
    while rest.nrows() > 0 {
        let rows = GRAM_ROWS.min(rest.nrows());
        let (block, remaining) = rest.split_at_row_mut(rows);
        tasks.push(GramTask {
            dst: block,
            a: a.subcols(start, rows),
            cols: if lower_only { start + rows } else { b_cols },
        });
        rest = remaining;
        start += rows;
    }
}
