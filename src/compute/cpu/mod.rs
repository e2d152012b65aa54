//! The native backend: faer products and rayon loops over f32 in host memory.
//!
//! Not a slow reference: it is what users without a GPU run, so products are row-chunked with
//! their epilogue (bias, input projection, activation) applied while the chunk is still in cache,
//! and f64 Gram products reuse one f64 copy of each tensor for as long as it is unchanged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

mod grids;
pub use grids::{fast_erf, fast_exp, gelu, gelu_derivative};

use super::{
    Activation, AdamStep, Backend, BackendKind, CancelToken, Cancelled, Grids, LevelSums,
    MemoryBudget, Storage, Tensor, Upsample,
};
use crate::compute::check_level_loss;

/// Rows per cache-resident chunk of a fused product: 128 rows of a 256-wide f32 output are
/// 128 KiB, which stays in L2 while the epilogue runs.
const CHUNK_ROWS: usize = 128;
/// Elements per parallel task in element-wise loops.
const ELEMENTWISE_CHUNK: usize = 1 << 14;

/// Host storage of a CPU tensor, with a lazily made f64 copy for Gram products. Every mutable
/// access goes through [`CpuStorage::data_mut`], which drops the copy, so it never goes stale.
pub struct CpuStorage {
    data: Vec<f32>,
    wide: OnceLock<Vec<f64>>,
    /// The allocation of a dropped copy, reused by the next one: a state rewritten every
    /// iteration (refine, multi-scale) would otherwise fault in fresh pages each time.
    spare: Mutex<Vec<f64>>,
    /// The backend's count of bytes held, told when this storage grows or goes.
    accounting: Arc<Accounting>,
}

/// Bytes held by one backend's tensors (their f32 data and f64 copies), now and at most.
#[derive(Default)]
struct Accounting {
    live: AtomicU64,
    peak: AtomicU64,
}

impl Accounting {
    fn add(&self, bytes: u64) {
        let live = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(live, Ordering::Relaxed);
    }
    fn remove(&self, bytes: u64) {
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl Drop for CpuStorage {
    fn drop(&mut self) {
        let spare = self.spare.get_mut().unwrap_or_else(|e| e.into_inner());
        let wide = self.wide.get().map_or(0, Vec::capacity) + spare.capacity();
        self.accounting
            .remove((self.data.capacity() * 4 + wide * 8) as u64);
    }
}

impl CpuStorage {
    fn new(data: Vec<f32>, accounting: Arc<Accounting>) -> Self {
        accounting.add((data.capacity() * 4) as u64);
        CpuStorage {
            data,
            wide: OnceLock::new(),
            spare: Mutex::new(Vec::new()),
            accounting,
        }
    }
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut [f32] {
        if let Some(wide) = self.wide.take() {
            *self.spare.get_mut().unwrap_or_else(|e| e.into_inner()) = wide;
        }
        &mut self.data
    }
    /// The f64 copy in column-major order (each column contiguous), made once per content.
    /// Gram products run along the long dimension, which is then contiguous for faer's kernels:
    /// from row-major data they are ~7× slower.
    fn wide_columns(&self, rows: usize, cols: usize) -> &[f64] {
        self.wide.get_or_init(|| {
            let mut wide =
                std::mem::take(&mut *self.spare.lock().unwrap_or_else(|e| e.into_inner()));
            let before = wide.capacity();
            wide.resize(rows * cols, 0.0);
            self.accounting
                .add((wide.capacity().saturating_sub(before) * 8) as u64);
            // Eight columns per task: each source row gives one 32-byte read, and each of the
            // eight columns is written sequentially. (Tiles of many columns read rows 1 KiB
            // apart, which alias in L1 and thrash.)
            const GROUP: usize = 8;
            wide.par_chunks_mut((GROUP * rows).max(1))
                .enumerate()
                .for_each(|(group, out)| {
                    vectorized(
                        #[inline(always)]
                        || {
                            let first = group * GROUP;
                            let width = out.len() / rows.max(1);
                            if width == GROUP {
                                let mut columns: Vec<&mut [f64]> = out.chunks_mut(rows).collect();
                                for (r, row) in self.data.chunks_exact(cols).enumerate() {
                                    let source = &row[first..first + GROUP];
                                    for (column, &value) in columns.iter_mut().zip(source) {
                                        column[r] = value as f64;
                                    }
                                }
                            } else {
                                for (c, column) in out.chunks_mut(rows).enumerate() {
                                    for (r, value) in column.iter_mut().enumerate() {
                                        *value = self.data[r * cols + first + c] as f64;
                                    }
                                }
                            }
                        },
                    )
                });
            wide
        })
    }
}

fn host(tensor: &Tensor) -> &CpuStorage {
    match &tensor.storage {
        Storage::Cpu(storage) => storage,
        Storage::Gpu(_) => panic!("a GPU tensor was passed to the CPU backend"),
    }
}

fn host_mut(tensor: &mut Tensor) -> &mut CpuStorage {
    match &mut tensor.storage {
        Storage::Cpu(storage) => storage,
        Storage::Gpu(_) => panic!("a GPU tensor was passed to the CPU backend"),
    }
}

fn data(tensor: &Tensor) -> &[f32] {
    host(tensor).data()
}

fn data_mut(tensor: &mut Tensor) -> &mut [f32] {
    host_mut(tensor).data_mut()
}

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
fn activate_in_place(values: &mut [f32], activation: Activation) {
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
fn fused_product(
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
fn reservoir_step_chunks(
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

/// `[A₁ … A_k]ᵀ·B` in f64; see [`Backend::gram`]. Tasks left once `cancel` is set are skipped.
fn gram_chunks(blocks: &[&Tensor], b: &Tensor, cancel: Option<&CancelToken>) -> Vec<f64> {
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
fn dot(a: &[f64], b: &[f64]) -> f64 {
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
const READOUT_ROWS: usize = 1024;

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

/// Runs `f` compiled for the widest vector instructions this processor has (AVX2 and FMA on
/// x86-64), chosen at run time. The build targets baseline x86-64 (SSE2) so the binary runs
/// anywhere; faer's kernels dispatch the same way, and this gives our own host loops (tanh,
/// widening copies, dots, optimizer updates) the same 256-bit lanes. Rounding is unchanged:
/// nothing is contracted into FMAs or reassociated.
#[inline(always)]
fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// `f(&mut out[i], a[i], b[i])` for every element, in parallel cache-sized chunks inside the
/// vector dispatch: the shape of every binary element-wise operation.
fn zip_elementwise(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(&mut f32, f32, f32) + Sync) {
    for_each_chunk(
        out,
        #[inline(always)]
        |chunk, offset| {
            let range = offset..offset + chunk.len();
            for ((o, &x), &y) in chunk.iter_mut().zip(&a[range.clone()]).zip(&b[range]) {
                f(o, x, y);
            }
        },
    );
}

/// Runs `f(chunk_of_out, offset)` over cache-sized chunks of `out` in parallel.
fn for_each_chunk(out: &mut [f32], f: impl Fn(&mut [f32], usize) + Sync) {
    out.par_chunks_mut(ELEMENTWISE_CHUNK)
        .enumerate()
        .for_each(|(index, chunk)| {
            vectorized(
                #[inline(always)]
                || f(chunk, index * ELEMENTWISE_CHUNK),
            )
        });
}

pub struct CpuBackend {
    threads: usize,
    id: u64,
    accounting: Arc<Accounting>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    pub fn new() -> Self {
        // faer's worker pool (spindle) spins up to ~65k pause loops after each parallel product
        // waiting for more work; on a 2-core machine that spinning starves the rayon loops that
        // follow (a 3-column Gram product took 450 ms instead of 2 ms). Short spins, then sleep.
        spindle::SPIN_LIMIT.store(256, std::sync::atomic::Ordering::Relaxed);
        CpuBackend {
            threads: rayon::current_num_threads(),
            id: super::next_instance_id(),
            accounting: Arc::default(),
        }
    }

    fn tensor(&self, rows: usize, cols: usize, data: Vec<f32>) -> Tensor {
        assert_eq!(data.len(), rows * cols, "data does not fit {rows}×{cols}");
        let storage = CpuStorage::new(data, self.accounting.clone());
        Tensor::new(rows, cols, Storage::Cpu(storage))
    }

    /// An empty vector with room for a `rows × cols` tensor, or an error saying how much could
    /// not be had: `vec!` would abort the process instead.
    fn reserve(rows: usize, cols: usize) -> anyhow::Result<Vec<f32>> {
        let bytes = super::tensor_bytes(rows, cols)?;
        let mut data = Vec::new();
        data.try_reserve_exact(rows * cols).map_err(|_| {
            anyhow::anyhow!(
                "cannot allocate a {rows}×{cols} tensor ({}) in host memory",
                super::format_gb(bytes)
            )
        })?;
        Ok(data)
    }

    /// Bytes held now by this backend's tensors: their f32 data and the f64 copies made for
    /// Gram products.
    pub fn bytes_allocated(&self) -> u64 {
        self.accounting.live.load(Ordering::Relaxed)
    }

    /// The most [`Self::bytes_allocated`] has been since the backend was made or
    /// [`Self::reset_peak_bytes`] was called.
    pub fn peak_bytes_allocated(&self) -> u64 {
        self.accounting.peak.load(Ordering::Relaxed)
    }

    /// Starts a new peak at what is held now.
    pub fn reset_peak_bytes(&self) {
        self.accounting
            .peak
            .store(self.bytes_allocated(), Ordering::Relaxed);
    }
}

impl Backend for CpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }
    fn instance_id(&self) -> u64 {
        self.id
    }

    fn adapter_name(&self) -> String {
        format!("CPU ({} threads)", self.threads)
    }

    fn upload(&self, rows: usize, cols: usize, values: &[f32]) -> anyhow::Result<Tensor> {
        assert_eq!(values.len(), rows * cols, "data does not fit {rows}×{cols}");
        let mut data = Self::reserve(rows, cols)?;
        data.extend_from_slice(values);
        Ok(self.tensor(rows, cols, data))
    }

    fn zeros(&self, rows: usize, cols: usize) -> anyhow::Result<Tensor> {
        let mut data = Self::reserve(rows, cols)?;
        data.resize(rows * cols, 0.0);
        Ok(self.tensor(rows, cols, data))
    }

    fn memory_budget(&self) -> MemoryBudget {
        MemoryBudget {
            host_free_bytes: super::host_free_bytes(),
            tensors_in_host_memory: true,
            keeps_f64_gram_copies: true,
            largest_tensor_bytes: isize::MAX as u64,
            largest_tensor_limit: "the address space",
        }
    }

    fn download(&self, tensor: &Tensor) -> Vec<f32> {
        data(tensor).to_vec()
    }

    fn write(&self, tensor: &mut Tensor, values: &[f32]) {
        assert_eq!(values.len(), tensor.len());
        data_mut(tensor).copy_from_slice(values);
    }

    fn copy(&self, source: &Tensor, destination: &mut Tensor) {
        assert_eq!(source.shape(), destination.shape());
        data_mut(destination).copy_from_slice(data(source));
    }

    fn finish(&self) {}

    fn fourier_encode(&self, coords: &Tensor, frequencies: &Tensor, out: &mut Tensor) {
        let (n, m) = (coords.rows(), frequencies.cols());
        assert_eq!(coords.cols(), 2);
        assert_eq!(frequencies.rows(), 2);
        assert_eq!(out.shape(), (n, 2 * m));
        let (x, b) = (data(coords), data(frequencies));
        data_mut(out)
            .par_chunks_mut(2 * m)
            .enumerate()
            .for_each(|(row, features)| {
                let (x0, x1) = (x[2 * row] as f64, x[2 * row + 1] as f64);
                let (sines, cosines) = features.split_at_mut(m);
                for j in 0..m {
                    // Phase in turns, reduced in f64 before the f32 sin/cos: x·B reaches ~30 turns
                    // and an f32 argument would cost 1e-5 of accuracy.
                    let turns = x0 * b[j] as f64 + x1 * b[m + j] as f64;
                    let angle = (std::f64::consts::TAU * (turns - turns.round())) as f32;
                    let (sin, cos) = angle.sin_cos();
                    sines[j] = sin;
                    cosines[j] = cos;
                }
            });
    }

    fn reservoir_step(
        &self,
        input: &Tensor,
        input_weights: &Tensor,
        state: Option<&Tensor>,
        recurrent_weights: &Tensor,
        bias: &Tensor,
        out: &mut Tensor,
    ) {
        reservoir_step_chunks(
            input,
            input_weights,
            state,
            recurrent_weights,
            bias,
            out,
            None,
        );
    }

    fn reservoir_step_until(
        &self,
        input: &Tensor,
        input_weights: &Tensor,
        state: Option<&Tensor>,
        recurrent_weights: &Tensor,
        bias: &Tensor,
        out: &mut Tensor,
        cancel: &CancelToken,
    ) -> Result<(), Cancelled> {
        reservoir_step_chunks(
            input,
            input_weights,
            state,
            recurrent_weights,
            bias,
            out,
            Some(cancel),
        );
        cancel.check()
    }

    fn dense_forward(
        &self,
        x: &Tensor,
        weights: &Tensor,
        bias: &Tensor,
        activation: Activation,
        out: &mut Tensor,
    ) {
        let (n, in_dim) = x.shape();
        let out_dim = weights.cols();
        assert_eq!(weights.rows(), in_dim);
        assert_eq!(bias.len(), out_dim);
        assert_eq!(out.shape(), (n, out_dim));
        let b = data(bias);
        if out_dim <= THIN_LAYER {
            let (x, w) = (data(x), data(weights));
            thin_dense_forward(x, in_dim, w, b, activation, data_mut(out), out_dim);
            return;
        }
        fused_product(
            Some((data(x), in_dim)),
            data(weights),
            data_mut(out),
            out_dim,
            None,
            |_, chunk| {
                chunk
                    .chunks_mut(out_dim)
                    .for_each(|row| row.copy_from_slice(b))
            },
            |chunk| activate_in_place(chunk, activation),
        );
    }

    fn dense_backward(
        &self,
        x: &Tensor,
        weights: &Tensor,
        y: &Tensor,
        dy: &Tensor,
        activation: Activation,
        dx: Option<&mut Tensor>,
        d_weights: &mut Tensor,
        d_bias: &mut Tensor,
    ) {
        let (n, in_dim) = x.shape();
        let out_dim = weights.cols();
        assert_eq!(weights.rows(), in_dim);
        assert_eq!(y.shape(), (n, out_dim));
        assert_eq!(dy.shape(), (n, out_dim));
        assert_eq!(d_weights.shape(), (in_dim, out_dim));
        assert_eq!(d_bias.len(), out_dim);
        if let Some(dx) = &dx {
            assert_eq!(dx.shape(), (n, in_dim));
        }
        fused_dense_backward(
            data(x),
            in_dim,
            data(weights),
            data(y),
            data(dy),
            out_dim,
            activation,
            dx.map(data_mut),
            data_mut(d_weights),
            data_mut(d_bias),
        );
    }

    fn gram(&self, blocks: &[&Tensor], b: &Tensor) -> Vec<f64> {
        gram_chunks(blocks, b, None)
    }

    fn gram_until(
        &self,
        blocks: &[&Tensor],
        b: &Tensor,
        cancel: &CancelToken,
    ) -> Result<Vec<f64>, Cancelled> {
        let product = gram_chunks(blocks, b, Some(cancel));
        cancel.check()?;
        Ok(product)
    }

    fn readout(&self, blocks: &[&Tensor], weights: &[f64], out: &mut Tensor) {
        let (n, out_cols) = out.shape();
        let total_cols: usize = blocks.iter().map(|a| a.cols()).sum();
        assert_eq!(weights.len(), total_cols * out_cols);
        // Per output column, its weights contiguous: each row of a block is widened to f64
        // once and dotted with every output's weights. Reads the f32 rows (half the bytes of
        // the f64 copy) and does not need the copy to exist.
        let mut offset = 0;
        let mut block_weights = Vec::with_capacity(blocks.len());
        for block in blocks {
            assert_eq!(block.rows(), n);
            let cols = block.cols();
            let per_output: Vec<Vec<f64>> = (0..out_cols)
                .map(|j| {
                    (offset..offset + cols)
                        .map(|c| weights[c * out_cols + j])
                        .collect()
                })
                .collect();
            block_weights.push(per_output);
            offset += cols;
        }
        let widest = blocks.iter().map(|b| b.cols()).max().unwrap_or(0);
        if out_cols == 0 {
            return;
        }
        data_mut(out)
            .par_chunks_mut(READOUT_ROWS * out_cols)
            .enumerate()
            .for_each(|(chunk_index, out_chunk)| {
                vectorized(
                    #[inline(always)]
                    || {
                        let first = chunk_index * READOUT_ROWS;
                        let mut acc = vec![0.0f64; out_chunk.len()];
                        let mut wide = vec![0.0f64; widest];
                        for (block, per_output) in blocks.iter().zip(&block_weights) {
                            let cols = block.cols();
                            if cols == 0 {
                                continue;
                            }
                            let rows = &data(block)[first * cols..][..acc.len() / out_cols * cols];
                            for (row, acc_row) in
                                rows.chunks_exact(cols).zip(acc.chunks_exact_mut(out_cols))
                            {
                                for (w, &x) in wide.iter_mut().zip(row) {
                                    *w = x as f64;
                                }
                                for (value, w) in acc_row.iter_mut().zip(per_output) {
                                    *value += dot(&wide[..cols], w);
                                }
                            }
                        }
                        for (o, a) in out_chunk.iter_mut().zip(&acc) {
                            *o = *a as f32;
                        }
                    },
                )
            });
    }

    fn haar_forward(&self, image: &Tensor, height: usize, width: usize, bands: &mut Tensor) {
        let channels = image.cols();
        assert!(
            height.is_multiple_of(2) && width.is_multiple_of(2),
            "Haar needs even sizes"
        );
        assert_eq!(image.rows(), height * width);
        let (h, w) = (height / 2, width / 2);
        assert_eq!(bands.shape(), (4 * h * w, channels));
        let x = data(image);
        let band_len = h * w * channels;
        let out = data_mut(bands);
        let (ll, rest) = out.split_at_mut(band_len);
        let (lh, rest) = rest.split_at_mut(band_len);
        let (hl, hh) = rest.split_at_mut(band_len);
        let row_len = w * channels;
        ll.par_chunks_mut(row_len)
            .zip(lh.par_chunks_mut(row_len))
            .zip(hl.par_chunks_mut(row_len))
            .zip(hh.par_chunks_mut(row_len))
            .enumerate()
            .for_each(|(i, (((ll, lh), hl), hh))| {
                for j in 0..w {
                    for c in 0..channels {
                        let at = |r: usize, col: usize| x[(r * width + col) * channels + c];
                        let (a, b) = (at(2 * i, 2 * j), at(2 * i, 2 * j + 1));
                        let (cc, d) = (at(2 * i + 1, 2 * j), at(2 * i + 1, 2 * j + 1));
                        let k = j * channels + c;
                        ll[k] = 0.5 * (a + b + cc + d);
                        lh[k] = 0.5 * (a + b - cc - d);
                        hl[k] = 0.5 * (a - b + cc - d);
                        hh[k] = 0.5 * (a - b - cc + d);
                    }
                }
            });
    }

    fn haar_inverse(&self, bands: &Tensor, height: usize, width: usize, image: &mut Tensor) {
        let channels = bands.cols();
        assert!(
            height.is_multiple_of(2) && width.is_multiple_of(2),
            "Haar needs even sizes"
        );
        let (h, w) = (height / 2, width / 2);
        assert_eq!(bands.rows(), 4 * h * w);
        assert_eq!(image.shape(), (height * width, channels));
        let x = data(bands);
        let band_len = h * w * channels;
        // Two output rows per band row, so each parallel task owns a 2·width slab.
        data_mut(image)
            .par_chunks_mut(2 * width * channels)
            .enumerate()
            .for_each(|(i, slab)| {
                for j in 0..w {
                    for c in 0..channels {
                        let k = (i * w + j) * channels + c;
                        let (ll, lh) = (x[k], x[band_len + k]);
                        let (hl, hh) = (x[2 * band_len + k], x[3 * band_len + k]);
                        let top = 2 * j * channels + c;
                        let bottom = (width + 2 * j) * channels + c;
                        slab[top] = 0.5 * (ll + lh + hl + hh);
                        slab[top + channels] = 0.5 * (ll + lh - hl - hh);
                        slab[bottom] = 0.5 * (ll - lh + hl - hh);
                        slab[bottom + channels] = 0.5 * (ll - lh - hl + hh);
                    }
                }
            });
    }

    fn upsample2x(
        &self,
        image: &Tensor,
        height: usize,
        width: usize,
        mode: Upsample,
        out: &mut Tensor,
    ) {
        let channels = image.cols();
        assert_eq!(image.rows(), height * width);
        assert_eq!(out.shape(), (4 * height * width, channels));
        let x = data(image);
        let out_width = 2 * width;
        data_mut(out)
            .par_chunks_mut(out_width * channels)
            .enumerate()
            .for_each(|(out_row, row)| match mode {
                Upsample::Nearest => {
                    let src = out_row / 2;
                    for col in 0..out_width {
                        let s = (src * width + col / 2) * channels;
                        row[col * channels..][..channels].copy_from_slice(&x[s..s + channels]);
                    }
                }
                Upsample::Bilinear => {
                    let (r0, r1, fr) = bilinear_source(out_row, height);
                    for col in 0..out_width {
                        let (c0, c1, fc) = bilinear_source(col, width);
                        for c in 0..channels {
                            let at = |r: usize, q: usize| x[(r * width + q) * channels + c];
                            let top = at(r0, c0) * (1.0 - fc) + at(r0, c1) * fc;
                            let bottom = at(r1, c0) * (1.0 - fc) + at(r1, c1) * fc;
                            row[col * channels + c] = top * (1.0 - fr) + bottom * fr;
                        }
                    }
                }
            });
    }

    fn haar_split(&self, image: &Tensor, grids: Grids, low: &mut Tensor, high: &mut Tensor) {
        let channels = image.cols();
        let half_rows = grids.halved().rows();
        assert_eq!(
            image.rows(),
            grids.rows(),
            "haar_split: image must be laid out as grids"
        );
        assert_eq!(
            low.shape(),
            (half_rows, channels),
            "haar_split: low is (rows/4)×C"
        );
        assert_eq!(
            high.shape(),
            (half_rows, 3 * channels),
            "haar_split: high is (rows/4)×3C"
        );
        grids::haar_split(data(image), channels, grids, data_mut(low), data_mut(high));
    }

    fn haar_merge(&self, low: &Tensor, high: &Tensor, grids: Grids, image: &mut Tensor) {
        let channels = image.cols();
        let half_rows = grids.halved().rows();
        assert_eq!(
            image.rows(),
            grids.rows(),
            "haar_merge: image must be laid out as grids"
        );
        assert_eq!(
            low.shape(),
            (half_rows, channels),
            "haar_merge: low is (rows/4)×C"
        );
        assert_eq!(
            high.shape(),
            (half_rows, 3 * channels),
            "haar_merge: high is (rows/4)×3C"
        );
        grids::haar_merge(data(low), data(high), channels, grids, data_mut(image));
    }

    fn depthwise3x3(&self, x: &Tensor, grids: Grids, weights: &Tensor, out: &mut Tensor) {
        let channels = x.cols();
        assert_eq!(
            x.rows(),
            grids.rows(),
            "depthwise3x3: x must be laid out as grids"
        );
        assert_eq!(
            weights.shape(),
            (9, channels),
            "depthwise3x3: weights are 9×C"
        );
        assert_eq!(out.shape(), x.shape());
        grids::depthwise3x3(data(x), channels, grids, data(weights), data_mut(out));
    }

    fn depthwise3x3_backward(
        &self,
        x: &Tensor,
        d_out: &Tensor,
        grids: Grids,
        weights: &Tensor,
        d_x: &mut Tensor,
        d_weights: &mut Tensor,
    ) {
        let channels = x.cols();
        assert_eq!(
            x.rows(),
            grids.rows(),
            "depthwise3x3_backward: x must be laid out as grids"
        );
        assert_eq!(d_out.shape(), x.shape());
        assert_eq!(d_x.shape(), x.shape());
        assert_eq!(weights.shape(), (9, channels));
        assert_eq!(d_weights.shape(), (9, channels));
        grids::depthwise3x3_backward(
            data(x),
            data(d_out),
            channels,
            grids,
            data(weights),
            data_mut(d_x),
            data_mut(d_weights),
        );
    }

    fn gelu_residual(&self, pre: &Tensor, residual: &Tensor, out: &mut Tensor) {
        assert_eq!(pre.shape(), residual.shape());
        assert_eq!(out.shape(), pre.shape());
        zip_elementwise(
            data_mut(out),
            data(pre),
            data(residual),
            #[inline(always)]
            |o, p, r| *o = r + gelu(p),
        );
    }

    fn gelu_backward(&self, pre: &Tensor, d_out: &Tensor, d_pre: &mut Tensor) {
        assert_eq!(pre.shape(), d_out.shape());
        assert_eq!(d_pre.shape(), pre.shape());
        zip_elementwise(
            data_mut(d_pre),
            data(pre),
            data(d_out),
            #[inline(always)]
            |o, p, d| *o = d * gelu_derivative(p),
        );
    }

    fn residual_clip(&self, base: &Tensor, delta: &Tensor, out: &mut Tensor) {
        assert_eq!(base.shape(), delta.shape());
        assert_eq!(out.shape(), base.shape());
        zip_elementwise(
            data_mut(out),
            data(base),
            data(delta),
            #[inline(always)]
            |o, b, d| *o = (b + d).clamp(0.0, 1.0),
        );
    }

    fn clip_backward(&self, base: &Tensor, delta: &Tensor, grad: &mut Tensor) {
        assert_eq!(base.shape(), delta.shape());
        assert_eq!(grad.shape(), base.shape());
        zip_elementwise(
            data_mut(grad),
            data(base),
            data(delta),
            #[inline(always)]
            |g, b, d| {
                if !(0.0..=1.0).contains(&(b + d)) {
                    *g = 0.0;
                }
            },
        );
    }

    fn l1_grad(
        &self,
        pred: &Tensor,
        target: &Tensor,
        grids: Grids,
        level_scales: &[f32],
        grad: &mut Tensor,
    ) -> Vec<LevelSums> {
        check_level_loss("l1_grad", pred, target, grids, level_scales, grad);
        grids::l1_grad(
            data(pred),
            data(target),
            pred.cols(),
            grids,
            level_scales,
            data_mut(grad),
        )
    }

    fn image_gradient_l1_grad(
        &self,
        pred: &Tensor,
        target: &Tensor,
        grids: Grids,
        level_scales: &[f32],
        grad: &mut Tensor,
    ) -> Vec<f64> {
        check_level_loss(
            "image_gradient_l1_grad",
            pred,
            target,
            grids,
            level_scales,
            grad,
        );
        grids::image_gradient_l1_grad(
            data(pred),
            data(target),
            pred.cols(),
            grids,
            level_scales,
            data_mut(grad),
        )
    }

    fn ssim_grad(
        &self,
        pred: &Tensor,
        target: &Tensor,
        grids: Grids,
        level_scales: &[f32],
        grad: &mut Tensor,
    ) -> Vec<f64> {
        check_level_loss("ssim_grad", pred, target, grids, level_scales, grad);
        grids::ssim_grad(
            data(pred),
            data(target),
            pred.cols(),
            grids,
            level_scales,
            data_mut(grad),
        )
    }

    fn upsample_nearest_backward(&self, d_up: &Tensor, grids: Grids, d_image: &mut Tensor) {
        let channels = d_image.cols();
        assert_eq!(d_image.rows(), grids.rows());
        assert_eq!(d_up.shape(), (grids.doubled().rows(), channels));
        grids::upsample_nearest_backward(data(d_up), channels, grids, data_mut(d_image));
    }

    fn add_diagonal_blocks(&self, block: &Tensor, out: &mut Tensor) {
        let c = block.rows();
        assert_eq!(block.cols(), c, "add_diagonal_blocks: the block is square");
        let n = out.rows();
        assert!(
            out.cols() == n && n.is_multiple_of(c),
            "add_diagonal_blocks: out is kC×kC"
        );
        let (block, out) = (data(block), data_mut(out));
        for b in 0..n / c {
            for i in 0..c {
                for j in 0..c {
                    out[(b * c + i) * n + b * c + j] += block[i * c + j];
                }
            }
        }
    }

    fn sum_diagonal_blocks(&self, matrix: &Tensor, out: &mut Tensor) {
        let c = out.rows();
        assert_eq!(out.cols(), c, "sum_diagonal_blocks: out is square");
        let n = matrix.rows();
        assert!(
            matrix.cols() == n && n.is_multiple_of(c),
            "sum_diagonal_blocks: matrix is kC×kC"
        );
        let (matrix, out) = (data(matrix), data_mut(out));
        for b in 0..n / c {
            for i in 0..c {
                for j in 0..c {
                    out[i * c + j] += matrix[(b * c + i) * n + b * c + j];
                }
            }
        }
    }

    fn mse(&self, a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.shape(), b.shape());
        let total: f64 = data(a)
            .par_chunks(ELEMENTWISE_CHUNK)
            .zip(data(b).par_chunks(ELEMENTWISE_CHUNK))
            .map(|(a, b)| {
                vectorized(
                    #[inline(always)]
                    || {
                        a.iter()
                            .zip(b)
                            .map(|(&a, &b)| {
                                let d = a as f64 - b as f64;
                                d * d
                            })
                            .sum::<f64>()
                    },
                )
            })
            .sum();
        total / a.len().max(1) as f64
    }

    fn sum(&self, a: &Tensor) -> f64 {
        data(a)
            .par_chunks(ELEMENTWISE_CHUNK)
            .map(|chunk| chunk.iter().map(|&v| v as f64).sum::<f64>())
            .sum()
    }

    fn clip(&self, x: &mut Tensor, lo: f32, hi: f32) {
        for_each_chunk(
            data_mut(x),
            #[inline(always)]
            |chunk, _| {
                chunk.iter_mut().for_each(|v| *v = v.clamp(lo, hi));
            },
        );
    }

    fn axpy(&self, alpha: f32, x: &Tensor, y: &mut Tensor) {
        assert_eq!(x.shape(), y.shape());
        let x = data(x);
        for_each_chunk(
            data_mut(y),
            #[inline(always)]
            |chunk, offset| {
                for (y, &x) in chunk.iter_mut().zip(&x[offset..]) {
                    *y += alpha * x;
                }
            },
        );
    }

    fn concat_cols(&self, parts: &[&Tensor], out: &mut Tensor) {
        let (n, cols) = out.shape();
        assert_eq!(parts.iter().map(|p| p.cols()).sum::<usize>(), cols);
        let sources: Vec<(&[f32], usize)> = parts
            .iter()
            .map(|p| {
                assert_eq!(p.rows(), n);
                (data(p), p.cols())
            })
            .collect();
        data_mut(out)
            .par_chunks_mut(cols)
            .enumerate()
            .for_each(|(row, out_row)| {
                let mut at = 0;
                for &(values, width) in &sources {
                    out_row[at..at + width].copy_from_slice(&values[row * width..][..width]);
                    at += width;
                }
            });
    }

    fn mse_grad(&self, pred: &Tensor, target: &Tensor, scale: f32, out: &mut Tensor) {
        assert_eq!(pred.shape(), target.shape());
        assert_eq!(pred.shape(), out.shape());
        zip_elementwise(
            data_mut(out),
            data(pred),
            data(target),
            #[inline(always)]
            |g, p, t| *g = 2.0 * scale * (p - t),
        );
    }

    fn sgd_momentum(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        velocity: &mut Tensor,
        learning_rate: f32,
        momentum: f32,
    ) {
        assert_eq!(param.shape(), grad.shape());
        assert_eq!(param.shape(), velocity.shape());
        let g = data(grad);
        let v = data_mut(velocity);
        let p = data_mut(param);
        p.par_chunks_mut(ELEMENTWISE_CHUNK)
            .zip(v.par_chunks_mut(ELEMENTWISE_CHUNK))
            .zip(g.par_chunks(ELEMENTWISE_CHUNK))
            .for_each(|((p, v), g)| {
                vectorized(
                    #[inline(always)]
                    || {
                        for ((p, v), &g) in p.iter_mut().zip(v.iter_mut()).zip(g) {
                            *v = momentum * *v + g;
                            *p -= learning_rate * *v;
                        }
                    },
                )
            });
    }

    fn adam(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        first_moment: &mut Tensor,
        second_moment: &mut Tensor,
        hyper: AdamStep,
    ) {
        assert_eq!(param.shape(), grad.shape());
        assert_eq!(param.shape(), first_moment.shape());
        assert_eq!(param.shape(), second_moment.shape());
        let AdamStep {
            learning_rate,
            beta1,
            beta2,
            epsilon,
            step,
        } = hyper;
        let correction1 = 1.0 - beta1.powi(step as i32);
        let correction2_sqrt = (1.0 - beta2.powi(step as i32)).sqrt();
        let step_size = learning_rate / correction1;
        let g = data(grad);
        let m = data_mut(first_moment);
        let v = data_mut(second_moment);
        let p = data_mut(param);
        p.par_chunks_mut(ELEMENTWISE_CHUNK)
            .zip(m.par_chunks_mut(ELEMENTWISE_CHUNK))
            .zip(v.par_chunks_mut(ELEMENTWISE_CHUNK))
            .zip(g.par_chunks(ELEMENTWISE_CHUNK))
            .for_each(|(((p, m), v), g)| {
                vectorized(
                    #[inline(always)]
                    || {
                        for (((p, m), v), &g) in
                            p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g)
                        {
                            *m = beta1 * *m + (1.0 - beta1) * g;
                            *v = beta2 * *v + (1.0 - beta2) * g * g;
                            *p -= step_size * *m / (v.sqrt() / correction2_sqrt + epsilon);
                        }
                    },
                )
            });
    }
}

/// Source rows (or columns) and weight of output index `out` in a 2× half-pixel upsampling.
fn bilinear_source(out: usize, size: usize) -> (usize, usize, f32) {
    let source = ((out as f32 + 0.5) / 2.0 - 0.5).max(0.0);
    let lower = (source.floor() as usize).min(size - 1);
    let upper = (lower + 1).min(size - 1);
    (lower, upper, source - lower as f32)
}

/// Rows per block of the fused dense backward pass: the block's dz (≤ 256 KiB at 256 wide)
/// stays in L2 while it feeds both the weight-gradient and the input-gradient products.
const BACKWARD_ROWS: usize = 256;
/// Layers at most this wide take plain loops (sigmoid RGB heads): blocked kernels crawl there.
const THIN_LAYER: usize = 8;

/// The whole dense backward pass in one sweep over row blocks: each block forms
/// `dz = dy ⊙ act'(y)` in a scratch buffer, adds `x_blockᵀ·dz` into its task's partial dW and
/// the column sums into its partial db, and writes `dx_block = dz·Wᵀ`; the partials are summed
/// at the end. One task per thread, so dW is never contended and nothing is allocated per row.
#[allow(clippy::too_many_arguments)]
fn fused_dense_backward(
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
fn thin_dense_forward(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_tanh_is_accurate_to_a_few_ulp() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            let exact = (x as f64).tanh();
            worst = worst.max((fast_tanh(x) as f64 - exact).abs());
        }
        assert!(worst < 5e-7, "worst absolute error {worst}");
        // Saturates at ±1 for huge inputs instead of overflowing to NaN.
        assert!((fast_tanh(1e9) - 1.0).abs() < 1e-6 && (fast_tanh(-1e9) + 1.0).abs() < 1e-6);
        assert!(fast_tanh(f32::MAX) <= 1.0 && fast_tanh(-f32::MAX) >= -1.0);
    }
}
