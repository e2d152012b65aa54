//! One suite for every operation of [`Backend`], run on both backends against plain f64
//! reference implementations written here.
//!
//! Sizes are small and odd on purpose (1, 37, 257 rows; widths 1, 3, 17, 70): they cross the
//! GPU's 8-deep slices, 64- and 128-wide tiles and 256-wide workgroups at awkward places. Tolerances:
//! f32 operations agree with the f64 references to ~1e-5 of the result's scale; gram, readout,
//! mse and sum are f64-accurate (~1e-12 of the summed magnitudes).
//!
//! GPU policy: without an adapter the GPU half is skipped loudly, or fails when
//! `INRLAB_REQUIRE_GPU=1` (see `inrlab::compute::gpu::test_backend`). Lavapipe counts as an
//! adapter, so these tests exercise the real shaders on machines without a GPU.

use std::sync::OnceLock;

use inrlab::compute::cpu::CpuBackend;
use inrlab::compute::gpu::{self, GpuBackend};
use inrlab::compute::{Activation, AdamStep, Backend, BackendKind, Grids, Tensor, Upsample};

// ---------------------------------------------------------------------------------------------
// Harness

fn gpu_backend() -> Option<&'static GpuBackend> {
    static GPU: OnceLock<Option<GpuBackend>> = OnceLock::new();
    GPU.get_or_init(gpu::test_backend).as_ref()
}

fn cpu_backend() -> &'static CpuBackend {
    static CPU: OnceLock<CpuBackend> = OnceLock::new();
    CPU.get_or_init(CpuBackend::new)
}

/// The backends under test: the CPU backend always, the GPU backend when an adapter exists.
fn backends() -> Vec<&'static dyn Backend> {
    let mut list: Vec<&'static dyn Backend> = vec![cpu_backend()];
    if let Some(gpu) = gpu_backend() {
        list.push(gpu);
    }
    list
}

/// A tiny deterministic generator (Knuth's MMIX LCG); no crates needed for test data.
struct Lcg(u64);

impl Lcg {
    fn new(seed: u64) -> Self {
        Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// `count` f32 values uniform in [lo, hi).
    fn values(&mut self, count: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..count)
            .map(|_| (lo + (hi - lo) * self.unit()) as f32)
            .collect()
    }
}

fn wide(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

/// Asserts `|got − want| ≤ relative·scale + absolute` element-wise, where `scale` is the
/// largest |want| (at least 1): f32 results are judged against the size of what they hold,
/// not element by element, so near-zero entries of a sum are not held to impossible digits.
fn assert_close(what: &str, backend: &dyn Backend, got: &[f32], want: &[f64], relative: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what} on {}: length",
        backend.adapter_name()
    );
    let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
    for (index, (&g, &w)) in got.iter().zip(want).enumerate() {
        let error = (f64::from(g) - w).abs();
        assert!(
            error <= relative * scale,
            "{what} on {}: element {index} is {g}, want {w} (error {error:e}, allowed {:e})",
            backend.adapter_name(),
            relative * scale
        );
    }
}

/// Asserts f64 results within `relative` of the per-element magnitude `Σ|terms|`.
fn assert_f64_close(
    what: &str,
    backend: &dyn Backend,
    got: &[f64],
    want: &[f64],
    magnitude: &[f64],
    relative: f64,
) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what} on {}: length",
        backend.adapter_name()
    );
    for (index, ((&g, &w), &m)) in got.iter().zip(want).zip(magnitude).enumerate() {
        let error = (g - w).abs();
        assert!(
            error <= relative * m.max(f64::MIN_POSITIVE),
            "{what} on {}: element {index} is {g}, want {w} (error {error:e}, magnitude {m:e})",
            backend.adapter_name()
        );
    }
}

fn upload(backend: &dyn Backend, rows: usize, cols: usize, data: &[f32]) -> Tensor {
    backend.upload(rows, cols, data).unwrap()
}

// ---------------------------------------------------------------------------------------------
// References (f64, written for clarity)

/// `a·b` for row-major a (n×k) and b (k×m).
fn matmul(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            let mut sum = 0.0;
            for t in 0..k {
                sum += a[i * k + t] * b[t * m + j];
            }
            out[i * m + j] = sum;
        }
    }
    out
}

fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = a[i * cols + j];
        }
    }
    out
}

fn activate(activation: Activation, z: f64) -> f64 {
    match activation {
        Activation::Identity => z,
        Activation::Relu => z.max(0.0),
        Activation::Tanh => z.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
    }
}

fn derivative_from_output(activation: Activation, y: f64) -> f64 {
    match activation {
        Activation::Identity => 1.0,
        Activation::Relu => {
            if y > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Tanh => 1.0 - y * y,
        Activation::Sigmoid => y * (1.0 - y),
    }
}

const ACTIVATIONS: [Activation; 4] = [
    Activation::Identity,
    Activation::Relu,
    Activation::Tanh,
    Activation::Sigmoid,
];

/// (rows, inputs, outputs) of the product tests on the adapter's own tile choice: single
/// elements, sums just past one 8-deep slice, outputs just past 64 wide, and a single output
/// column. `TILED_SHAPES` crosses the tiles of every shape.
const PRODUCT_SHAPES: [(usize, usize, usize); 5] = [
    (1, 1, 1),
    (37, 3, 17),
    (37, 17, 3),
    (257, 17, 70),
    (65, 33, 1),
];

// ---------------------------------------------------------------------------------------------
// Data movement

#[test]
fn upload_download_write_copy_zeros() {
    for backend in backends() {
        let mut rng = Lcg::new(1);
        for (rows, cols) in [(1, 1), (37, 3), (257, 17)] {
            let data = rng.values(rows * cols, -1.0, 1.0);
            let tensor = upload(backend, rows, cols, &data);
            assert_eq!(tensor.shape(), (rows, cols));
            assert_eq!(
                backend.download(&tensor),
                data,
                "{}",
                backend.adapter_name()
            );

            let zeros = backend.zeros(rows, cols).unwrap();
            assert!(backend.download(&zeros).iter().all(|&v| v == 0.0));

            let mut target = backend.zeros(rows, cols).unwrap();
            backend.copy(&tensor, &mut target);
            assert_eq!(backend.download(&target), data);

            let replacement = rng.values(rows * cols, -1.0, 1.0);
            backend.write(&mut target, &replacement);
            assert_eq!(backend.download(&target), replacement);
            // The copy made before the write still holds the old contents.
            assert_eq!(backend.download(&tensor), data);
        }
        backend.finish();
    }
}

/// A write must not overtake operations recorded before it that read the same tensor.
#[test]
fn write_is_ordered_after_earlier_operations() {
    for backend in backends() {
        let x = upload(backend, 1, 3, &[1.0, 2.0, 3.0]);
        let mut source = upload(backend, 1, 3, &[10.0, 20.0, 30.0]);
        let mut y = x;
        backend.axpy(1.0, &source, &mut y);
        backend.write(&mut source, &[100.0, 200.0, 300.0]);
        backend.axpy(1.0, &source, &mut y);
        assert_eq!(backend.download(&y), vec![111.0, 222.0, 333.0]);
    }
}

// ---------------------------------------------------------------------------------------------
// Encoders and products

#[test]
fn fourier_encode_matches_reference() {
    for backend in backends() {
        let mut rng = Lcg::new(2);
        for (rows, m) in [(1, 1), (37, 3), (257, 17)] {
            let coords = rng.values(rows * 2, 0.0, 1.0);
            let frequencies = rng.values(2 * m, -10.0, 10.0);
            let mut out = backend.zeros(rows, 2 * m).unwrap();
            backend.fourier_encode(
                &upload(backend, rows, 2, &coords),
                &upload(backend, 2, m, &frequencies),
                &mut out,
            );
            let mut want = vec![0.0; rows * 2 * m];
            for n in 0..rows {
                for j in 0..m {
                    let phase = f64::from(coords[2 * n]) * f64::from(frequencies[j])
                        + f64::from(coords[2 * n + 1]) * f64::from(frequencies[m + j]);
                    let angle = 2.0 * std::f64::consts::PI * phase;
                    want[n * 2 * m + j] = angle.sin();
                    want[n * 2 * m + m + j] = angle.cos();
                }
            }
            // The f32 phase of |x·B| ≤ 20 carries ~1e-6 of rounding, times 2π.
            assert_close(
                "fourier_encode",
                backend,
                &backend.download(&out),
                &want,
                5e-5,
            );
        }
    }
}

#[test]
fn reservoir_step_matches_reference() {
    for backend in backends() {
        let mut rng = Lcg::new(3);
        for (rows, inputs, hidden) in PRODUCT_SHAPES {
            let input = rng.values(rows * inputs, -1.0, 1.0);
            let w_in = rng.values(inputs * hidden, -0.5, 0.5);
            let state = rng.values(rows * hidden, -1.0, 1.0);
            let w_hh = rng.values(hidden * hidden, -0.3, 0.3);
            let bias = rng.values(hidden, -0.2, 0.2);
            let t_input = upload(backend, rows, inputs, &input);
            let t_w_in = upload(backend, inputs, hidden, &w_in);
            let t_state = upload(backend, rows, hidden, &state);
            let t_w_hh = upload(backend, hidden, hidden, &w_hh);
            let t_bias = upload(backend, 1, hidden, &bias);
            let drive = matmul(&wide(&input), &wide(&w_in), rows, inputs, hidden);
            let recurrent = matmul(&wide(&state), &wide(&w_hh), rows, hidden, hidden);
            for with_state in [false, true] {
                let mut out = backend.zeros(rows, hidden).unwrap();
                backend.reservoir_step(
                    &t_input,
                    &t_w_in,
                    with_state.then_some(&t_state),
                    &t_w_hh,
                    &t_bias,
                    &mut out,
                );
                let want: Vec<f64> = (0..rows * hidden)
                    .map(|at| {
                        let z = drive[at]
                            + if with_state { recurrent[at] } else { 0.0 }
                            + f64::from(bias[at % hidden]);
                        z.tanh()
                    })
                    .collect();
                assert_close(
                    &format!("reservoir_step {rows}×{inputs}→{hidden} state={with_state}"),
                    backend,
                    &backend.download(&out),
                    &want,
                    1e-5,
                );
            }
        }
    }
}

/// tanh relative to its own value, on both backends and in both places it is fused (the
/// reservoir step and a dense layer): a few ulp everywhere, near zero too, where tanh
/// implementations built on exp lose digits. The reservoir states feed ill-conditioned ridge
/// systems, so the GPU computes the CPU backend's rational form rather than its driver's.
#[test]
fn tanh_is_accurate_relative_to_its_value() {
    // ±10^-7 … ±9: tiny values, the bend near 1, and saturation.
    let values: Vec<f32> = (0..=160)
        .map(|i| 10f32.powf(-7.0 + i as f32 / 20.0))
        .filter(|&v| v <= 9.0)
        .flat_map(|v| [v, -v])
        .collect();
    let rows = values.len();
    let want: Vec<f64> = values.iter().map(|&v| f64::from(v).tanh()).collect();
    for backend in backends() {
        let x = upload(backend, rows, 1, &values);
        let one = upload(backend, 1, 1, &[1.0]);
        let zero = upload(backend, 1, 1, &[0.0]);
        let mut dense = backend.zeros(rows, 1).unwrap();
        backend.dense_forward(&x, &one, &zero, Activation::Tanh, &mut dense);
        let mut step = backend.zeros(rows, 1).unwrap();
        backend.reservoir_step(&x, &one, None, &one, &zero, &mut step);
        for (what, out) in [("dense tanh", &dense), ("reservoir step", &step)] {
            for ((&got, &want), &value) in backend.download(out).iter().zip(&want).zip(&values) {
                let relative = (f64::from(got) - want).abs() / want.abs();
                assert!(
                    relative <= 1e-6,
                    "{what} on {}: tanh({value:e}) = {got:e}, want {want:e} (relative error \
                     {relative:e})",
                    backend.adapter_name()
                );
            }
        }
    }
}

#[test]
fn dense_forward_matches_reference() {
    for backend in backends() {
        let mut rng = Lcg::new(4);
        for (rows, inputs, outputs) in PRODUCT_SHAPES {
            let x = rng.values(rows * inputs, -1.0, 1.0);
            let w = rng.values(inputs * outputs, -1.0, 1.0);
            let b = rng.values(outputs, -0.5, 0.5);
            let z = matmul(&wide(&x), &wide(&w), rows, inputs, outputs);
            for activation in ACTIVATIONS {
                let mut out = backend.zeros(rows, outputs).unwrap();
                backend.dense_forward(
                    &upload(backend, rows, inputs, &x),
                    &upload(backend, inputs, outputs, &w),
                    &upload(backend, 1, outputs, &b),
                    activation,
                    &mut out,
                );
                let want: Vec<f64> = (0..rows * outputs)
                    .map(|at| activate(activation, z[at] + f64::from(b[at % outputs])))
                    .collect();
                assert_close(
                    &format!("dense_forward {rows}×{inputs}→{outputs} {activation:?}"),
                    backend,
                    &backend.download(&out),
                    &want,
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn dense_backward_matches_reference() {
    for backend in backends() {
        let mut rng = Lcg::new(5);
        // 2500 rows make the GPU split the weight-gradient sum.
        for (rows, inputs, outputs) in PRODUCT_SHAPES.into_iter().chain([(2500, 5, 3)]) {
            let x = rng.values(rows * inputs, -1.0, 1.0);
            let w = rng.values(inputs * outputs, -1.0, 1.0);
            let dy = rng.values(rows * outputs, -1.0, 1.0);
            for activation in ACTIVATIONS {
                // A plausible kept output: in (0, 1) for sigmoid, (−1, 1) otherwise, with
                // exact zeros and negatives so ReLU's mask is exercised.
                let y: Vec<f32> = match activation {
                    Activation::Sigmoid => rng.values(rows * outputs, 0.01, 0.99),
                    Activation::Relu => rng
                        .values(rows * outputs, -1.0, 1.0)
                        .into_iter()
                        .map(|v| v.max(0.0))
                        .collect(),
                    _ => rng.values(rows * outputs, -0.99, 0.99),
                };
                let dz: Vec<f64> = (0..rows * outputs)
                    .map(|at| {
                        f64::from(dy[at]) * derivative_from_output(activation, f64::from(y[at]))
                    })
                    .collect();
                let want_dw = matmul(
                    &transpose(&wide(&x), rows, inputs),
                    &dz,
                    inputs,
                    rows,
                    outputs,
                );
                let want_db: Vec<f64> = (0..outputs)
                    .map(|j| (0..rows).map(|n| dz[n * outputs + j]).sum())
                    .collect();
                let want_dx = matmul(
                    &dz,
                    &transpose(&wide(&w), inputs, outputs),
                    rows,
                    outputs,
                    inputs,
                );
                for with_dx in [true, false] {
                    let mut dx = backend.zeros(rows, inputs).unwrap();
                    let mut dw = backend.zeros(inputs, outputs).unwrap();
                    let mut db = backend.zeros(1, outputs).unwrap();
                    backend.dense_backward(
                        &upload(backend, rows, inputs, &x),
                        &upload(backend, inputs, outputs, &w),
                        &upload(backend, rows, outputs, &y),
                        &upload(backend, rows, outputs, &dy),
                        activation,
                        with_dx.then_some(&mut dx),
                        &mut dw,
                        &mut db,
                    );
                    let what = format!("dense_backward {rows}×{inputs}→{outputs} {activation:?}");
                    assert_close(
                        &format!("{what} dW"),
                        backend,
                        &backend.download(&dw),
                        &want_dw,
                        1e-5,
                    );
                    assert_close(
                        &format!("{what} db"),
                        backend,
                        &backend.download(&db),
                        &want_db,
                        1e-5,
                    );
                    if with_dx {
                        assert_close(
                            &format!("{what} dx"),
                            backend,
                            &backend.download(&dx),
                            &want_dx,
                            1e-5,
                        );
                    } else {
                        assert!(backend.download(&dx).iter().all(|&v| v == 0.0));
                    }
                }
            }
        }
    }
}

/// Operands of one dense layer's forward and backward products.
struct DenseCase {
    rows: usize,
    inputs: usize,
    outputs: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    y: Vec<f32>,
    dy: Vec<f32>,
}

impl DenseCase {
    /// Random operands with dy uniform in ±`dy_size`.
    fn new(rng: &mut Lcg, (rows, inputs, outputs): (usize, usize, usize), dy_size: f64) -> Self {
        DenseCase {
            rows,
            inputs,
            outputs,
            x: rng.values(rows * inputs, -1.0, 1.0),
            w: rng.values(inputs * outputs, -1.0, 1.0),
            b: rng.values(outputs, -0.5, 0.5),
            y: rng.values(rows * outputs, -0.99, 0.99),
            dy: rng.values(rows * outputs, -dy_size, dy_size),
        }
    }

    /// The tanh layer's output, dx, dW and db on `backend`.
    fn run(&self, backend: &dyn Backend) -> [Vec<f32>; 4] {
        let (rows, inputs, outputs) = (self.rows, self.inputs, self.outputs);
        let t = |r, c, data: &[f32]| upload(backend, r, c, data);
        let (tx, tw, tb) = (
            t(rows, inputs, &self.x),
            t(inputs, outputs, &self.w),
            t(1, outputs, &self.b),
        );
        let mut forward = backend.zeros(rows, outputs).unwrap();
        backend.dense_forward(&tx, &tw, &tb, Activation::Tanh, &mut forward);
        let mut dx = backend.zeros(rows, inputs).unwrap();
        let mut dw = backend.zeros(inputs, outputs).unwrap();
        let mut db = backend.zeros(1, outputs).unwrap();
        let (ty, tdy) = (t(rows, outputs, &self.y), t(rows, outputs, &self.dy));
        backend.dense_backward(
            &tx,
            &tw,
            &ty,
            &tdy,
            Activation::Tanh,
            Some(&mut dx),
            &mut dw,
            &mut db,
        );
        [forward, dx, dw, db].map(|tensor| backend.download(&tensor))
    }
}

/// The names of [`DenseCase::run`]'s results.
const DENSE_RESULTS: [&str; 4] = ["forward", "dx", "dW", "db"];

/// Shapes that cross 64- and 128-wide tiles, 8-deep slices and the reservoir's input/state seam
/// at odd places, and a row count that splits the weight-gradient sum unevenly.
const TILED_SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (130, 3, 129),
    (257, 37, 65),
    (129, 131, 3),
    (300, 9, 200),
    (3001, 13, 70),
];

/// Every tile shape of the register-tiled core, forced on this adapter, computes the dense
/// products and the reservoir step as the CPU backend does.
#[test]
fn every_tile_shape_matches_the_cpu_backend() {
    let Some(_) = gpu_backend() else { return };
    let cpu = cpu_backend();
    for shape in gpu::TILE_SHAPES {
        let gpu = gpu::test_backend()
            .expect("an adapter was opened above")
            .with_tile_shape(shape);
        let mut rng = Lcg::new(17);
        for (rows, inputs, outputs) in TILED_SHAPES {
            let what = format!("{shape:?} tiles, {rows}×{inputs}→{outputs}");
            let dense = DenseCase::new(&mut rng, (rows, inputs, outputs), 1.0);
            let state = rng.values(rows * outputs, -1.0, 1.0);
            let w_hh = rng.values(outputs * outputs, -0.3, 0.3);
            let steps = |backend: &dyn Backend| {
                let t = |r, c, data: &[f32]| upload(backend, r, c, data);
                let (tx, tw, tb) = (
                    t(rows, inputs, &dense.x),
                    t(inputs, outputs, &dense.w),
                    t(1, outputs, &dense.b),
                );
                let mut step = backend.zeros(rows, outputs).unwrap();
                let (t_state, t_w_hh) = (t(rows, outputs, &state), t(outputs, outputs, &w_hh));
                backend.reservoir_step(&tx, &tw, Some(&t_state), &t_w_hh, &tb, &mut step);
                let mut first_step = backend.zeros(rows, outputs).unwrap();
                backend.reservoir_step(&tx, &tw, None, &t_w_hh, &tb, &mut first_step);
                [step, first_step].map(|tensor| backend.download(&tensor))
            };
            let want = dense.run(cpu).into_iter().chain(steps(cpu));
            let got = dense.run(&gpu).into_iter().chain(steps(&gpu));
            let names = DENSE_RESULTS
                .into_iter()
                .chain(["reservoir step", "first reservoir step"]);
            for (name, (got, want)) in names.zip(got.zip(want)) {
                assert_close(&format!("{what} {name}"), &gpu, &got, &wide(&want), 1e-5);
            }
        }
    }
}

/// Shapes for the cooperative tile (128×128, used for products wider than 64 columns): partial
/// tiles, sums that end inside a 16-deep slice, inputs wide enough that dx is cooperative too,
/// rows enough to split the weight-gradient sum, and a 512²-sized batch whose mean-loss
/// gradients (~1e-6) are deep in f16's subnormals unless scaled.
const COOPERATIVE_SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 65),
    (130, 3, 129),
    (257, 37, 200),
    (129, 131, 130),
    (3001, 13, 70),
    (262_144, 2, 72),
];

/// The cooperative path is there exactly where the adapter reports what it needs (f16 × f16 →
/// f32 fragments of 16 or 8, one subgroup size, the features), and the dense layers take it by
/// default only on hardware adapters. On Debian 12's lavapipe this checks the f32 fallback; on
/// Mesa 26.1's (scripts/cooperative_lavapipe.sh) that an offered path is found and left to the
/// tests that force it.
#[test]
fn cooperative_matrices_are_used_exactly_where_a_hardware_adapter_offers_them() {
    let Some(shared) = gpu::test_shared_device() else {
        return;
    };
    let adapter = &shared.adapter;
    let info = adapter.get_info();
    let fragments: Vec<u32> = adapter
        .cooperative_matrix_properties()
        .iter()
        .filter(|p| {
            p.m_size == p.n_size
                && p.n_size == p.k_size
                && [8, 16].contains(&p.m_size)
                && p.ab_type == wgpu::CooperativeScalarType::F16
                && p.cr_type == wgpu::CooperativeScalarType::F32
        })
        .map(|p| p.m_size)
        .collect();
    let offered = !fragments.is_empty()
        && info.subgroup_min_size == info.subgroup_max_size
        && adapter
            .features()
            .contains(wgpu::Features::SHADER_F16 | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
        && std::env::var("INRLAB_COOPERATIVE").map_or(true, |value| value != "off");
    let backend = GpuBackend::new(true).expect("the adapter above");
    assert_eq!(
        backend.offers_cooperative_matrices(),
        offered,
        "{}: fragments {fragments:?}, subgroups {}..{}",
        backend.adapter_name(),
        info.subgroup_min_size,
        info.subgroup_max_size
    );
    let hardware = info.device_type != wgpu::DeviceType::Cpu;
    let largest = fragments.iter().max().map(|&edge| edge as usize);
    assert_eq!(
        backend.cooperative_fragment(),
        largest.filter(|_| offered && hardware),
        "the dense layers' default path on {}",
        backend.adapter_name()
    );
    let forced = backend.with_cooperative_matrices_everywhere();
    assert_eq!(forced.cooperative_fragment(), largest.filter(|_| offered));
    assert_eq!(
        forced.without_cooperative_matrices().cooperative_fragment(),
        None
    );
}

/// On cooperative matrices (f16 operands, f32 sums) the dense products agree with the CPU
/// backend to f16's precision, with gradients of a mean loss's size (dy ~ 1/rows, below f16's
/// normal range without linear.wgsl's gradient scale).
#[test]
fn cooperative_dense_products_match_the_cpu_backend() {
    let Some(gpu) = gpu::test_cooperative_backend() else {
        return;
    };
    let cpu = cpu_backend();
    let mut rng = Lcg::new(29);
    for shape in COOPERATIVE_SHAPES {
        let what = format!("cooperative {}×{}→{}", shape.0, shape.1, shape.2);
        let dense = DenseCase::new(&mut rng, shape, 1.0 / (3 * shape.0) as f64);
        let want = dense.run(cpu);
        let got = dense.run(&gpu);
        for (name, (got, want)) in DENSE_RESULTS.into_iter().zip(got.iter().zip(&want)) {
            // assert_close's scale is at least 1; the gradients are far smaller, so judge them
            // against their own size.
            let size = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-30);
            let relative: Vec<f32> = got.iter().map(|&v| v / size).collect();
            let wanted: Vec<f64> = want.iter().map(|&v| f64::from(v / size)).collect();
            // f16 operands round to 2⁻¹¹ relative; sums of up to 3001 terms of either sign.
            assert_close(&format!("{what} {name}"), &gpu, &relative, &wanted, 4e-3);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// f64-accurate products

/// Reference `[A₁ … A_k]ᵀ·B` and the per-element magnitudes `Σ|a·b|` that bound rounding.
fn gram_reference(
    blocks: &[(&[f32], usize)],
    b: &[f32],
    rows: usize,
    q: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut want = Vec::new();
    let mut magnitude = Vec::new();
    for &(a, p) in blocks {
        for i in 0..p {
            for j in 0..q {
                let (mut sum, mut size) = (0.0, 0.0);
                for k in 0..rows {
                    let term = f64::from(a[k * p + i]) * f64::from(b[k * q + j]);
                    sum += term;
                    size += term.abs();
                }
                want.push(sum);
                magnitude.push(size);
            }
        }
    }
    (want, magnitude)
}

/// Checks one Gram implementation on odd sizes, the symmetric case and a split row sum.
fn check_gram(what: &str, backend: &dyn Backend, gram: &dyn Fn(&[&Tensor], &Tensor) -> Vec<f64>) {
    let mut rng = Lcg::new(6);
    // 4097 rows make the GPU kernel split the row sum; values near 1 make f32 accumulation
    // miss the tolerance by orders of magnitude (its error grows like N·2⁻²⁴).
    // 700×67·131 spans several 64×64 tiles, partial ones and (for B's own Gram) tiles skipped
    // below the diagonal.
    for (rows, p, q) in [
        (1, 1, 1),
        (37, 3, 17),
        (257, 17, 3),
        (4097, 5, 20),
        (700, 67, 131),
    ] {
        let a = rng.values(rows * p, 0.5, 1.5);
        let b = rng.values(rows * q, 0.5, 1.5);
        let ta = upload(backend, rows, p, &a);
        let tb = upload(backend, rows, q, &b);
        // A separate block, then B itself (the symmetric case), then the first again.
        let got = gram(&[&ta, &tb, &ta], &tb);
        let (want, magnitude) = gram_reference(&[(&a, p), (&b, q), (&a, p)], &b, rows, q);
        assert_f64_close(
            &format!("{what} {rows}×[{p},{q},{p}]ᵀ·{q}"),
            backend,
            &got,
            &want,
            &magnitude,
            1e-12,
        );
        // B's own Gram must come out exactly symmetric.
        let own = gram(&[&tb], &tb);
        for i in 0..q {
            for j in 0..q {
                assert_eq!(
                    own[i * q + j],
                    own[j * q + i],
                    "{what} symmetry on {}",
                    backend.adapter_name()
                );
            }
        }
    }
}

#[test]
fn gram_is_f64_accurate() {
    for backend in backends() {
        check_gram("gram", backend, &|blocks, b| backend.gram(blocks, b));
    }
}

/// `Backend::gram` takes the host path on software adapters, so both GPU paths are tested
/// explicitly, the kernel on each of its tiles.
#[test]
fn gpu_gram_kernel_and_host_path_are_f64_accurate() {
    let Some(gpu) = gpu_backend() else { return };
    for tile in gpu::GRAM_TILES {
        let tiled = gpu::test_backend()
            .expect("an adapter was opened above")
            .with_gram_tile(tile);
        check_gram(
            &format!("gram kernel ({tile:?} tiles)"),
            &tiled,
            &|blocks, b| tiled.gram_on_device(blocks, b),
        );
    }
    check_gram("gram via host", gpu, &|blocks, b| {
        gpu.gram_via_host(blocks, b)
    });
}

#[test]
fn readout_is_f64_accurate() {
    for backend in backends() {
        let mut rng = Lcg::new(7);
        for (rows, widths, outs) in [
            (1, vec![1], 1),
            (37, vec![3, 17], 3),
            (257, vec![17], 1),
            (130, vec![5, 0, 40, 2], 5),
            // Several 128-row tiles, a partial one, and sums longer than one staged slice.
            (300, vec![70, 3], 3),
        ] {
            let total: usize = widths.iter().sum();
            let blocks: Vec<Vec<f32>> = widths
                .iter()
                .map(|&w| rng.values(rows * w, -1.0, 1.0))
                .collect();
            // Ridge weights: large, of both signs, with digits beyond f32 that cancel.
            let weights: Vec<f64> = (0..total * outs)
                .map(|_| (rng.unit() - 0.5) * 2e4 + rng.unit() * 1e-6)
                .collect();
            let tensors: Vec<Tensor> = blocks
                .iter()
                .zip(&widths)
                .map(|(data, &w)| upload(backend, rows, w, data))
                .collect();
            let refs: Vec<&Tensor> = tensors.iter().collect();
            let mut out = backend.zeros(rows, outs).unwrap();
            backend.readout(&refs, &weights, &mut out);
            let got = backend.download(&out);
            let hidden: Vec<f64> = (0..rows)
                .flat_map(|n| {
                    blocks.iter().zip(&widths).flat_map(move |(data, &w)| {
                        data[n * w..(n + 1) * w].iter().map(|&v| f64::from(v))
                    })
                })
                .collect();
            let want = matmul(&hidden, &weights, rows, total, outs);
            let magnitude = matmul(
                &hidden.iter().map(|v| v.abs()).collect::<Vec<_>>(),
                &weights.iter().map(|v| v.abs()).collect::<Vec<_>>(),
                rows,
                total,
                outs,
            );
            for (index, ((&g, &w), &m)) in got.iter().zip(&want).zip(&magnitude).enumerate() {
                // The result is f32, so half an ulp of it is unavoidable; beyond that the
                // accumulation must be f64-accurate relative to the cancelling terms.
                let allowed = 6e-8 * w.abs() + 1e-12 * m;
                let error = (f64::from(g) - w).abs();
                assert!(
                    error <= allowed,
                    "readout {rows}×{widths:?}→{outs} on {}: element {index} is {g}, want {w} (error {error:e}, allowed {allowed:e})",
                    backend.adapter_name()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Images

fn haar_reference(image: &[f64], height: usize, width: usize, channels: usize) -> Vec<f64> {
    let (h, w) = (height / 2, width / 2);
    let plane = h * w * channels;
    let mut bands = vec![0.0; 4 * plane];
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels {
                let at = |yy: usize, xx: usize| image[(yy * width + xx) * channels + c];
                let (a, b) = (at(2 * y, 2 * x), at(2 * y, 2 * x + 1));
                let (cc, d) = (at(2 * y + 1, 2 * x), at(2 * y + 1, 2 * x + 1));
                let o = (y * w + x) * channels + c;
                bands[o] = (a + b + cc + d) / 2.0;
                bands[plane + o] = (a + b - cc - d) / 2.0;
                bands[2 * plane + o] = (a - b + cc - d) / 2.0;
                bands[3 * plane + o] = (a - b - cc + d) / 2.0;
            }
        }
    }
    bands
}

#[test]
fn haar_hand_computed_two_by_two() {
    for backend in backends() {
        let image = upload(backend, 4, 1, &[1.0, 2.0, 3.0, 4.0]);
        let mut bands = backend.zeros(4, 1).unwrap();
        backend.haar_forward(&image, 2, 2, &mut bands);
        // LL, HL, LH, HH: LL = 10/2, HL = (3 − 7)/2, LH = (−1 − 1)/2, HH = (1 − 2 − 3 + 4)/2.
        assert_eq!(
            backend.download(&bands),
            vec![5.0, -2.0, -1.0, 0.0],
            "{}",
            backend.adapter_name()
        );
    }
}

#[test]
fn haar_matches_reference_inverts_and_preserves_energy() {
    for backend in backends() {
        let mut rng = Lcg::new(8);
        for (height, width, channels) in [(2, 2, 1), (6, 10, 3), (4, 2, 1), (2, 34, 17)] {
            let data = rng.values(height * width * channels, -1.0, 1.0);
            let image = upload(backend, height * width, channels, &data);
            let mut bands = backend.zeros(height * width, channels).unwrap();
            backend.haar_forward(&image, height, width, &mut bands);
            let got_bands = backend.download(&bands);
            let want = haar_reference(&wide(&data), height, width, channels);
            assert_close("haar_forward", backend, &got_bands, &want, 1e-6);

            let energy = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
            let (before, after) = (energy(&data), energy(&got_bands));
            assert!(
                (before - after).abs() <= 1e-6 * before,
                "haar energy {before} → {after}"
            );

            let mut back = backend.zeros(height * width, channels).unwrap();
            backend.haar_inverse(&bands, height, width, &mut back);
            assert_close(
                "haar_inverse∘forward",
                backend,
                &backend.download(&back),
                &wide(&data),
                1e-6,
            );
        }
    }
}

fn upsample_reference(
    image: &[f64],
    height: usize,
    width: usize,
    channels: usize,
    mode: Upsample,
) -> Vec<f64> {
    // PyTorch align_corners=False: src = max(0, (dst + 0.5)/2 − 0.5), far neighbour clamped.
    let axis = |d: usize, size: usize| {
        let position = ((d as f64 + 0.5) * 0.5 - 0.5).max(0.0);
        let near = (position.floor() as usize).min(size - 1);
        let far = (near + 1).min(size - 1);
        (near, far, position - near as f64)
    };
    let mut out = Vec::with_capacity(4 * height * width * channels);
    for y in 0..2 * height {
        for x in 0..2 * width {
            for c in 0..channels {
                let at = |yy: usize, xx: usize| image[(yy * width + xx) * channels + c];
                out.push(match mode {
                    Upsample::Nearest => at(y / 2, x / 2),
                    Upsample::Bilinear => {
                        let (y0, y1, wy) = axis(y, height);
                        let (x0, x1, wx) = axis(x, width);
                        let top = at(y0, x0) * (1.0 - wx) + at(y0, x1) * wx;
                        let bottom = at(y1, x0) * (1.0 - wx) + at(y1, x1) * wx;
                        top * (1.0 - wy) + bottom * wy
                    }
                });
            }
        }
    }
    out
}

#[test]
fn upsample_matches_reference() {
    for backend in backends() {
        let mut rng = Lcg::new(9);
        for (height, width, channels) in [(1, 1, 1), (3, 5, 2), (4, 7, 3), (1, 9, 17)] {
            let data = rng.values(height * width * channels, -1.0, 1.0);
            let image = upload(backend, height * width, channels, &data);
            for mode in [Upsample::Nearest, Upsample::Bilinear] {
                let mut out = backend.zeros(4 * height * width, channels).unwrap();
                backend.upsample2x(&image, height, width, mode, &mut out);
                let want = upsample_reference(&wide(&data), height, width, channels, mode);
                assert_close(
                    &format!("upsample2x {height}×{width}×{channels} {mode:?}"),
                    backend,
                    &backend.download(&out),
                    &want,
                    1e-6,
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reductions and element-wise operations

#[test]
fn mse_and_sum_are_f64_accurate() {
    for backend in backends() {
        check_mse_and_sum(backend);
    }
}

fn check_mse_and_sum(backend: &dyn Backend) {
    let mut rng = Lcg::new(10);
    // Every pair's tensors and MSE, for the batched `mses` below.
    let mut pairs = Vec::new();
    for (rows, cols) in [(1, 1), (37, 3), (257, 17), (100_003, 1)] {
        let a = rng.values(rows * cols, 0.0, 1.0);
        let b = rng.values(rows * cols, 0.0, 1.0);
        let ta = upload(backend, rows, cols, &a);
        let tb = upload(backend, rows, cols, &b);
        let want_sum: f64 = a.iter().map(|&v| f64::from(v)).sum();
        let magnitude: f64 = a.iter().map(|&v| f64::from(v).abs()).sum();
        let got_sum = backend.sum(&ta);
        assert!(
            (got_sum - want_sum).abs() <= 1e-12 * magnitude,
            "sum {rows}×{cols} on {}: {got_sum} vs {want_sum}",
            backend.adapter_name()
        );
        let want_mse = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        let got_mse = backend.mse(&ta, &tb);
        assert!(
            (got_mse - want_mse).abs() <= 1e-12 * want_mse,
            "mse {rows}×{cols} on {}: {got_mse} vs {want_mse}",
            backend.adapter_name()
        );
        pairs.push((ta, tb, want_mse));
        if pairs.len() == 2 {
            // An empty pair among them (its MSE is 0): the batched read-back skips it
            // without shifting the others' totals.
            let (ea, eb) = (backend.zeros(0, 3).unwrap(), backend.zeros(0, 3).unwrap());
            pairs.push((ea, eb, 0.0));
        }
    }
    let batched: Vec<(&Tensor, &Tensor)> = pairs.iter().map(|(a, b, _)| (a, b)).collect();
    let got = backend.mses(&batched);
    assert_eq!(got.len(), pairs.len());
    for ((a, _, want), got) in pairs.iter().zip(got) {
        assert!(
            (got - want).abs() <= 1e-12 * want,
            "mses, {}×{} pair, on {}: {got} vs {want}",
            a.rows(),
            a.cols(),
            backend.adapter_name()
        );
    }
}

/// The reductions (sum, mse, the bias gradient) on subgroup operations and through workgroup
/// memory give the CPU backend's results; where the adapter offers subgroups (lavapipe does),
/// the backend uses them.
#[test]
fn reductions_match_with_and_without_subgroups() {
    let Some(gpu) = gpu_backend() else { return };
    let offered = {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
            .into_iter()
            .filter(|adapter| {
                format!(
                    "{} ({:?}",
                    adapter.get_info().name,
                    adapter.get_info().backend
                ) == gpu
                    .adapter_name()
                    .rsplit_once(", ")
                    .map_or(String::new(), |(head, _)| head.to_owned())
            })
            .any(|adapter| adapter.features().contains(wgpu::Features::SUBGROUP))
    };
    assert_eq!(
        gpu.uses_subgroups(),
        offered,
        "{} offers subgroups: {offered}",
        gpu.adapter_name()
    );
    eprintln!("{}: subgroups offered: {offered}", gpu.adapter_name());
    let without = gpu::test_backend()
        .expect("opened above")
        .without_subgroups();
    let mut rng = Lcg::new(23);
    let (rows, inputs, outputs) = (1003, 5, 7);
    let x = rng.values(rows * inputs, -1.0, 1.0);
    let w = rng.values(inputs * outputs, -1.0, 1.0);
    let y = rng.values(rows * outputs, -0.99, 0.99);
    let dy = rng.values(rows * outputs, -1.0, 1.0);
    let bias_gradient = |backend: &dyn Backend| {
        let t = |r, c, data: &[f32]| upload(backend, r, c, data);
        let mut dw = backend.zeros(inputs, outputs).unwrap();
        let mut db = backend.zeros(1, outputs).unwrap();
        backend.dense_backward(
            &t(rows, inputs, &x),
            &t(inputs, outputs, &w),
            &t(rows, outputs, &y),
            &t(rows, outputs, &dy),
            Activation::Tanh,
            None,
            &mut dw,
            &mut db,
        );
        backend.download(&db)
    };
    let want = wide(&bias_gradient(cpu_backend()));
    for backend in [gpu as &dyn Backend, &without] {
        check_mse_and_sum(backend);
        assert_close(
            "bias gradient",
            backend,
            &bias_gradient(backend),
            &want,
            1e-5,
        );
    }
}

/// A training iteration's dispatches reuse the bind groups of the first iteration, the results
/// stay right, and the groups go when their tensors do.
#[test]
fn bind_groups_are_kept_for_live_tensors_and_go_with_them() {
    let Some(gpu) = gpu::test_backend() else {
        return;
    };
    let mut rng = Lcg::new(29);
    let (rows, inputs, outputs) = (517, 6, 9);
    let t = |r, c, data: &[f32]| upload(&gpu, r, c, data);
    let x = t(rows, inputs, &rng.values(rows * inputs, -1.0, 1.0));
    let w = t(inputs, outputs, &rng.values(inputs * outputs, -1.0, 1.0));
    let b = t(1, outputs, &rng.values(outputs, -0.5, 0.5));
    let dy = t(rows, outputs, &rng.values(rows * outputs, -1.0, 1.0));
    let mut y = gpu.zeros(rows, outputs).unwrap();
    let mut dx = gpu.zeros(rows, inputs).unwrap();
    let mut dw = gpu.zeros(inputs, outputs).unwrap();
    let mut db = gpu.zeros(1, outputs).unwrap();
    let mut iteration = |gpu: &GpuBackend| {
        gpu.dense_forward(&x, &w, &b, Activation::Tanh, &mut y);
        gpu.dense_backward(
            &x,
            &w,
            &y,
            &dy,
            Activation::Tanh,
            Some(&mut dx),
            &mut dw,
            &mut db,
        );
        gpu.finish();
        (gpu.download(&y), gpu.download(&dx), gpu.download(&db))
    };
    let first = iteration(&gpu);
    let before = gpu.counters();
    assert!(
        before.bind_groups_kept > 0,
        "nothing kept after an iteration"
    );
    let second = iteration(&gpu);
    let after = gpu.counters();
    assert_eq!(
        (after.bind_groups_created, after.bind_groups_kept),
        (before.bind_groups_created, before.bind_groups_kept),
        "a second iteration over the same tensors created bind groups"
    );
    assert_eq!(
        after.readbacks - before.readbacks,
        3,
        "one wait per download"
    );
    assert_eq!(first, second, "kept bind groups changed the results");
    drop(y);
    let kept = before.bind_groups_kept;
    let kept_after = gpu.counters().bind_groups_kept;
    assert!(
        kept_after < kept,
        "dropping a tensor kept its bind groups ({kept_after} of {kept})"
    );
    drop((x, w, b, dy, dx, dw, db));
    assert_eq!(
        gpu.counters().bind_groups_kept,
        0,
        "groups outlived their tensors"
    );
}

/// A backend on a device opened elsewhere (as the window's is) presents an image tensor into a
/// texture holding exactly the bytes the host's conversion makes, NaN, out-of-range values and
/// halfway cases included; the texture is rewritten in place and remade only at a new size.
#[test]
fn presented_pictures_match_the_hosts_on_a_shared_device() {
    let Some(reference) = gpu_backend() else {
        return;
    };
    let device = gpu::test_shared_device().expect("the adapter above");
    let adapter = device.adapter.clone();
    let shared = GpuBackend::from_shared(&device).unwrap();
    assert_eq!(shared.uses_subgroups(), reference.uses_subgroups());
    let mut picture = None;
    let mut rng = Lcg::new(31);
    for size in [37, 37, 8] {
        let mut pixels = rng.values(size * size * 3, -0.2, 1.2);
        let specials = [
            f32::NAN,
            -1.0,
            2.0,
            0.0,
            1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        for (at, value) in specials.into_iter().enumerate() {
            pixels[at * 5] = value;
        }
        for k in 0..40 {
            pixels[100 + k] = (k as f32 * 6.0 + 0.5) / 255.0;
        }
        let image = upload(&shared, size * size, 3, &pixels);
        let before = picture.clone();
        assert!(shared.present(&image, size, &mut picture));
        let presented = picture.as_ref().unwrap();
        assert_eq!(presented.size, size);
        if let Some(before) = before {
            assert_eq!(
                std::sync::Arc::ptr_eq(&before, presented),
                before.size == size,
                "the texture is remade only at a new size"
            );
        }
        let want: Vec<u8> = inrlab::imaging::color_image_from_rgb(&pixels, size)
            .pixels
            .iter()
            .flat_map(|color| color.to_array())
            .collect();
        assert_eq!(
            shared.read_display_texture(presented),
            want,
            "{size}×{size} picture"
        );
    }
    // The device asks for timestamps where the adapter has them; a present timed by them
    // reports a GPU time and still presents.
    assert_eq!(
        shared.has_timestamps(),
        adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY)
    );
    let pixels = rng.values(37 * 37 * 3, 0.0, 1.0);
    let image = upload(&shared, 37 * 37, 3, &pixels);
    let milliseconds = shared.gpu_milliseconds(|| {
        assert!(shared.present(&image, 37, &mut picture));
    });
    match milliseconds {
        Some(ms) => assert!(
            ms > 0.0 && ms < 10_000.0,
            "a 37² present took {ms} ms of GPU time"
        ),
        None => assert!(!shared.has_timestamps(), "timestamps were not read"),
    }
    let want: Vec<u8> = inrlab::imaging::color_image_from_rgb(&pixels, 37)
        .pixels
        .iter()
        .flat_map(|color| color.to_array())
        .collect();
    assert_eq!(
        shared.read_display_texture(picture.as_ref().unwrap()),
        want,
        "the timed present"
    );
    assert!(
        !cpu_backend().present(&upload(cpu_backend(), 1, 3, &[0.0; 3]), 1, &mut None),
        "the CPU backend has no device to present on"
    );
}

#[test]
fn clip_axpy_mse_grad_match_reference() {
    for backend in backends() {
        let mut rng = Lcg::new(11);
        for count in [1, 37, 257 * 3] {
            let x = rng.values(count, -2.0, 2.0);
            let y = rng.values(count, -2.0, 2.0);

            let mut clipped = upload(backend, count, 1, &x);
            backend.clip(&mut clipped, -0.5, 1.25);
            let want: Vec<f64> = x.iter().map(|&v| f64::from(v).clamp(-0.5, 1.25)).collect();
            assert_close("clip", backend, &backend.download(&clipped), &want, 0.0);

            let mut ty = upload(backend, 1, count, &y);
            backend.axpy(-0.75, &upload(backend, 1, count, &x), &mut ty);
            let want: Vec<f64> = x
                .iter()
                .zip(&y)
                .map(|(&a, &b)| f64::from(b) - 0.75 * f64::from(a))
                .collect();
            assert_close("axpy", backend, &backend.download(&ty), &want, 1e-6);

            let mut grad = backend.zeros(count, 1).unwrap();
            backend.mse_grad(
                &upload(backend, count, 1, &x),
                &upload(backend, count, 1, &y),
                0.3,
                &mut grad,
            );
            let want: Vec<f64> = x
                .iter()
                .zip(&y)
                .map(|(&p, &t)| 2.0 * 0.3 * (f64::from(p) - f64::from(t)))
                .collect();
            assert_close("mse_grad", backend, &backend.download(&grad), &want, 1e-6);
        }
    }
}

#[test]
fn concat_cols_places_parts_side_by_side() {
    for backend in backends() {
        let mut rng = Lcg::new(12);
        for rows in [1, 37, 257] {
            let widths = [1, 3, 17, 1];
            let parts: Vec<Vec<f32>> = widths
                .iter()
                .map(|&w| rng.values(rows * w, -1.0, 1.0))
                .collect();
            let tensors: Vec<Tensor> = parts
                .iter()
                .zip(widths)
                .map(|(data, w)| upload(backend, rows, w, data))
                .collect();
            let refs: Vec<&Tensor> = tensors.iter().collect();
            let total: usize = widths.iter().sum();
            let mut out = backend.zeros(rows, total).unwrap();
            backend.concat_cols(&refs, &mut out);
            let want: Vec<f64> = (0..rows)
                .flat_map(|n| {
                    parts.iter().zip(widths).flat_map(move |(data, w)| {
                        data[n * w..(n + 1) * w].iter().map(|&v| f64::from(v))
                    })
                })
                .collect();
            assert_close("concat_cols", backend, &backend.download(&out), &want, 0.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Grid operations (the wavelet operator's stacks of square grids)

/// Grid stacks with channel counts for the grid operations: two images of three levels with
/// channel counts that cross the 256-wide workgroups at awkward places, 1-pixel grids (every
/// stencil tap and difference outside), and a stack whose finest level spans many workgroups
/// (and several weight-gradient splits) per channel.
const GRID_CASES: [(Grids, usize); 6] = [
    (STACK, 1),
    (STACK, 3),
    (STACK, 5),
    (STACK, 37),
    (
        Grids {
            count: 3,
            first_side: 1,
            levels: 2,
        },
        2,
    ),
    (
        Grids {
            count: 2,
            first_side: 5,
            levels: 4,
        },
        3,
    ),
];

/// The even-sided stacks that a Haar level halves.
const HAAR_CASES: [(Grids, usize); 6] = [
    (STACK, 1),
    (STACK, 3),
    (STACK, 5),
    (STACK, 37),
    (
        Grids {
            count: 1,
            first_side: 6,
            levels: 1,
        },
        3,
    ),
    (
        Grids {
            count: 3,
            first_side: 4,
            levels: 2,
        },
        2,
    ),
];

/// Two images, each a pyramid of sides 2, 4, 8.
const STACK: Grids = Grids {
    count: 2,
    first_side: 2,
    levels: 3,
};

/// Distinct per-level loss scales (the first `levels` are used).
const LEVEL_SCALES: [f32; 4] = [0.5, 1.25, 2.0, 0.75];

/// (first row, side, level) of every grid of `grids` in row order, written out here rather
/// than taken from `Grids::grids`, so that a layout mistake there shows.
fn grid_rows(grids: Grids) -> Vec<(usize, usize, usize)> {
    let mut rows = Vec::new();
    let mut row = 0;
    for _ in 0..grids.count {
        for level in 0..grids.levels {
            let side = grids.first_side << level;
            rows.push((row, side, level));
            row += side * side;
        }
    }
    assert_eq!(row, grids.rows(), "Grids::rows disagrees with the layout");
    rows
}

/// `count` indices into `0..len` spread by `rng`, for finite-difference samples.
fn sample_indices(rng: &mut Lcg, len: usize, count: usize) -> Vec<usize> {
    (0..count)
        .map(|_| ((rng.unit() * len as f64) as usize).min(len - 1))
        .collect()
}

/// Central difference of `loss` along element `index` of `values`, over the step as f32
/// actually stores it.
fn central_difference(
    values: &[f32],
    index: usize,
    step: f32,
    loss: &mut dyn FnMut(&[f32]) -> f64,
) -> f64 {
    let mut plus = values.to_vec();
    plus[index] += step;
    let mut minus = values.to_vec();
    minus[index] -= step;
    let span = f64::from(plus[index]) - f64::from(minus[index]);
    (loss(&plus) - loss(&minus)) / span
}

/// Reference Haar split of every grid: (low, high) with high's column blocks LH, HL, HH.
fn haar_split_reference(image: &[f64], grids: Grids, channels: usize) -> (Vec<f64>, Vec<f64>) {
    let half = grids.halved();
    let mut low = vec![0.0; half.rows() * channels];
    let mut high = vec![0.0; half.rows() * 3 * channels];
    for ((first, side, _), (half_first, half_side, _)) in
        grid_rows(grids).into_iter().zip(grid_rows(half))
    {
        assert_eq!(2 * half_side, side);
        for by in 0..half_side {
            for bx in 0..half_side {
                let block = half_first + by * half_side + bx;
                for c in 0..channels {
                    let at = |y: usize, x: usize| image[(first + y * side + x) * channels + c];
                    let (a, b) = (at(2 * by, 2 * bx), at(2 * by, 2 * bx + 1));
                    let (cc, d) = (at(2 * by + 1, 2 * bx), at(2 * by + 1, 2 * bx + 1));
                    low[block * channels + c] = (a + b + cc + d) / 2.0;
                    let h = block * 3 * channels + c;
                    high[h] = (a - b + cc - d) / 2.0;
                    high[h + channels] = (a + b - cc - d) / 2.0;
                    high[h + 2 * channels] = (a - b - cc + d) / 2.0;
                }
            }
        }
    }
    (low, high)
}

#[test]
fn haar_split_names_bands_as_the_prototype() {
    for backend in backends() {
        // a, b = 1, 2 on top; c, d = 3, 4 below.
        let image = upload(backend, 4, 1, &[1.0, 2.0, 3.0, 4.0]);
        let mut low = backend.zeros(1, 1).unwrap();
        let mut high = backend.zeros(1, 3).unwrap();
        backend.haar_split(&image, Grids::single(2), &mut low, &mut high);
        assert_eq!(backend.download(&low), vec![5.0], "LL");
        // LH = (1 − 2 + 3 − 4)/2 differs along x, HL = (1 + 2 − 3 − 4)/2 along y, HH = 0.
        assert_eq!(
            backend.download(&high),
            vec![-1.0, -2.0, 0.0],
            "LH, HL, HH on {}",
            backend.adapter_name()
        );
        // The same bands as haar_forward's planes LL, HL, LH, HH.
        let mut bands = backend.zeros(4, 1).unwrap();
        backend.haar_forward(&image, 2, 2, &mut bands);
        assert_eq!(backend.download(&bands), vec![5.0, -2.0, -1.0, 0.0]);
    }
}

#[test]
fn haar_split_merge_match_reference_invert_and_preserve_energy() {
    for backend in backends() {
        let mut rng = Lcg::new(20);
        for (grids, channels) in HAAR_CASES {
            let what = format!("{grids:?}×{channels}");
            let rows = grids.rows();
            let quarter = grids.halved().rows();
            let data = rng.values(rows * channels, -1.0, 1.0);
            let image = upload(backend, rows, channels, &data);
            // Stale contents must be overwritten.
            let mut low = upload(backend, quarter, channels, &vec![9.0; quarter * channels]);
            let mut high = upload(
                backend,
                quarter,
                3 * channels,
                &vec![9.0; quarter * 3 * channels],
            );
            backend.haar_split(&image, grids, &mut low, &mut high);
            let (got_low, got_high) = (backend.download(&low), backend.download(&high));
            let (want_low, want_high) = haar_split_reference(&wide(&data), grids, channels);
            assert_close(
                &format!("haar_split low {what}"),
                backend,
                &got_low,
                &want_low,
                1e-6,
            );
            assert_close(
                &format!("haar_split high {what}"),
                backend,
                &got_high,
                &want_high,
                1e-6,
            );

            let energy = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
            let before = energy(&data);
            let after = energy(&got_low) + energy(&got_high);
            assert!(
                (before - after).abs() <= 1e-6 * before,
                "haar_split energy {before} → {after} ({what} on {})",
                backend.adapter_name()
            );

            let mut back = upload(backend, rows, channels, &vec![9.0; rows * channels]);
            backend.haar_merge(&low, &high, grids, &mut back);
            assert_close(
                &format!("haar_merge∘haar_split {what}"),
                backend,
                &backend.download(&back),
                &wide(&data),
                1e-6,
            );
        }
    }
}

/// Reference 3×3 depthwise cross-correlation of every grid (zero padding).
fn depthwise_reference(x: &[f64], grids: Grids, channels: usize, weights: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for (first, side, _) in grid_rows(grids) {
        let side = side as isize;
        for y in 0..side {
            for xx in 0..side {
                for c in 0..channels {
                    let mut sum = 0.0;
                    for i in 0..3 {
                        for j in 0..3 {
                            let (sy, sx) = (y + i - 1, xx + j - 1);
                            if (0..side).contains(&sy) && (0..side).contains(&sx) {
                                let source = first + (sy * side + sx) as usize;
                                sum += weights[(3 * i + j) as usize * channels + c]
                                    * x[source * channels + c];
                            }
                        }
                    }
                    out[(first + (y * side + xx) as usize) * channels + c] = sum;
                }
            }
        }
    }
    out
}

/// Reference backward of the stencil in scatter form (each output sends its gradient to the
/// inputs it read): (dL/dx, dL/dw, Σ|terms| of each dL/dw).
fn depthwise_backward_reference(
    x: &[f64],
    d_out: &[f64],
    grids: Grids,
    channels: usize,
    weights: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut d_x = vec![0.0; x.len()];
    let mut d_w = vec![0.0; 9 * channels];
    let mut magnitude = vec![0.0; 9 * channels];
    for (first, side, _) in grid_rows(grids) {
        let side = side as isize;
        for y in 0..side {
            for xx in 0..side {
                let out = first + (y * side + xx) as usize;
                for i in 0..3 {
                    for j in 0..3 {
                        let (sy, sx) = (y + i - 1, xx + j - 1);
                        if !((0..side).contains(&sy) && (0..side).contains(&sx)) {
                            continue;
                        }
                        let source = first + (sy * side + sx) as usize;
                        let tap = (3 * i + j) as usize;
                        for c in 0..channels {
                            let g = d_out[out * channels + c];
                            d_x[source * channels + c] += weights[tap * channels + c] * g;
                            let term = g * x[source * channels + c];
                            d_w[tap * channels + c] += term;
                            magnitude[tap * channels + c] += term.abs();
                        }
                    }
                }
            }
        }
    }
    (d_x, d_w, magnitude)
}

#[test]
fn depthwise3x3_matches_reference() {
    for backend in backends() {
        let mut rng = Lcg::new(21);
        for (grids, channels) in GRID_CASES {
            let what = format!("depthwise3x3 {grids:?}×{channels}");
            let len = grids.rows() * channels;
            let x = rng.values(len, -1.0, 1.0);
            let weights = rng.values(9 * channels, -1.0, 1.0);
            let start = rng.values(len, -1.0, 1.0);
            let mut out = upload(backend, grids.rows(), channels, &start);
            backend.depthwise3x3(
                &upload(backend, grids.rows(), channels, &x),
                grids,
                &upload(backend, 9, channels, &weights),
                &mut out,
            );
            // The stencil is added to what out held.
            let want: Vec<f64> = depthwise_reference(&wide(&x), grids, channels, &wide(&weights))
                .iter()
                .zip(&start)
                .map(|(s, &o)| s + f64::from(o))
                .collect();
            assert_close(&what, backend, &backend.download(&out), &want, 1e-6);
        }
    }
}

#[test]
fn depthwise3x3_backward_matches_reference_and_finite_differences() {
    for backend in backends() {
        let mut rng = Lcg::new(22);
        for (grids, channels) in GRID_CASES {
            let what = format!("depthwise3x3_backward {grids:?}×{channels}");
            let rows = grids.rows();
            let len = rows * channels;
            let x = rng.values(len, -1.0, 1.0);
            let d_out = rng.values(len, -1.0, 1.0);
            let weights = rng.values(9 * channels, -1.0, 1.0);
            let start = rng.values(len, -1.0, 1.0);
            let tensor_x = upload(backend, rows, channels, &x);
            let tensor_d_out = upload(backend, rows, channels, &d_out);
            let tensor_weights = upload(backend, 9, channels, &weights);
            let mut d_x = upload(backend, rows, channels, &start);
            // d_weights is overwritten, not added to.
            let mut d_weights = upload(backend, 9, channels, &vec![9.0; 9 * channels]);
            backend.depthwise3x3_backward(
                &tensor_x,
                &tensor_d_out,
                grids,
                &tensor_weights,
                &mut d_x,
                &mut d_weights,
            );
            let got_d_x = backend.download(&d_x);
            let got_d_w: Vec<f64> = wide(&backend.download(&d_weights));
            let (want_d_x, want_d_w, magnitude) = depthwise_backward_reference(
                &wide(&x),
                &wide(&d_out),
                grids,
                channels,
                &wide(&weights),
            );
            let want_d_x: Vec<f64> = want_d_x
                .iter()
                .zip(&start)
                .map(|(d, &s)| d + f64::from(s))
                .collect();
            assert_close(&format!("{what} d_x"), backend, &got_d_x, &want_d_x, 1e-6);
            assert_f64_close(
                &format!("{what} d_weights"),
                backend,
                &got_d_w,
                &want_d_w,
                &magnitude,
                1e-5,
            );

            // L = Σ d_out·depthwise3x3(x, w) through the backend: linear, so a step of 1
            // differences exactly up to the rounding of the outputs it changes.
            let loss = |x: &[f32], w: &[f32]| {
                let mut out = backend.zeros(rows, channels).unwrap();
                backend.depthwise3x3(
                    &upload(backend, rows, channels, x),
                    grids,
                    &upload(backend, 9, channels, w),
                    &mut out,
                );
                backend
                    .download(&out)
                    .iter()
                    .zip(&d_out)
                    .map(|(&o, &g)| f64::from(o) * f64::from(g))
                    .sum::<f64>()
            };
            for index in sample_indices(&mut rng, len, 8) {
                let numeric = central_difference(&x, index, 1.0, &mut |x| loss(x, &weights));
                let analytic = f64::from(got_d_x[index]) - f64::from(start[index]);
                assert!(
                    (numeric - analytic).abs() <= 1e-5 * numeric.abs().max(1.0),
                    "{what} on {}: dL/dx[{index}] {analytic}, central difference {numeric}",
                    backend.adapter_name()
                );
            }
            for index in sample_indices(&mut rng, 9 * channels, 8) {
                let numeric = central_difference(&weights, index, 1.0, &mut |w| loss(&x, w));
                assert!(
                    (numeric - got_d_w[index]).abs() <= 1e-5 * magnitude[index].max(1.0),
                    "{what} on {}: dL/dw[{index}] {}, central difference {numeric}",
                    backend.adapter_name(),
                    got_d_w[index]
                );
            }
        }
    }
}

fn gelu_reference(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

fn gelu_derivative_reference(x: f64) -> f64 {
    0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
        + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

#[test]
fn gelu_residual_and_backward_match_reference_and_finite_differences() {
    for backend in backends() {
        let mut rng = Lcg::new(23);
        for count in [1, 37, 257 * 3] {
            // Past ±5.66 the erf approximation is clamped.
            let pre = rng.values(count, -7.0, 7.0);
            let residual = rng.values(count, -1.0, 1.0);
            let d_out = rng.values(count, -1.0, 1.0);
            let tensor_pre = upload(backend, count, 1, &pre);
            let mut out = backend.zeros(count, 1).unwrap();
            backend.gelu_residual(&tensor_pre, &upload(backend, count, 1, &residual), &mut out);
            let want: Vec<f64> = pre
                .iter()
                .zip(&residual)
                .map(|(&p, &r)| f64::from(r) + gelu_reference(f64::from(p)))
                .collect();
            assert_close(
                "gelu_residual",
                backend,
                &backend.download(&out),
                &want,
                1e-6,
            );

            let mut d_pre = backend.zeros(count, 1).unwrap();
            backend.gelu_backward(&tensor_pre, &upload(backend, count, 1, &d_out), &mut d_pre);
            let got = backend.download(&d_pre);
            let want: Vec<f64> = pre
                .iter()
                .zip(&d_out)
                .map(|(&p, &g)| f64::from(g) * gelu_derivative_reference(f64::from(p)))
                .collect();
            assert_close("gelu_backward", backend, &got, &want, 1e-6);

            // Central differences of the backend's own forward (residual 0) in f32: a step of
            // 2⁻⁷ keeps both the truncation and the rounding error near 1e-4.
            let zero = backend.zeros(count, 1).unwrap();
            let gelu = |x: &[f32]| {
                let mut out = backend.zeros(count, 1).unwrap();
                backend.gelu_residual(&upload(backend, count, 1, x), &zero, &mut out);
                backend.download(&out)
            };
            let step = 1.0 / 128.0;
            let plus: Vec<f32> = pre.iter().map(|&p| p + step).collect();
            let minus: Vec<f32> = pre.iter().map(|&p| p - step).collect();
            let (up, down) = (gelu(&plus), gelu(&minus));
            for i in 0..count {
                let numeric = (f64::from(up[i]) - f64::from(down[i]))
                    / (f64::from(plus[i]) - f64::from(minus[i]))
                    * f64::from(d_out[i]);
                assert!(
                    (numeric - f64::from(got[i])).abs() <= 1e-3,
                    "gelu_backward on {}: element {i} (pre {}) is {}, central difference {numeric}",
                    backend.adapter_name(),
                    pre[i],
                    got[i]
                );
            }
        }
    }
}

#[test]
fn residual_clip_and_clip_backward_match_reference() {
    for backend in backends() {
        let mut rng = Lcg::new(24);
        for count in [1, 37, 257 * 3] {
            let mut base = rng.values(count, -0.5, 1.5);
            let mut delta = rng.values(count, -0.5, 0.5);
            // Sums exactly on the bounds, where the gradient passes.
            if count > 1 {
                (base[0], delta[0]) = (0.75, 0.25);
                (base[1], delta[1]) = (0.5, -0.5);
            }
            let tensor_base = upload(backend, count, 1, &base);
            let tensor_delta = upload(backend, count, 1, &delta);
            let mut out = backend.zeros(count, 1).unwrap();
            backend.residual_clip(&tensor_base, &tensor_delta, &mut out);
            let sums: Vec<f64> = base
                .iter()
                .zip(&delta)
                .map(|(&b, &d)| f64::from(b) + f64::from(d))
                .collect();
            let want: Vec<f64> = sums.iter().map(|s| s.clamp(0.0, 1.0)).collect();
            assert_close(
                "residual_clip",
                backend,
                &backend.download(&out),
                &want,
                1e-7,
            );

            let grad = rng.values(count, -1.0, 1.0);
            let mut tensor_grad = upload(backend, count, 1, &grad);
            backend.clip_backward(&tensor_base, &tensor_delta, &mut tensor_grad);
            let want: Vec<f64> = sums
                .iter()
                .zip(&grad)
                .map(|(s, &g)| {
                    if (0.0..=1.0).contains(s) {
                        f64::from(g)
                    } else {
                        0.0
                    }
                })
                .collect();
            assert_close(
                "clip_backward",
                backend,
                &backend.download(&tensor_grad),
                &want,
                0.0,
            );
        }
    }
}

/// A prediction for the loss tests: random, but equal to the target at every seventh element
/// and on runs of three pixels, where the differences and their signs are exactly 0.
fn prediction(rng: &mut Lcg, target: &[f32], channels: usize) -> Vec<f32> {
    rng.values(target.len(), 0.0, 1.0)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            if i.is_multiple_of(7) || (i / channels / 3).is_multiple_of(4) {
                target[i]
            } else {
                p
            }
        })
        .collect()
}

fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[test]
fn l1_grad_matches_reference_and_finite_differences() {
    for backend in backends() {
        let mut rng = Lcg::new(25);
        for (grids, channels) in GRID_CASES {
            let what = format!("l1_grad {grids:?}×{channels}");
            let (rows, len) = (grids.rows(), grids.rows() * channels);
            let scales = &LEVEL_SCALES[..grids.levels];
            let target = rng.values(len, 0.0, 1.0);
            let pred = prediction(&mut rng, &target, channels);
            let tensor_target = upload(backend, rows, channels, &target);
            // Stale contents must be overwritten.
            let mut grad = upload(backend, rows, channels, &vec![9.0; len]);
            let sums = backend.l1_grad(
                &upload(backend, rows, channels, &pred),
                &tensor_target,
                grids,
                scales,
                &mut grad,
            );
            let got_grad = backend.download(&grad);

            let mut want_grad = vec![0.0; len];
            let mut want_absolute = vec![0.0; grids.levels];
            let mut want_squared = vec![0.0; grids.levels];
            for (first, side, level) in grid_rows(grids) {
                for i in first * channels..(first + side * side) * channels {
                    let d = f64::from(pred[i]) - f64::from(target[i]);
                    want_grad[i] = f64::from(scales[level]) * sign(d);
                    want_absolute[level] += d.abs();
                    want_squared[level] += d * d;
                }
            }
            assert_close(&what, backend, &got_grad, &want_grad, 0.0);
            assert_eq!(sums.len(), grids.levels, "{what}: one sum per level");
            let got_absolute: Vec<f64> = sums.iter().map(|s| s.absolute).collect();
            let got_squared: Vec<f64> = sums.iter().map(|s| s.squared).collect();
            // The f32 difference is what is summed: within 2⁻²³ of the exact one.
            let what_absolute = format!("{what} Σ|d|");
            let what_squared = format!("{what} Σd²");
            assert_f64_close(
                &what_absolute,
                backend,
                &got_absolute,
                &want_absolute,
                &want_absolute,
                1e-6,
            );
            assert_f64_close(
                &what_squared,
                backend,
                &got_squared,
                &want_squared,
                &want_squared,
                1e-6,
            );

            // The loss Σ_ℓ scale_ℓ·Σ|d| through the backend; its kinks are at d = 0, where
            // the central difference is 0 as the gradient is, so only elements within a step
            // of 0 (but not at it) are left out.
            let step = 1.0 / 256.0;
            let mut loss = |p: &[f32]| {
                let mut scratch = backend.zeros(rows, channels).unwrap();
                let sums = backend.l1_grad(
                    &upload(backend, rows, channels, p),
                    &tensor_target,
                    grids,
                    scales,
                    &mut scratch,
                );
                sums.iter()
                    .zip(scales)
                    .map(|(s, &scale)| f64::from(scale) * s.absolute)
                    .sum::<f64>()
            };
            for index in sample_indices(&mut rng, len, 8) {
                let d = f64::from(pred[index]) - f64::from(target[index]);
                if d != 0.0 && d.abs() < 2.0 * f64::from(step) {
                    continue;
                }
                let numeric = central_difference(&pred, index, step, &mut loss);
                assert!(
                    (numeric - f64::from(got_grad[index])).abs() <= 1e-4,
                    "{what} on {}: grad[{index}] {}, central difference {numeric}",
                    backend.adapter_name(),
                    got_grad[index]
                );
            }
        }
    }
}

/// Reference gradient-difference loss in scatter form: per level Σ|∇pred − ∇target| over
/// right and down neighbours inside each grid, the gradient of Σ_ℓ scale_ℓ·loss_ℓ, the
/// per-level Σ(|∇pred| + |∇target|) that bounds rounding, and each element's smallest nonzero
/// |difference| touching it (where a step would cross a kink).
struct GradientLoss {
    loss: Vec<f64>,
    grad: Vec<f64>,
    magnitude: Vec<f64>,
    nearest_kink: Vec<f64>,
}

fn image_gradient_reference(
    pred: &[f32],
    target: &[f32],
    grids: Grids,
    channels: usize,
    scales: &[f32],
) -> GradientLoss {
    let mut result = GradientLoss {
        loss: vec![0.0; grids.levels],
        grad: vec![0.0; pred.len()],
        magnitude: vec![0.0; grids.levels],
        nearest_kink: vec![f64::INFINITY; pred.len()],
    };
    for (first, side, level) in grid_rows(grids) {
        let scale = f64::from(scales[level]);
        for y in 0..side {
            for x in 0..side {
                for c in 0..channels {
                    let at = |yy: usize, xx: usize| (first + yy * side + xx) * channels + c;
                    let mut neighbours = Vec::new();
                    if x + 1 < side {
                        neighbours.push(at(y, x + 1));
                    }
                    if y + 1 < side {
                        neighbours.push(at(y + 1, x));
                    }
                    let here = at(y, x);
                    for next in neighbours {
                        let d_pred = f64::from(pred[next]) - f64::from(pred[here]);
                        let d_target = f64::from(target[next]) - f64::from(target[here]);
                        let d = d_pred - d_target;
                        result.loss[level] += d.abs();
                        result.magnitude[level] += d_pred.abs() + d_target.abs();
                        result.grad[next] += scale * sign(d);
                        result.grad[here] -= scale * sign(d);
                        if d != 0.0 {
                            for element in [here, next] {
                                result.nearest_kink[element] =
                                    result.nearest_kink[element].min(d.abs());
                            }
                        }
                    }
                }
            }
        }
    }
    result
}

#[test]
fn image_gradient_l1_grad_matches_reference_and_finite_differences() {
    for backend in backends() {
        let mut rng = Lcg::new(26);
        for (grids, channels) in GRID_CASES {
            let what = format!("image_gradient_l1_grad {grids:?}×{channels}");
            let (rows, len) = (grids.rows(), grids.rows() * channels);
            let scales = &LEVEL_SCALES[..grids.levels];
            let target = rng.values(len, 0.0, 1.0);
            let pred = prediction(&mut rng, &target, channels);
            let tensor_target = upload(backend, rows, channels, &target);
            let start = rng.values(len, -1.0, 1.0);
            let mut grad = upload(backend, rows, channels, &start);
            let got_loss = backend.image_gradient_l1_grad(
                &upload(backend, rows, channels, &pred),
                &tensor_target,
                grids,
                scales,
                &mut grad,
            );
            let got_grad = backend.download(&grad);
            let want = image_gradient_reference(&pred, &target, grids, channels, scales);
            // The gradient is added to what grad held.
            let want_grad: Vec<f64> = want
                .grad
                .iter()
                .zip(&start)
                .map(|(g, &s)| g + f64::from(s))
                .collect();
            assert_close(&what, backend, &got_grad, &want_grad, 1e-6);
            assert_f64_close(&what, backend, &got_loss, &want.loss, &want.magnitude, 1e-6);

            let step = 1.0 / 256.0;
            let mut loss = |p: &[f32]| {
                let mut scratch = backend.zeros(rows, channels).unwrap();
                backend
                    .image_gradient_l1_grad(
                        &upload(backend, rows, channels, p),
                        &tensor_target,
                        grids,
                        scales,
                        &mut scratch,
                    )
                    .iter()
                    .zip(scales)
                    .map(|(s, &scale)| f64::from(scale) * s)
                    .sum::<f64>()
            };
            for index in sample_indices(&mut rng, len, 8) {
                if want.nearest_kink[index] < 2.0 * f64::from(step) {
                    continue;
                }
                let numeric = central_difference(&pred, index, step, &mut loss);
                let analytic = f64::from(got_grad[index]) - f64::from(start[index]);
                assert!(
                    (numeric - analytic).abs() <= 1e-3,
                    "{what} on {}: grad[{index}] {analytic}, central difference {numeric}",
                    backend.adapter_name()
                );
            }
        }
    }
}

/// The layouts of the SSIM tests: two pyramids of sides 4, 8, 16 (the 16 wider than the
/// window, the 4 narrower), and of sides 1 and 2, where the window is the pixel or a few.
const SSIM_CASES: [(Grids, usize); 4] = [
    (
        Grids {
            count: 2,
            first_side: 4,
            levels: 3,
        },
        1,
    ),
    (
        Grids {
            count: 2,
            first_side: 4,
            levels: 3,
        },
        3,
    ),
    (
        Grids {
            count: 2,
            first_side: 1,
            levels: 2,
        },
        1,
    ),
    (
        Grids {
            count: 2,
            first_side: 1,
            levels: 2,
        },
        3,
    ),
];

/// SSIM at pixel (py, px), channel `c`, of the grid of `side` starting at row `first`, with
/// the 2-D window written out directly (no separability) and normalised over its taps inside
/// the grid.
#[allow(clippy::too_many_arguments)]
fn ssim_at(
    x: &[f64],
    y: &[f64],
    first: usize,
    side: usize,
    channels: usize,
    c: usize,
    py: usize,
    px: usize,
) -> f64 {
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let (mut z, mut mx, mut my, mut mxx, mut myy, mut mxy) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for qy in py.saturating_sub(5)..(py + 6).min(side) {
        for qx in px.saturating_sub(5)..(px + 6).min(side) {
            let (dy, dx) = (qy as f64 - py as f64, qx as f64 - px as f64);
            let w = (-(dy * dy + dx * dx) / (2.0 * 1.5 * 1.5)).exp();
            let at = (first + qy * side + qx) * channels + c;
            let (a, b) = (x[at], y[at]);
            z += w;
            mx += w * a;
            my += w * b;
            mxx += w * a * a;
            myy += w * b * b;
            mxy += w * a * b;
        }
    }
    let (mx, my) = (mx / z, my / z);
    let (vx, vy, cov) = (mxx / z - mx * mx, myy / z - my * my, mxy / z - mx * my);
    ((2.0 * mx * my + c1) * (2.0 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
}

/// Per level, the sum over its grids of their mean SSIM.
fn ssim_reference(x: &[f64], y: &[f64], grids: Grids, channels: usize) -> Vec<f64> {
    let mut sums = vec![0.0; grids.levels];
    for (first, side, level) in grid_rows(grids) {
        let mut total = 0.0;
        for py in 0..side {
            for px in 0..side {
                for c in 0..channels {
                    total += ssim_at(x, y, first, side, channels, c, py, px);
                }
            }
        }
        sums[level] += total / (side * side * channels) as f64;
    }
    sums
}

/// The gradient of Σ_grids scale_ℓ·(1 − mean SSIM) by central differences of the f64
/// reference (step 1e-6, so its error is far below f32's), element by element: a change at q
/// moves only the SSIM of its grid and channel within the window's radius.
fn ssim_reference_grad(
    x: &[f64],
    y: &[f64],
    grids: Grids,
    channels: usize,
    scales: &[f32],
) -> Vec<f64> {
    let step = 1e-6;
    let mut grad = vec![0.0; x.len()];
    let mut shifted = x.to_vec();
    for (first, side, level) in grid_rows(grids) {
        let weight = -f64::from(scales[level]) / (side * side * channels) as f64;
        for qy in 0..side {
            for qx in 0..side {
                for c in 0..channels {
                    let at = (first + qy * side + qx) * channels + c;
                    let window_sum = |shifted: &[f64]| {
                        let mut total = 0.0;
                        for py in qy.saturating_sub(5)..(qy + 6).min(side) {
                            for px in qx.saturating_sub(5)..(qx + 6).min(side) {
                                total += ssim_at(shifted, y, first, side, channels, c, py, px);
                            }
                        }
                        total
                    };
                    shifted[at] = x[at] + step;
                    let plus = window_sum(&shifted);
                    shifted[at] = x[at] - step;
                    let minus = window_sum(&shifted);
                    shifted[at] = x[at];
                    grad[at] = weight * (plus - minus) / (2.0 * step);
                }
            }
        }
    }
    grad
}

#[test]
fn ssim_grad_matches_reference_and_finite_differences() {
    for backend in backends() {
        let mut rng = Lcg::new(27);
        for (grids, channels) in SSIM_CASES {
            let what = format!("ssim_grad {grids:?}×{channels}");
            let (rows, len) = (grids.rows(), grids.rows() * channels);
            let scales = &LEVEL_SCALES[..grids.levels];
            // Values away from 0, where SSIM's luminance term is steep; the prediction
            // resembles the target, so SSIM is far from both 0 and 1.
            let target = rng.values(len, 0.1, 0.9);
            let pred: Vec<f32> = rng
                .values(len, 0.1, 0.9)
                .iter()
                .zip(&target)
                .map(|(&noise, &t)| 0.6 * t + 0.4 * noise)
                .collect();
            let tensor_target = upload(backend, rows, channels, &target);
            let start = rng.values(len, -1.0, 1.0);
            let mut grad = upload(backend, rows, channels, &start);
            let got_sums = backend.ssim_grad(
                &upload(backend, rows, channels, &pred),
                &tensor_target,
                grids,
                scales,
                &mut grad,
            );
            let got_grad: Vec<f64> = backend
                .download(&grad)
                .iter()
                .zip(&start)
                .map(|(&g, &s)| f64::from(g) - f64::from(s))
                .collect();

            let want_sums = ssim_reference(&wide(&pred), &wide(&target), grids, channels);
            let counts = vec![grids.count as f64; grids.levels];
            let what_sums = format!("{what} Σ mean SSIM");
            assert_f64_close(&what_sums, backend, &got_sums, &want_sums, &counts, 1e-5);
            // SSIM must be away from 1 (where its gradient vanishes), or the test would not see a
            // wrong gradient.
            assert!(
                want_sums.iter().all(|&s| s < grids.count as f64 - 0.02),
                "{what}: SSIM {want_sums:?} too close to 1"
            );

            // The gradient (added to `start`) against the reference's, judged against the
            // largest entry, since entries of a fine level are small beside the coarse ones.
            let want_grad =
                ssim_reference_grad(&wide(&pred), &wide(&target), grids, channels, scales);
            let largest = want_grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
            for (index, (&got, &want)) in got_grad.iter().zip(&want_grad).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-4 * largest + 1e-7,
                    "{what} on {}: grad[{index}] {got}, want {want} (largest {largest})",
                    backend.adapter_name()
                );
            }

            // The gradient against central differences of the loss the backend returns.
            let step = 1.0 / 256.0;
            let mut loss = |p: &[f32]| {
                let mut scratch = backend.zeros(rows, channels).unwrap();
                backend
                    .ssim_grad(
                        &upload(backend, rows, channels, p),
                        &tensor_target,
                        grids,
                        scales,
                        &mut scratch,
                    )
                    .iter()
                    .zip(scales)
                    .map(|(s, &scale)| f64::from(scale) * (grids.count as f64 - s))
                    .sum::<f64>()
            };
            for index in sample_indices(&mut rng, len, 8) {
                let numeric = central_difference(&pred, index, step, &mut loss);
                assert!(
                    (numeric - got_grad[index]).abs() <= 1e-2 * largest,
                    "{what} on {}: grad[{index}] {}, central difference {numeric}",
                    backend.adapter_name(),
                    got_grad[index]
                );
            }

            // Identical images: SSIM 1 in every grid, and 1 − SSIM at its minimum.
            let mut grad = upload(backend, rows, channels, &start);
            let sums = backend.ssim_grad(&tensor_target, &tensor_target, grids, scales, &mut grad);
            for (level, &sum) in sums.iter().enumerate() {
                assert!(
                    (sum - grids.count as f64).abs() <= 1e-6,
                    "{what} on {}: identical images give level {level} SSIM sum {sum}",
                    backend.adapter_name()
                );
            }
            for (index, (&g, &s)) in backend.download(&grad).iter().zip(&start).enumerate() {
                assert!(
                    (f64::from(g) - f64::from(s)).abs() <= 1e-5 * largest + 1e-7,
                    "{what} on {}: identical images give grad[{index}] {} beside {s}",
                    backend.adapter_name(),
                    g
                );
            }
        }
    }
}

#[test]
fn upsample_nearest_backward_matches_reference_and_is_the_adjoint() {
    for backend in backends() {
        let mut rng = Lcg::new(27);
        for (grids, channels) in GRID_CASES {
            let what = format!("upsample_nearest_backward {grids:?}×{channels}");
            let doubled = grids.doubled();
            let d_up = rng.values(doubled.rows() * channels, -1.0, 1.0);
            // Stale contents must be overwritten.
            let mut d_image = upload(
                backend,
                grids.rows(),
                channels,
                &vec![9.0; grids.rows() * channels],
            );
            backend.upsample_nearest_backward(
                &upload(backend, doubled.rows(), channels, &d_up),
                grids,
                &mut d_image,
            );
            let mut want = vec![0.0; grids.rows() * channels];
            for ((first, side, _), (big_first, big_side, _)) in
                grid_rows(grids).into_iter().zip(grid_rows(doubled))
            {
                for y in 0..big_side {
                    for x in 0..big_side {
                        for c in 0..channels {
                            want[(first + (y / 2) * side + x / 2) * channels + c] +=
                                f64::from(d_up[(big_first + y * big_side + x) * channels + c]);
                        }
                    }
                }
            }
            assert_close(&what, backend, &backend.download(&d_image), &want, 1e-6);
        }
        // ⟨up(v), u⟩ = ⟨v, up_backward(u)⟩ against upsample2x on one grid.
        let (side, channels) = (5, 3);
        let v = rng.values(side * side * channels, -1.0, 1.0);
        let u = rng.values(4 * side * side * channels, -1.0, 1.0);
        let mut up = backend.zeros(4 * side * side, channels).unwrap();
        backend.upsample2x(
            &upload(backend, side * side, channels, &v),
            side,
            side,
            Upsample::Nearest,
            &mut up,
        );
        let mut back = backend.zeros(side * side, channels).unwrap();
        backend.upsample_nearest_backward(
            &upload(backend, 4 * side * side, channels, &u),
            Grids::single(side),
            &mut back,
        );
        let dot = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum::<f64>()
        };
        let (left, right) = (
            dot(&backend.download(&up), &u),
            dot(&v, &backend.download(&back)),
        );
        assert!(
            (left - right).abs() <= 1e-5 * left.abs().max(1.0),
            "upsample_nearest_backward is not the adjoint on {}: {left} vs {right}",
            backend.adapter_name()
        );
    }
}

#[test]
fn diagonal_blocks_match_reference_and_are_adjoint() {
    for backend in backends() {
        let mut rng = Lcg::new(28);
        for (c, k) in [(1, 1), (1, 5), (3, 4), (5, 3), (37, 2), (17, 3)] {
            let what = format!("{k} diagonal blocks of {c}×{c}");
            let n = k * c;
            let block = rng.values(c * c, -1.0, 1.0);
            let matrix = rng.values(n * n, -1.0, 1.0);
            let start_big = rng.values(n * n, -1.0, 1.0);
            let start_small = rng.values(c * c, -1.0, 1.0);

            let mut out = upload(backend, n, n, &start_big);
            backend.add_diagonal_blocks(&upload(backend, c, c, &block), &mut out);
            let mut want = wide(&start_big);
            for b in 0..k {
                for i in 0..c {
                    for j in 0..c {
                        want[(b * c + i) * n + b * c + j] += f64::from(block[i * c + j]);
                    }
                }
            }
            assert_close(
                &format!("add_diagonal_blocks {what}"),
                backend,
                &backend.download(&out),
                &want,
                1e-6,
            );

            let mut out = upload(backend, c, c, &start_small);
            backend.sum_diagonal_blocks(&upload(backend, n, n, &matrix), &mut out);
            let mut want = wide(&start_small);
            for b in 0..k {
                for i in 0..c {
                    for j in 0..c {
                        want[i * c + j] += f64::from(matrix[(b * c + i) * n + b * c + j]);
                    }
                }
            }
            assert_close(
                &format!("sum_diagonal_blocks {what}"),
                backend,
                &backend.download(&out),
                &want,
                1e-6,
            );

            // ⟨add(B), M⟩ = ⟨B, sum(M)⟩, both from zeros.
            let mut added = backend.zeros(n, n).unwrap();
            backend.add_diagonal_blocks(&upload(backend, c, c, &block), &mut added);
            let mut summed = backend.zeros(c, c).unwrap();
            backend.sum_diagonal_blocks(&upload(backend, n, n, &matrix), &mut summed);
            let dot = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(&x, &y)| f64::from(x) * f64::from(y))
                    .sum::<f64>()
            };
            let left = dot(&backend.download(&added), &matrix);
            let right = dot(&block, &backend.download(&summed));
            let magnitude: f64 = matrix.iter().map(|v| f64::from(v.abs())).sum();
            assert!(
                (left - right).abs() <= 1e-6 * magnitude,
                "{what} on {}: ⟨add(B), M⟩ = {left}, ⟨B, sum(M)⟩ = {right}",
                backend.adapter_name()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Optimisers

#[test]
fn sgd_momentum_matches_pytorch() {
    for backend in backends() {
        let mut rng = Lcg::new(13);
        for count in [1, 37, 257 * 3] {
            let start = rng.values(count, -1.0, 1.0);
            let mut param = upload(backend, count, 1, &start);
            let mut velocity = backend.zeros(count, 1).unwrap();
            let mut want_param = wide(&start);
            let mut want_velocity = vec![0.0; count];
            for _ in 0..3 {
                let grad = rng.values(count, -1.0, 1.0);
                backend.sgd_momentum(
                    &mut param,
                    &upload(backend, count, 1, &grad),
                    &mut velocity,
                    0.05,
                    0.9,
                );
                for i in 0..count {
                    want_velocity[i] = 0.9 * want_velocity[i] + f64::from(grad[i]);
                    want_param[i] -= 0.05 * want_velocity[i];
                }
            }
            assert_close(
                "sgd param",
                backend,
                &backend.download(&param),
                &want_param,
                1e-6,
            );
            assert_close(
                "sgd velocity",
                backend,
                &backend.download(&velocity),
                &want_velocity,
                1e-6,
            );
        }
    }
}

#[test]
fn adam_matches_pytorch() {
    for backend in backends() {
        let mut rng = Lcg::new(14);
        for count in [1, 37, 257 * 3] {
            let start = rng.values(count, -1.0, 1.0);
            let mut param = upload(backend, count, 1, &start);
            let mut m = backend.zeros(count, 1).unwrap();
            let mut v = backend.zeros(count, 1).unwrap();
            let (lr, b1, b2, eps) = (1e-2f32, 0.9f32, 0.999f32, 1e-8f32);
            let mut want_param = wide(&start);
            let mut want_m = vec![0.0; count];
            let mut want_v = vec![0.0; count];
            for step in 1..=3u32 {
                let grad = rng.values(count, -1.0, 1.0);
                backend.adam(
                    &mut param,
                    &upload(backend, count, 1, &grad),
                    &mut m,
                    &mut v,
                    AdamStep {
                        learning_rate: lr,
                        beta1: b1,
                        beta2: b2,
                        epsilon: eps,
                        step,
                    },
                );
                let (lr, b1, b2, eps) =
                    (f64::from(lr), f64::from(b1), f64::from(b2), f64::from(eps));
                for i in 0..count {
                    let g = f64::from(grad[i]);
                    want_m[i] = b1 * want_m[i] + (1.0 - b1) * g;
                    want_v[i] = b2 * want_v[i] + (1.0 - b2) * g * g;
                    let m_hat = want_m[i] / (1.0 - b1.powi(step as i32));
                    let v_hat = want_v[i] / (1.0 - b2.powi(step as i32));
                    want_param[i] -= lr * m_hat / (v_hat.sqrt() + eps);
                }
            }
            assert_close(
                "adam param",
                backend,
                &backend.download(&param),
                &want_param,
                1e-5,
            );
            assert_close("adam m", backend, &backend.download(&m), &want_m, 1e-5);
            assert_close("adam v", backend, &backend.download(&v), &want_v, 1e-5);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shaders and adapters

/// Every WGSL file parses and validates with naga (the compiler wgpu itself uses), so shader
/// errors show up here with line numbers even on machines without any adapter.
#[test]
fn every_shader_parses_and_validates() {
    use wgpu::naga;
    let modules = gpu::shader_modules();
    assert!(
        modules.len() > 13,
        "every file, the tiled ones once per tile shape"
    );
    assert!(
        modules
            .iter()
            .any(|(name, _)| name.starts_with("linear.wgsl (Tile")),
        "the cooperative tiles are among them"
    );
    for (name, source) in &modules {
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|error| panic!("{name}:\n{}", error.emit_to_string(source)));
        let mut capabilities = naga::valid::Capabilities::empty();
        if name.ends_with("Subgroup sums)") {
            capabilities |= naga::valid::Capabilities::SUBGROUP;
        }
        // The cooperative tiles (16×16 fragments as NVIDIA's Vulkan driver offers, 8×8 as
        // lavapipe's): validated here whether or not this adapter can run them.
        if name.starts_with("linear.wgsl (Tile") {
            capabilities |= naga::valid::Capabilities::SHADER_FLOAT16
                | naga::valid::Capabilities::COOPERATIVE_MATRIX;
        }
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
            .validate(&module)
            .unwrap_or_else(|error| panic!("{name}:\n{}", error.emit_to_string(source)));
    }
}

/// The hardware adapters with compute shaders that `GpuBackend::new(false)` looks among (the
/// primary APIs, unless WGPU_BACKEND picks).
fn hardware_adapters() -> Vec<wgpu::AdapterInfo> {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if std::env::var_os("WGPU_BACKEND").is_none() {
        descriptor.backends = wgpu::Backends::PRIMARY;
    }
    let instance = wgpu::Instance::new(descriptor);
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .filter(|adapter| {
            adapter
                .get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        })
        .map(|adapter| adapter.get_info())
        .filter(|info| info.device_type != wgpu::DeviceType::Cpu)
        .collect()
}

#[test]
fn hardware_only_request_refuses_software_adapters() {
    // With allow_software = false the backend opens a hardware adapter or fails, so `auto`
    // falls back to the CPU backend instead of lavapipe.
    let hardware = hardware_adapters();
    let auto = inrlab::compute::create_backend(inrlab::compute::BackendChoice::Auto).unwrap();
    if hardware.is_empty() {
        // Software adapters only (CI's lavapipe), or none.
        let refused = GpuBackend::new(false);
        assert!(
            refused.is_err(),
            "opened {} with only software adapters around",
            refused.map_or(String::new(), |gpu| gpu.adapter_name())
        );
        assert_eq!(
            auto.kind(),
            BackendKind::Cpu,
            "auto chose {}",
            auto.adapter_name()
        );
    } else {
        let gpu = GpuBackend::new(false).expect("a hardware adapter is there");
        assert!(
            !gpu.is_software(),
            "got software adapter {} though {hardware:?} are there",
            gpu.adapter_name()
        );
        assert_eq!(
            auto.kind(),
            BackendKind::Gpu,
            "auto chose {}",
            auto.adapter_name()
        );
    }
}

/// Gram of a 16384×256 H on this machine's adapter: the float-float kernel against downloading
/// H and summing on the host in f64. Run with
/// `cargo test --release --test backend_ops -- --ignored --nocapture gram_timing`.
#[test]
#[ignore]
fn gram_timing() {
    let Some(gpu) = gpu_backend() else { return };
    let (rows, cols) = (16384, 256);
    let data = Lcg::new(15).values(rows * cols, -1.0, 1.0);
    let h = gpu.upload(rows, cols, &data).unwrap();
    gpu.finish();
    // Build the pipeline outside the timing.
    let small = gpu.upload(16, 16, &[1.0; 256]).unwrap();
    let _ = gpu.gram_on_device(&[&small], &small);
    let start = std::time::Instant::now();
    let kernel = gpu.gram_on_device(&[&h], &h);
    let kernel_time = start.elapsed();
    let start = std::time::Instant::now();
    let host = gpu.gram_via_host(&[&h], &h);
    let host_time = start.elapsed();
    let largest_difference = kernel
        .iter()
        .zip(&host)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    eprintln!(
        "limits: max_storage_buffer_binding_size {} B, max_buffer_size {} B, workgroup storage {} B",
        gpu.limits().max_storage_buffer_binding_size,
        gpu.limits().max_buffer_size,
        gpu.limits().max_compute_workgroup_storage_size
    );
    eprintln!(
        "gram {rows}×{cols} on {}: float-float kernel {kernel_time:.2?}, download + host f64 {host_time:.2?}, largest difference {largest_difference:e}",
        gpu.adapter_name()
    );
}

/// Work beyond 65535 workgroups in one dimension: element-wise grids wrap into y and row tiles
/// of the products fold into z. GPU only (the CPU backend has no such limit). Ignored by
/// default because it takes ~40 s on lavapipe; run it with `-- --ignored gpu_dispatch`.
#[test]
#[ignore]
fn gpu_dispatch_beyond_the_per_dimension_workgroup_limit() {
    let Some(gpu) = gpu_backend() else { return };
    let limit = gpu.limits().max_compute_workgroups_per_dimension as usize;
    // Element-wise: more than limit × 256 elements.
    let count = limit * 256 + 1000;
    let x = gpu.upload(count, 1, &vec![1.0; count]).unwrap();
    let mut y = gpu.zeros(count, 1).unwrap();
    gpu.axpy(2.0, &x, &mut y);
    let got = gpu.download(&y);
    assert!(got.iter().all(|&v| v == 2.0), "axpy past the grid limit");
    drop((x, y));
    // Products: more than limit row tiles of 64.
    let rows = limit * 64 + 100;
    let input: Vec<f32> = (0..rows).map(|n| (n % 7) as f32).collect();
    let x = gpu.upload(rows, 1, &input).unwrap();
    let weights = gpu.upload(1, 1, &[0.5]).unwrap();
    let bias = gpu.upload(1, 1, &[1.0]).unwrap();
    let mut out = gpu.zeros(rows, 1).unwrap();
    gpu.dense_forward(&x, &weights, &bias, Activation::Identity, &mut out);
    let got = gpu.download(&out);
    for (n, (&g, &v)) in got.iter().zip(&input).enumerate() {
        assert_eq!(
            g,
            0.5 * v + 1.0,
            "dense_forward row {n} past the grid limit"
        );
    }
}

/// A tensor rewritten after a Gram product (a state updated in place every iteration) must not
/// be read through a stale copy: the next Gram sees the new contents.
#[test]
fn gram_follows_a_rewritten_tensor() {
    for backend in backends() {
        let mut rng = Lcg::new(9);
        let (rows, cols) = (300, 19);
        let first = rng.values(rows * cols, -1.0, 1.0);
        let second = rng.values(rows * cols, -1.0, 1.0);
        let mut tensor = upload(backend, rows, cols, &first);
        let target = upload(backend, rows, 3, &rng.values(rows * 3, 0.0, 1.0));
        let _ = backend.gram(&[&tensor], &tensor);
        let _ = backend.gram(&[&tensor], &target);
        backend.write(&mut tensor, &second);
        let got = backend.gram(&[&tensor], &tensor);
        let (want, magnitude) = gram_reference(&[(&second, cols)], &second, rows, cols);
        assert_f64_close("gram after write", backend, &got, &want, &magnitude, 1e-12);
        // And through a backend operation that writes in place (a reservoir-style update).
        let zero_input = upload(backend, rows, 1, &vec![0.0; rows]);
        let input_weights = upload(backend, 1, cols, &vec![0.0; cols]);
        let recurrent = upload(backend, cols, cols, &vec![0.0; cols * cols]);
        let bias = upload(backend, 1, cols, &vec![0.5; cols]);
        backend.reservoir_step(
            &zero_input,
            &input_weights,
            None,
            &recurrent,
            &bias,
            &mut tensor,
        );
        let got = backend.gram(&[&tensor], &tensor);
        let expected = rows as f64 * (0.5f32.tanh() as f64).powi(2);
        for value in got {
            assert!(
                (value - expected).abs() < 1e-4 * expected,
                "{value} vs {expected}"
            );
        }
    }
}
