//! The compute interface every method is written against, and its two backends.
//!
//! A [`Tensor`] is a row-major `rows × cols` matrix of f32 that lives where its backend keeps it
//! (host memory for [`cpu::CpuBackend`], a storage buffer for [`gpu::GpuBackend`]). Methods never
//! look inside: they call [`Backend`] operations and only [`Backend::download`] what somebody
//! looks at. Images are tensors too: `height·width` rows (row-major pixels) × channels.
//!
//! The ridge readouts need f64-accurate Gram products (condition numbers of 1e11–1e13), so
//! [`Backend::gram`] and [`Backend::readout`] accumulate in f64 (CPU) or float-float (GPU)
//! and hand f64 to the host, where the solve happens (see `crate::linalg`).

pub mod cancel;
pub mod cpu;
pub mod gpu;

pub use cancel::{CancelToken, Cancelled};

use std::fmt;

/// Element-wise activation fused into dense layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    Identity,
    Relu,
    Tanh,
    Sigmoid,
}

impl Activation {
    pub fn index(self) -> u32 {
        self as u32
    }
}

/// How a 2× upsampling fills the new pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsample {
    Nearest,
    /// Half-pixel centres, edge-clamped (PyTorch's `align_corners=False`).
    Bilinear,
}

/// Where a tensor's data lives.
pub enum Storage {
    Cpu(cpu::CpuStorage),
    Gpu(gpu::GpuStorage),
}

/// A row-major `rows × cols` f32 matrix owned by one backend.
pub struct Tensor {
    rows: usize,
    cols: usize,
    pub(crate) storage: Storage,
}

impl Tensor {
    pub(crate) fn new(rows: usize, cols: usize, storage: Storage) -> Self {
        Tensor {
            rows,
            cols,
            storage,
        }
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = match self.storage {
            Storage::Cpu(_) => "cpu",
            Storage::Gpu(_) => "gpu",
        };
        write!(f, "Tensor({}×{} on {place})", self.rows, self.cols)
    }
}

/// Which implementation runs the operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BackendKind {
    Cpu,
    Gpu,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Gpu => "gpu",
        })
    }
}

/// The user's choice on the command line or in the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendChoice {
    /// A hardware GPU when wgpu finds one, the CPU backend otherwise.
    #[default]
    Auto,
    Cpu,
    /// Any wgpu adapter, software ones (lavapipe) included.
    Gpu,
}

/// Where the compute thread's backend comes from.
#[derive(Clone, Debug)]
pub enum BackendSource {
    /// Opened by [`create_backend`].
    Choice(BackendChoice),
    /// The window's own wgpu device: the compute shares it, and frames are shown straight
    /// from it ([`Backend::present`]).
    Shared(gpu::SharedDevice),
}

impl From<BackendChoice> for BackendSource {
    fn from(choice: BackendChoice) -> Self {
        BackendSource::Choice(choice)
    }
}

impl BackendSource {
    /// Whether the window shows frames from the backend's device.
    pub fn shares_the_window_device(&self) -> bool {
        matches!(self, BackendSource::Shared(_))
    }

    pub fn create(&self) -> anyhow::Result<Box<dyn Backend>> {
        match self {
            BackendSource::Choice(choice) => create_backend(*choice),
            BackendSource::Shared(shared) => Ok(Box::new(gpu::GpuBackend::from_shared(shared)?)),
        }
    }
}

/// A fresh [`Backend::instance_id`].
pub fn next_instance_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Operations on device-resident f32 tensors. Shapes are checked with assertions: a mismatch is
/// a bug in the caller, never a user error. Outputs are written into caller-owned tensors so
/// that buffers stay allocated across steps.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// Distinct for every backend made in this process; tensors belong to one instance, so
    /// caches of tensors are keyed by it.
    fn instance_id(&self) -> u64;
    /// Human-readable adapter, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)" or "CPU (2 threads)".
    fn adapter_name(&self) -> String;
    /// The device's submissions, waits and bind groups so far, where the backend has a device
    /// (the bench reports them per step).
    fn device_counters(&self) -> Option<gpu::GpuCounters> {
        None
    }
    /// This backend as the GPU backend, where it is one: for measuring kernels the trait's
    /// operations do not always take (the bench times the Gram kernel on software adapters,
    /// where `gram` goes through the host).
    fn as_gpu(&self) -> Option<&gpu::GpuBackend> {
        None
    }
    /// Writes the size×size RGB `image` into `picture` (made or remade to fit) on the device,
    /// for a window that renders on this backend's device and samples it as a native texture.
    /// False, touching nothing, where the backend has no device.
    fn present(
        &self,
        _image: &Tensor,
        _size: usize,
        _picture: &mut Option<std::sync::Arc<gpu::DisplayTexture>>,
    ) -> bool {
        false
    }
    /// Why the device is gone, once it is (a GPU reset or removed); `None` while it works.
    /// Everything on a lost device is gone with it.
    fn lost(&self) -> Option<String> {
        None
    }
    /// Loses the device as a driver reset would (GPU), so tests can check the fallback.
    #[cfg(feature = "testing")]
    fn lose_device_for_test(&self) {}

    /// A tensor holding `data`. Fails (rather than aborting) when the backend cannot allocate
    /// it: more than the host has, or more than the adapter binds.
    fn upload(&self, rows: usize, cols: usize, data: &[f32]) -> anyhow::Result<Tensor>;
    /// A zero-filled tensor; fails as [`Backend::upload`] does.
    fn zeros(&self, rows: usize, cols: usize) -> anyhow::Result<Tensor>;
    /// What this backend can give a method, checked against its memory estimate before it is
    /// built.
    fn memory_budget(&self) -> MemoryBudget;
    fn download(&self, tensor: &Tensor) -> Vec<f32>;
    /// Overwrites a tensor's contents from the host.
    fn write(&self, tensor: &mut Tensor, data: &[f32]);
    fn copy(&self, source: &Tensor, destination: &mut Tensor);
    /// Waits until all queued work has finished (for timing; downloads wait anyway).
    fn finish(&self);

    /// γ(x) = [sin(2π x·B), cos(2π x·B)]: `coords` N×2, `frequencies` 2×m, `out` N×2m.
    fn fourier_encode(&self, coords: &Tensor, frequencies: &Tensor, out: &mut Tensor);

    /// Fused reservoir update `out = tanh(input·W_in + state·W_hh + bias)` in one pass.
    /// `state = None` means the zero state (the first step skips its product).
    fn reservoir_step(
        &self,
        input: &Tensor,
        input_weights: &Tensor,
        state: Option<&Tensor>,
        recurrent_weights: &Tensor,
        bias: &Tensor,
        out: &mut Tensor,
    );

    /// `out = act(x·W + b)`: x N×in, W in×out, b 1×out.
    fn dense_forward(
        &self,
        x: &Tensor,
        weights: &Tensor,
        bias: &Tensor,
        activation: Activation,
        out: &mut Tensor,
    );

    /// Gradients of a dense layer from its input `x`, its activated output `y` and `dL/dy`:
    /// `dz = dy ⊙ act'(y)`, `dW = xᵀ·dz`, `db = Σ_rows dz`, `dx = dz·Wᵀ` (when asked for).
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
    );

    /// `[A₁ … A_k]ᵀ · B` accumulated f64-accurately, returned row-major to the host as a
    /// `(Σ cols(A_i)) × cols(B)` matrix. When a block is the same tensor as `B` the product
    /// is symmetric and only one triangle need be computed.
    fn gram(&self, blocks: &[&Tensor], b: &Tensor) -> Vec<f64>;

    /// [`Backend::gram`] that gives up between chunks once `cancel` is set. The result is the
    /// same as `gram`'s when it completes. Backends whose products are quick need not chunk.
    fn gram_until(
        &self,
        blocks: &[&Tensor],
        b: &Tensor,
        cancel: &CancelToken,
    ) -> Result<Vec<f64>, Cancelled> {
        cancel.check()?;
        let product = self.gram(blocks, b);
        cancel.check()?;
        Ok(product)
    }

    /// [`Backend::reservoir_step`] that gives up between row chunks once `cancel` is set
    /// (`out` is then partly written and must be discarded).
    #[allow(clippy::too_many_arguments)]
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
        cancel.check()?;
        self.reservoir_step(input, input_weights, state, recurrent_weights, bias, out);
        cancel.check()
    }

    /// `out = [A₁ … A_k] · W` with W given in f64 (`Σ cols(A_i)` × `cols(out)`, row-major) and
    /// f64-accurate accumulation: ridge weights are large and cancel, so an f32 product loses dB.
    fn readout(&self, blocks: &[&Tensor], weights: &[f64], out: &mut Tensor);

    /// One level of the orthonormal 2-D Haar transform. `image` is (height·width) × C;
    /// `bands` is (4·h·w) × C with h = height/2, w = width/2, stacked LL, HL, LH, HH in the
    /// naming of [`Backend::haar_split`] (seed 001's prototype: LH differs along x, HL along
    /// y). With a, b the top pair and c, d the bottom pair of a 2×2 block:
    /// LL = (a+b+c+d)/2, HL = (a+b−c−d)/2, LH = (a−b+c−d)/2, HH = (a−b−c+d)/2.
    fn haar_forward(&self, image: &Tensor, height: usize, width: usize, bands: &mut Tensor);
    /// The inverse of [`Backend::haar_forward`]; `height`, `width` are the output's size.
    fn haar_inverse(&self, bands: &Tensor, height: usize, width: usize, image: &mut Tensor);
    /// 2× upsampling of a (height·width) × C image into (2height·2width) × C.
    fn upsample2x(
        &self,
        image: &Tensor,
        height: usize,
        width: usize,
        mode: Upsample,
        out: &mut Tensor,
    );

    /// One Haar level of every grid in `grids` with its bands as columns, for weights that mix
    /// bands: `low` is (rows/4) × C (LL), `high` is (rows/4) × 3C with column blocks LH, HL, HH
    /// (seed 001's prototype's names and order: LH = (a−b+c−d)/2 differs along x, HL =
    /// (a+b−c−d)/2 along y, HH = (a−b−c+d)/2, with a, b the top pair of a 2×2 block). Both
    /// outputs are laid out as `grids.halved()`.
    fn haar_split(&self, image: &Tensor, grids: Grids, low: &mut Tensor, high: &mut Tensor);
    /// The inverse (and adjoint) of [`Backend::haar_split`]: `grids` is the image's layout.
    fn haar_merge(&self, low: &Tensor, high: &Tensor, grids: Grids, image: &mut Tensor);
    /// Adds the 3×3 depthwise cross-correlation of `x` (zero padding, per grid) to `out`:
    /// `out[y,x,c] += Σ_{i,j} weights[3i+j, c] · x[y+i−1, x+j−1, c]`; `weights` is 9 × C
    /// (PyTorch's `Conv2d(C, C, 3, padding=1, groups=C)` weight `[c, 0, i, j]` at row 3i+j).
    fn depthwise3x3(&self, x: &Tensor, grids: Grids, weights: &Tensor, out: &mut Tensor);
    /// Backward of [`Backend::depthwise3x3`] given `d_out`: adds `dL/dx` to `d_x` and writes
    /// `dL/dweights` (9 × C) to `d_weights`.
    fn depthwise3x3_backward(
        &self,
        x: &Tensor,
        d_out: &Tensor,
        grids: Grids,
        weights: &Tensor,
        d_x: &mut Tensor,
        d_weights: &mut Tensor,
    );
    /// `out = residual + GELU(pre)` with the exact (erf) GELU, PyTorch's default.
    fn gelu_residual(&self, pre: &Tensor, residual: &Tensor, out: &mut Tensor);
    /// `d_pre = d_out ⊙ GELU'(pre)`.
    fn gelu_backward(&self, pre: &Tensor, d_out: &Tensor, d_pre: &mut Tensor);
    /// `out = clip(base + delta, 0, 1)`: a residual prediction kept in the image range.
    fn residual_clip(&self, base: &Tensor, delta: &Tensor, out: &mut Tensor);
    /// Backward of [`Backend::residual_clip`] in place: zeroes `grad` where `base + delta`
    /// lies outside [0, 1] (PyTorch's clamp passes the gradient on the bounds themselves).
    fn clip_backward(&self, base: &Tensor, delta: &Tensor, grad: &mut Tensor);
    /// L1 loss gradient per grid level: writes `grad = scale_ℓ · sign(pred − target)` (sign 0
    /// at 0) with `level_scales[ℓ]` for level ℓ of `grids`, and returns per level the sums of
    /// |pred − target| and (pred − target)² over its images, accumulated in f64.
    fn l1_grad(
        &self,
        pred: &Tensor,
        target: &Tensor,
        grids: Grids,
        level_scales: &[f32],
        grad: &mut Tensor,
    ) -> Vec<LevelSums>;
    /// Gradient-difference loss Σ |∇pred − ∇target| with forward differences inside each grid
    /// (right and down neighbours; none across an edge): adds `scale_ℓ ·` its gradient to
    /// `grad` and returns per level the f64 sum of the absolute differences.
    fn image_gradient_l1_grad(
        &self,
        pred: &Tensor,
        target: &Tensor,
        grids: Grids,
        level_scales: &[f32],
        grad: &mut Tensor,
    ) -> Vec<f64>;
    /// Structural similarity per grid (Gaussian window σ = 1.5, radius 5, normalised over the
    /// taps inside the grid; C1 = 0.01², C2 = 0.03² for values in [0, 1]; each channel
    /// separately), and the gradient of the loss Σ_grids scale_ℓ·(1 − mean SSIM of the grid)
    /// added to `grad`. Returns per level the sum over its grids of their mean SSIM,
    /// accumulated in f64.
    fn ssim_grad(
        &self,
        pred: &Tensor,
        target: &Tensor,
        grids: Grids,
        level_scales: &[f32],
        grad: &mut Tensor,
    ) -> Vec<f64>;
    /// Backward of 2× nearest upsampling: `d_image` (laid out as `grids`) gets the sum of each
    /// 2×2 block of `d_up` (laid out as `grids.doubled()`).
    fn upsample_nearest_backward(&self, d_up: &Tensor, grids: Grids, d_image: &mut Tensor);
    /// Adds the C×C `block` to each of the k diagonal blocks of the kC×kC `out`.
    fn add_diagonal_blocks(&self, block: &Tensor, out: &mut Tensor);
    /// Adds the sum of the k diagonal C×C blocks of the kC×kC `matrix` to `out` (C×C): the
    /// adjoint of [`Backend::add_diagonal_blocks`].
    fn sum_diagonal_blocks(&self, matrix: &Tensor, out: &mut Tensor);

    /// Mean of squared differences over all elements (for PSNR), accumulated in f64.
    fn mse(&self, a: &Tensor, b: &Tensor) -> f64;
    /// [`Backend::mse`] of each pair, read back together: a step's scalars cost one wait for
    /// the device, not one each.
    fn mses(&self, pairs: &[(&Tensor, &Tensor)]) -> Vec<f64> {
        pairs.iter().map(|(a, b)| self.mse(a, b)).collect()
    }
    /// Sum of all elements, accumulated in f64.
    fn sum(&self, a: &Tensor) -> f64;
    /// Clamps every element into `[lo, hi]` in place.
    fn clip(&self, x: &mut Tensor, lo: f32, hi: f32);
    /// `y += alpha·x`.
    fn axpy(&self, alpha: f32, x: &Tensor, y: &mut Tensor);
    /// Places the parts side by side: `out = [P₁ P₂ …]` (same rows).
    fn concat_cols(&self, parts: &[&Tensor], out: &mut Tensor);

    /// Gradient of `scale · Σ (pred − target)²`: `out = 2·scale·(pred − target)`.
    fn mse_grad(&self, pred: &Tensor, target: &Tensor, scale: f32, out: &mut Tensor);
    /// Heavy-ball SGD as PyTorch does it: `v = momentum·v + g; p -= lr·v`.
    fn sgd_momentum(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        velocity: &mut Tensor,
        learning_rate: f32,
        momentum: f32,
    );
    /// Adam as PyTorch does it, with bias correction for 1-based `step`.
    fn adam(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        first_moment: &mut Tensor,
        second_moment: &mut Tensor,
        hyper: AdamStep,
    );
}

/// The shapes every per-level loss operation (`l1_grad`, `image_gradient_l1_grad`, `ssim_grad`)
/// takes, on either backend: `pred` laid out as `grids`, `target` and `grad` like it, one scale
/// per level. Panics naming `operation` otherwise (a caller's bug).
pub(crate) fn check_level_loss(
    operation: &str,
    pred: &Tensor,
    target: &Tensor,
    grids: Grids,
    level_scales: &[f32],
    grad: &Tensor,
) {
    assert_eq!(
        pred.rows(),
        grids.rows(),
        "{operation}: pred must be laid out as grids"
    );
    assert_eq!(target.shape(), pred.shape(), "{operation}: target shape");
    assert_eq!(grad.shape(), pred.shape(), "{operation}: grad shape");
    assert_eq!(
        level_scales.len(),
        grids.levels,
        "{operation}: one scale per level"
    );
}

/// Square images stacked as tensor rows: `count` images, each a pyramid of `levels` grids of
/// sides `first_side`, 2·`first_side`, 4·`first_side`, …; rows go image by image, level by level
/// within an image, row-major pixels within a grid. One grid is `Grids::single(side)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Grids {
    pub count: usize,
    pub first_side: usize,
    pub levels: usize,
}

impl Grids {
    pub fn single(side: usize) -> Self {
        Grids {
            count: 1,
            first_side: side,
            levels: 1,
        }
    }
    /// The side of level `level`.
    pub fn side(&self, level: usize) -> usize {
        self.first_side << level
    }
    /// Rows of one image's pyramid.
    pub fn rows_per_image(&self) -> usize {
        (0..self.levels).map(|l| self.side(l) * self.side(l)).sum()
    }
    pub fn rows(&self) -> usize {
        self.count * self.rows_per_image()
    }
    /// The same stack with every side halved (the layout of Haar bands, of a 2× downsampling).
    pub fn halved(&self) -> Self {
        assert!(
            self.first_side.is_multiple_of(2),
            "grids of side {} cannot be halved",
            self.first_side
        );
        Grids {
            first_side: self.first_side / 2,
            ..*self
        }
    }
    /// The same stack with every side doubled (the layout of a 2× upsampling).
    pub fn doubled(&self) -> Self {
        Grids {
            first_side: self.first_side * 2,
            ..*self
        }
    }
    /// Every grid as (first row, side, level), in row order.
    pub fn grids(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let per_image = self.rows_per_image();
        (0..self.count).flat_map(move |image| {
            let mut row = image * per_image;
            (0..self.levels).map(move |level| {
                let side = self.side(level);
                let first = row;
                row += side * side;
                (first, side, level)
            })
        })
    }
    /// The first row of level `level` within one image's block of rows.
    pub fn level_offset(&self, level: usize) -> usize {
        (0..level).map(|l| self.side(l) * self.side(l)).sum()
    }
}

/// Per-level sums of a loss, accumulated in f64.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LevelSums {
    pub absolute: f64,
    pub squared: f64,
}

/// What a backend can hold, as far as it can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Host memory free now (MemAvailable on Linux); `None` where the system does not say.
    pub host_free_bytes: Option<u64>,
    /// Whether tensors live in host memory (the CPU backend, software adapters), so they count
    /// against `host_free_bytes`. wgpu reports no free device memory, so a hardware device is
    /// only checked against its buffer limits.
    pub tensors_in_host_memory: bool,
    /// Whether the backend keeps an f64 copy of each tensor entering a Gram product (the CPU
    /// backend does, for as long as the tensor is unchanged).
    pub keeps_f64_gram_copies: bool,
    /// The largest single tensor (or temporary buffer) it can allocate.
    pub largest_tensor_bytes: u64,
    /// Which limit `largest_tensor_bytes` is, for messages.
    pub largest_tensor_limit: &'static str,
}

/// Free host memory: MemAvailable from /proc/meminfo on Linux; `None` elsewhere or when it
/// cannot be read (then only the allocations themselves can fail).
pub fn host_free_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&meminfo)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// The bytes of a `rows × cols` f32 tensor, or an error naming the shape when it overflows.
pub(crate) fn tensor_bytes(rows: usize, cols: usize) -> anyhow::Result<u64> {
    rows.checked_mul(cols)
        .and_then(|len| len.checked_mul(4))
        .map(|bytes| bytes as u64)
        .ok_or_else(|| anyhow::anyhow!("a {rows}×{cols} tensor is too large to address"))
}

/// Bytes as decimal gigabytes with one decimal, for messages ("9.7 GB").
pub fn format_gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// One Adam update's hyperparameters.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub learning_rate: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    /// 1 for the first update.
    pub step: u32,
}

/// Builds the backend the user asked for. `auto` takes a hardware GPU adapter when there is one
/// and the CPU backend otherwise: a software adapter such as lavapipe is ~100× slower than the
/// CPU backend, so it is only used when asked for by name.
pub fn create_backend(choice: BackendChoice) -> anyhow::Result<Box<dyn Backend>> {
    match choice {
        BackendChoice::Cpu => Ok(Box::new(cpu::CpuBackend::new())),
        BackendChoice::Gpu => Ok(Box::new(gpu::GpuBackend::new(true)?)),
        BackendChoice::Auto => match gpu::GpuBackend::new(false) {
            Ok(gpu) => Ok(Box::new(gpu)),
            Err(_) => Ok(Box::new(cpu::CpuBackend::new())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_read_in_bytes() {
        let meminfo =
            "MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(20_000_000 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 5 kB\n"), None);
        assert_eq!(format_gb(9_749_000_000), "9.7 GB");
        assert!(tensor_bytes(usize::MAX, 2).is_err());
        assert_eq!(tensor_bytes(3, 5).unwrap(), 60);
    }
}
