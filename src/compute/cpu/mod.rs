//! The native backend: faer products and rayon loops over f32 in host memory.
//!
//! Not a slow reference: it is what users without a GPU run, so products are row-chunked with
//! their epilogue (bias, input projection, activation) applied while the chunk is still in cache,
//! and f64 Gram products reuse one f64 copy of each tensor for as long as it is unchanged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

mod gram;
mod grids;
mod products;
use gram::{READOUT_ROWS, dot, gram_chunks};
pub use grids::{fast_erf, fast_exp, gelu, gelu_derivative};
pub use products::fast_tanh;
use products::{
    THIN_LAYER, activate_in_place, fused_dense_backward, fused_product, reservoir_step_chunks,
    thin_dense_forward,
};

use super::{
    Activation, AdamStep, Backend, BackendKind, CancelToken, Cancelled, Grids, LevelSums,
    MemoryBudget, Storage, Tensor, Upsample,
};
use crate::compute::check_level_loss;

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
