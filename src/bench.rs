//! `inrlab bench`: throughput of the backend operations and the time of the method suite.
//!
//! With `--json`, standard output is exactly a JSON list of records
//! `{"backend", "op", "n", "width", "ms", "gflops"}` (op one of reservoir_step, dense_forward,
//! dense_backward, gram, gram_kernel (the float-float kernel, on software adapters where `gram`
//! goes through the host), readout (to 3 outputs), haar; backend "cpu", "gpu", or "gpu f16 16×16"
//! for a GPU backend whose dense layers sum on cooperative matrices, measured beside the f32
//! one); the suite's table then goes to standard error.

use std::time::Instant;

use serde::Serialize;

use crate::bench_baseline::{NumpyBaseline, speed_against};
use crate::cli::BenchArgs;
use crate::compute::cpu::CpuBackend;
use crate::compute::gpu::GpuBackend;
use crate::compute::{Activation, Backend, BackendChoice, Tensor};
use crate::methods::{self, MethodCache, ParamValues};
use crate::rng::RngKind;
use crate::session::{AdvanceResult, Session};
use crate::target::{Fit, Target};

#[derive(Serialize, Clone, Debug)]
pub struct Record {
    pub backend: String,
    pub op: &'static str,
    pub n: usize,
    pub width: usize,
    pub ms: f64,
    /// None for memory-bound operations (haar), whose rate is in `gigabytes_per_second`.
    pub gflops: Option<f64>,
    #[serde(skip)]
    pub gigabytes_per_second: Option<f64>,
}

/// The reservoir suite: the seed notebook's five recipes, timed against its numpy recipes run
/// in the same bench (`bench_baseline`).
pub const SUITE_METHODS: &[&str] = &[
    "trajectory",
    "cumulative",
    "refine",
    "multiscale",
    "fourier-ridge",
];

/// The backends to measure: the one asked for, or the CPU plus any hardware GPU.
fn backends(choice: BackendChoice) -> anyhow::Result<Vec<Box<dyn Backend>>> {
    Ok(match choice {
        BackendChoice::Cpu => vec![Box::new(CpuBackend::new())],
        BackendChoice::Gpu => with_f32_beside(GpuBackend::new(true)?)?,
        BackendChoice::Auto => {
            let mut list: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::new())];
            if let Ok(gpu) = GpuBackend::new(false) {
                list.extend(with_f32_beside(gpu)?);
            }
            list
        }
    })
}

/// `gpu` and, where its device can run cooperative matrices, a second backend on its adapter
/// with the other path for the dense layers (f32 beside cooperative on hardware adapters,
/// cooperative beside f32 on software ones, which leave them out by default), so both are
/// measured side by side, f32 first.
fn with_f32_beside(gpu: GpuBackend) -> anyhow::Result<Vec<Box<dyn Backend>>> {
    if !gpu.offers_cooperative_matrices() {
        return Ok(vec![Box::new(gpu)]);
    }
    let other = GpuBackend::new(true)?;
    Ok(if gpu.cooperative_fragment().is_some() {
        vec![
            Box::new(other.without_cooperative_matrices()),
            Box::new(gpu),
        ]
    } else {
        vec![
            Box::new(gpu),
            Box::new(other.with_cooperative_matrices_everywhere()),
        ]
    })
}

/// The backend's name in the records: its kind, and the dense layers' cooperative fragment
/// where they use one ("gpu f16 16×16").
pub fn label(backend: &dyn Backend) -> String {
    match cooperative_fragment(backend) {
        Some(fragment) => format!("{} f16 {fragment}×{fragment}", backend.kind()),
        None => backend.kind().to_string(),
    }
}

fn cooperative_fragment(backend: &dyn Backend) -> Option<usize> {
    backend.as_gpu().and_then(GpuBackend::cooperative_fragment)
}

/// Median milliseconds of `repeats` runs of `work` after one warm-up run.
fn median_ms(backend: &dyn Backend, repeats: usize, mut work: impl FnMut()) -> f64 {
    work();
    backend.finish();
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let started = Instant::now();
            work();
            backend.finish();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Deterministic pseudo-random values in [-scale, scale), cheap to make in bulk.
fn filler(count: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn record(
    backend: &dyn Backend,
    op: &'static str,
    n: usize,
    width: usize,
    ms: f64,
    flops: f64,
) -> Record {
    Record {
        backend: label(backend),
        op,
        n,
        width,
        ms,
        gflops: Some(flops / (ms * 1e-3) / 1e9),
        gigabytes_per_second: None,
    }
}

/// What one backend's measurements gave: the records, and a line for each case that could not
/// run on it (too large for the adapter's bindings, out of memory), with the reason.
#[derive(Default)]
pub struct Measured {
    pub records: Vec<Record>,
    pub skipped: Vec<String>,
}

impl Measured {
    /// Keeps a case's record, or says why it was skipped.
    fn keep(&mut self, case: &str, result: anyhow::Result<Record>) {
        match result {
            Ok(record) => self.records.push(record),
            Err(error) => self.skipped.push(format!("skipped {case}: {error:#}")),
        }
    }
}

/// Measures every operation the issue lists on one backend. A case the backend cannot hold is
/// skipped with its reason, and the others still run.
pub fn measure_operations(backend: &dyn Backend, repeats: usize) -> Measured {
    let mut measured = Measured::default();
    let hidden = 256;
    // The weights are the same for every size: uploaded once.
    let reservoir_weights = (|| -> anyhow::Result<_> {
        Ok((
            backend.upload(hidden, hidden, &filler(hidden * hidden, 1, 0.06))?,
            backend.upload(2, hidden, &filler(2 * hidden, 2, 0.5))?,
            backend.upload(1, hidden, &filler(hidden, 3, 0.1))?,
        ))
    })();
    for n in [16_384, 65_536] {
        let result = (|| {
            let (w_hh, w_in, bias) = reservoir_weights
                .as_ref()
                .map_err(|error| anyhow::anyhow!("{error:#}"))?;
            let coords = backend.upload(n, 2, &filler(2 * n, 4, 1.0))?;
            let state = backend.upload(n, hidden, &filler(n * hidden, 5, 1.0))?;
            let mut out = backend.zeros(n, hidden)?;
            let ms = median_ms(backend, repeats, || {
                backend.reservoir_step(&coords, w_in, Some(&state), w_hh, bias, &mut out)
            });
            let flops = 2.0 * n as f64 * hidden as f64 * (hidden + 2) as f64;
            Ok(record(backend, "reservoir_step", n, hidden, ms, flops))
        })();
        measured.keep(&format!("reservoir_step {n}×{hidden}"), result);
    }

    let n = 16_384;
    let width = 256;
    let product_flops = 2.0 * (n * width * width) as f64;
    let dense = (|| -> anyhow::Result<(f64, f64)> {
        let x = backend.upload(n, width, &filler(n * width, 6, 1.0))?;
        let weights = backend.upload(width, width, &filler(width * width, 7, 0.06))?;
        let layer_bias = backend.upload(1, width, &filler(width, 8, 0.1))?;
        let mut y = backend.zeros(n, width)?;
        let forward_ms = median_ms(backend, repeats, || {
            backend.dense_forward(&x, &weights, &layer_bias, Activation::Relu, &mut y)
        });
        let dy = backend.upload(n, width, &filler(n * width, 9, 1.0))?;
        let mut dx = backend.zeros(n, width)?;
        let mut d_weights = backend.zeros(width, width)?;
        let mut d_bias = backend.zeros(1, width)?;
        let backward_ms = median_ms(backend, repeats, || {
            backend.dense_backward(
                &x,
                &weights,
                &y,
                &dy,
                Activation::Relu,
                Some(&mut dx),
                &mut d_weights,
                &mut d_bias,
            )
        });
        Ok((forward_ms, backward_ms))
    })();
    match dense {
        Ok((forward_ms, backward_ms)) => {
            let forward = record(
                backend,
                "dense_forward",
                n,
                width,
                forward_ms,
                product_flops,
            );
            let backward = record(
                backend,
                "dense_backward",
                n,
                width,
                backward_ms,
                2.0 * product_flops,
            );
            measured.records.extend([forward, backward]);
        }
        Err(error) => measured
            .skipped
            .push(format!("skipped dense {n}×{width}: {error:#}")),
    }

    for features in [256, 2560] {
        // Counted as the full product 2·N·F², as BLAS benchmarks count HᵀH.
        let gram_record = |op, gram: &dyn Fn(&Tensor) -> Vec<f64>| {
            let h = backend.upload(n, features, &filler(n * features, 10, 1.0))?;
            let ms = median_ms(backend, repeats, || {
                std::hint::black_box(gram(&h));
            });
            let flops = 2.0 * n as f64 * (features * features) as f64;
            Ok(record(backend, op, n, features, ms, flops))
        };
        let result = gram_record("gram", &|h| backend.gram(&[h], h));
        measured.keep(&format!("gram {n}×{features}"), result);
        // `gram` goes through the host on software adapters; the float-float kernel is
        // measured too, at the width a software adapter finishes in seconds.
        if let Some(gpu) = backend.as_gpu().filter(|gpu| gpu.is_software())
            && features == 256
        {
            let result = gram_record("gram_kernel", &|h| gpu.gram_on_device(&[h], h));
            measured.keep(&format!("gram kernel {n}×{features}"), result);
        }
        let outputs = 3;
        let result = (|| {
            let h = backend.upload(n, features, &filler(n * features, 13, 1.0))?;
            let weights: Vec<f64> = filler(features * outputs, 14, 1.0)
                .into_iter()
                .map(|w| f64::from(w) * 1e3)
                .collect();
            let mut out = backend.zeros(n, outputs)?;
            let ms = median_ms(backend, repeats, || {
                backend.readout(&[&h], &weights, &mut out);
            });
            let flops = 2.0 * n as f64 * (features * outputs) as f64;
            Ok(record(backend, "readout", n, features, ms, flops))
        })();
        measured.keep(&format!("readout {n}×{features}→{outputs}"), result);
    }

    let side = 1024;
    let channels = 3;
    let pixels = side * side;
    let result = (|| {
        let image = backend.upload(pixels, channels, &filler(pixels * channels, 11, 1.0))?;
        let mut bands = backend.zeros(pixels, channels)?;
        let ms = median_ms(backend, repeats, || {
            backend.haar_forward(&image, side, side, &mut bands)
        });
        let bytes = 2.0 * (pixels * channels * 4) as f64;
        Ok(Record {
            backend: label(backend),
            op: "haar",
            n: pixels,
            width: channels,
            ms,
            gflops: None,
            gigabytes_per_second: Some(bytes / (ms * 1e-3) / 1e9),
        })
    })();
    measured.keep(&format!("haar {side}²"), result);
    measured
}

/// The display path's cost per frame at each working size: what the compute thread does to
/// hand a step's picture to the window (download the N×3 f32 image, convert it to an egui
/// image), by the wall clock around the submit-and-wait. A line each, or why it was skipped.
pub fn display_path_lines(backend: &dyn Backend, repeats: usize) -> Vec<String> {
    let mut lines = vec![format!(
        "display path per frame (download + conversion, wall clock) on {}",
        backend.kind()
    )];
    for side in [128, 256, 512, 1024] {
        let result = (|| -> anyhow::Result<f64> {
            let image = backend.upload(side * side, 3, &filler(side * side * 3, 12, 1.0))?;
            Ok(median_ms(backend, repeats, || {
                let pixels = backend.download(&image);
                std::hint::black_box(crate::imaging::color_image_from_rgb(&pixels, side));
            }))
        })();
        lines.push(match result {
            Ok(ms) => format!("  {side:>4}²  {ms:>8.3} ms"),
            Err(error) => format!("  {side:>4}²  skipped: {error:#}"),
        });
    }
    if let Some(gpu) = backend.as_gpu() {
        lines.extend(presented_frame_lines(gpu, repeats));
    }
    lines
}

/// The path that replaces the download when the window shares the device: the image written
/// into the texture egui samples (`Backend::present`), per frame, by GPU timestamps where the
/// device has them and by the wall clock around the submit-and-wait.
fn presented_frame_lines(gpu: &GpuBackend, repeats: usize) -> Vec<String> {
    let timestamps = gpu.has_timestamps();
    let mut lines = vec![format!(
        "display path per frame on a shared device (written into the native texture on {}; \
         GPU time {})",
        gpu.adapter_name(),
        if timestamps {
            "from timestamp queries"
        } else {
            "not measured: the device has no timestamp queries"
        }
    )];
    for side in [128, 256, 512, 1024] {
        let result = (|| -> anyhow::Result<(f64, Option<f64>)> {
            let image = gpu.upload(side * side, 3, &filler(side * side * 3, 12, 1.0))?;
            let mut picture = None;
            let wall = median_ms(gpu, repeats, || {
                gpu.present(&image, side, &mut picture);
            });
            let mut device_times: Vec<f64> = (0..repeats.max(1))
                .filter_map(|_| {
                    gpu.gpu_milliseconds(|| {
                        gpu.present(&image, side, &mut picture);
                    })
                })
                .collect();
            device_times.sort_by(f64::total_cmp);
            Ok((wall, device_times.get(device_times.len() / 2).copied()))
        })();
        lines.push(match result {
            Ok((wall, Some(device))) => {
                format!("  {side:>4}²  GPU {device:>8.3} ms   wall clock {wall:>8.3} ms")
            }
            Ok((wall, None)) => format!("  {side:>4}²  wall clock {wall:>8.3} ms"),
            Err(error) => format!("  {side:>4}²  skipped: {error:#}"),
        });
    }
    lines
}

/// One method's share of the reservoir suite: its compute seconds and its last step's PSNR.
pub struct SuiteTime {
    pub method: String,
    pub seconds: f64,
    pub final_psnr_db: f64,
}

/// Seconds per method for the reservoir suite at one size (numpy generator, seed 42), and the
/// PSNR each one ends at, so a GPU's suite can be held to the CPU backend's numbers.
///
/// The methods are built together, as the window builds the ones it shows, so trajectory and
/// cumulative share one unrolled reservoir: its states and diagonal Gram blocks are computed
/// once, and the suite's total counts them once. Building (draws, eigenvalues) is timed with
/// the method it belongs to.
pub fn measure_suite(backend: &dyn Backend, size: usize) -> anyhow::Result<Vec<SuiteTime>> {
    let target = Target::sample(size, Fit::Stretch)?;
    // A fresh cache: every method pays for its reservoirs' eigenvalue solves, as in the
    // notebook, and nothing is left over from an earlier size.
    let mut session = Session::borrowing(backend, MethodCache::blocking(), RngKind::Numpy);
    session.set_target(target);
    let plans = SUITE_METHODS
        .iter()
        .map(|name| Ok((methods::find(name)?, ParamValues::new())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    session.set_selection(&plans);
    let mut final_psnr_db = vec![f64::NAN; plans.len()];
    // One after the other, so the shared reservoir's steps are counted under trajectory; a
    // finished method stays in its slot, so cumulative still finds them.
    for (index, psnr_db) in final_psnr_db.iter_mut().enumerate() {
        while session.slot(index).is_runnable(None) {
            match session.advance(index, false).result {
                AdvanceResult::Stepped(report) => *psnr_db = report.psnr_db,
                AdvanceResult::Stopped(reason) => {
                    anyhow::bail!("{}: {reason}", plans[index].0.name)
                }
                _ => {}
            }
        }
    }
    Ok(session
        .slots()
        .iter()
        .zip(final_psnr_db)
        .map(|(slot, final_psnr_db)| SuiteTime {
            method: slot.info.name.to_owned(),
            seconds: slot.compute_secs,
            final_psnr_db,
        })
        .collect())
}

/// The window's time sharing (issue 9's figures), as lines and as JSON records with the
/// documented fields (`n` the step reached or the number of changes; `width`, `gflops` null).
fn scheduling_lines() -> anyhow::Result<(Vec<String>, Vec<serde_json::Value>)> {
    use crate::app::bench::scheduling::{slider_latency, window_reach};
    eprintln!("measuring the window's time sharing (about three minutes)…");
    let reach = window_reach("fourier-mlp", 500)?;
    let radius = slider_latency(
        "trajectory",
        "spectral-radius",
        |i| 0.9 + 0.005 * i as f64,
        10,
    )?;
    let sigma = slider_latency("fourier-mlp", "sigma", |i| 9.0 + 0.1 * i as f64, 10)?;
    let mut lines = vec![
        "window scheduling at 128² on cpu, the default selection, nothing focused".to_owned(),
        format!(
            "  {} reaches step {}: {:.1} s in the window, {:.1} s alone ({:.2}×)",
            reach.method,
            reach.steps,
            reach.ms / 1e3,
            reach.standalone_ms / 1e3,
            reach.ms / reach.standalone_ms
        ),
    ];
    let mut records = vec![serde_json::json!({
        "backend": "cpu", "op": "window_reach", "n": reach.steps, "width": null,
        "ms": reach.ms, "gflops": null, "method": reach.method,
        "standalone_ms": reach.standalone_ms,
    })];
    for latency in [radius, sigma] {
        lines.push(format!(
            "  {} change ({}) → first new frame: p50 {:.0} ms  p95 {:.0} ms  (its build and first \
             step alone {:.0} ms; longest step of another method {:.0} ms)",
            latency.parameter,
            latency.method,
            latency.p50_ms,
            latency.p95_ms,
            latency.first_step_ms,
            latency.longest_other_step_ms
        ));
        records.push(serde_json::json!({
            "backend": "cpu", "op": "slider_latency", "n": latency.changes, "width": null,
            "ms": latency.p50_ms, "gflops": null, "method": latency.method,
            "parameter": latency.parameter, "p50_ms": latency.p50_ms, "p95_ms": latency.p95_ms,
            "first_step_ms": latency.first_step_ms,
            "longest_other_step_ms": latency.longest_other_step_ms,
        }));
    }
    Ok((lines, records))
}

/// The window's frame time while its compute thread is busy (the real app, driven headless
/// at 60 Hz through every view, CPU backend, 128²).
fn ui_frame_time_line(frames: usize) -> String {
    let options = crate::app::bench::FrameBenchOptions {
        frames,
        ..Default::default()
    };
    let times = crate::app::bench::measure_ui_frame_times(&options);
    format!(
        "ui frame time over {} frames at {}² while computing ({} step frames arrived): \
         p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms{}",
        times.frames,
        options.working_size,
        times.step_frames,
        times.p50_ms,
        times.p95_ms,
        times.p99_ms,
        times.max_ms,
        if times.p95_ms > 16.0 {
            "  (p95 above 16 ms!)"
        } else {
            ""
        }
    )
}

/// The reservoir suite's table on `backend` at each of `sizes`, beside numpy's seconds where
/// the baseline was measured in this run; on a GPU, each method's final PSNR beside the CPU
/// backend's at the same size (the target is within 0.05 dB).
fn suite_table_lines(
    backend: &dyn Backend,
    sizes: &[usize],
    numpy: Option<&NumpyBaseline>,
) -> Vec<String> {
    let mut lines = Vec::new();
    // Warm the thread pool and the draw cache's neighbours so the suite is timed steadily.
    if let Err(error) = measure_suite(backend, 32) {
        lines.push(format!("skipped the suite warm-up: {error:#}"));
    }
    for &size in sizes.iter().filter(|&&s| s > 0) {
        let times = match measure_suite(backend, size) {
            Ok(times) => times,
            Err(error) => {
                lines.push(format!(
                    "suite on {} at {size}²: skipped: {error:#}",
                    backend.kind()
                ));
                continue;
            }
        };
        // The CPU backend is the oracle the GPU's numbers are held to.
        let on_cpu = if backend.as_gpu().is_some() {
            match measure_suite(&CpuBackend::new(), size) {
                Ok(cpu) => Some(cpu),
                Err(error) => {
                    lines.push(format!("suite on cpu at {size}² (for its PSNR): {error:#}"));
                    None
                }
            }
        } else {
            None
        };
        lines.push(format!(
            "suite on {} at {size}²  ({})",
            backend.kind(),
            backend.adapter_name()
        ));
        let mut total = 0.0;
        let mut numpy_total = 0.0;
        let mut differences_db = Vec::new();
        for time in &times {
            let name = time.method.as_str();
            let seconds = time.seconds;
            let numpy = numpy.and_then(|numpy| numpy.seconds(size, name));
            total += seconds;
            numpy_total += numpy.unwrap_or(0.0);
            let mut line = format!("  {name:<14} {seconds:>8.3} s");
            if let Some(numpy) = numpy {
                line += &format!(
                    "   numpy {numpy:>6.2} s   {}",
                    speed_against(numpy, seconds)
                );
            }
            line += &format!("   {:>7.3} dB", time.final_psnr_db);
            let cpu = on_cpu
                .as_ref()
                .and_then(|cpu| cpu.iter().find(|c| c.method == name));
            if let Some(cpu) = cpu {
                let difference = time.final_psnr_db - cpu.final_psnr_db;
                differences_db.push(difference.abs());
                line += &format!("  (cpu {:.3} dB, {difference:+.3})", cpu.final_psnr_db);
            }
            lines.push(line);
        }
        lines.push(if numpy_total > 0.0 {
            format!(
                "  {:<14} {total:>8.3} s   numpy {numpy_total:>6.2} s   {}",
                "all",
                speed_against(numpy_total, total)
            )
        } else {
            format!("  {:<14} {total:>8.3} s", "all")
        });
        // NaN (a method that never stepped) must show, so it is not folded away by a max.
        let largest_difference_db = differences_db.iter().copied().reduce(|a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        });
        if let Some(largest) = largest_difference_db {
            lines.push(format!(
                "  final PSNR against the cpu backend: largest difference {largest:.3} dB{}",
                if largest <= 0.05 {
                    " (within 0.05 dB)"
                } else {
                    "  (over 0.05 dB!)"
                }
            ));
        }
        lines.push(
            "  (trajectory and cumulative share one unrolled reservoir: its states and \
             diagonal Gram blocks are counted once, under trajectory)"
                .to_owned(),
        );
    }
    lines
}

/// The numpy baseline at the suite's `sizes`, measured now with `python`; its product rates
/// are reported at once, or why it was not measured.
fn numpy_baseline(python: &str, sizes: &[usize], report: &Report) -> Option<NumpyBaseline> {
    let sizes: Vec<usize> = sizes.iter().copied().filter(|&s| s > 0).collect();
    if sizes.is_empty() {
        return None;
    }
    eprintln!(
        "measuring the numpy baseline with {python} at {}…",
        sizes
            .iter()
            .map(|s| format!("{s}²"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    match crate::bench_baseline::numpy(python, &sizes) {
        Ok(numpy) => {
            report.lines([format!(
                "numpy {} ({python}), measured in this run:",
                numpy.numpy
            )]);
            report.lines(numpy.operation_lines());
            Some(numpy)
        }
        Err(reason) => {
            report.lines([format!(
                "numpy baseline not measured: {reason}; the suite's times stand alone"
            )]);
            None
        }
    }
}

/// Where the bench's lines go as soon as each part is measured, so a long bench shows its
/// figures as it goes and one stopped early (a time limit on a lent GPU) keeps what it had:
/// the table on standard output, or with `--json` the lines on standard error and the records,
/// gathered, printed as one JSON list at the end.
struct Report {
    json: bool,
    records: Vec<serde_json::Value>,
    header_printed: bool,
}

impl Report {
    fn lines(&self, lines: impl IntoIterator<Item = String>) {
        for line in lines {
            if self.json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    }

    fn operations(&mut self, records: &[Record]) -> anyhow::Result<()> {
        if self.json {
            for record in records {
                self.records.push(serde_json::to_value(record)?);
            }
            return Ok(());
        }
        if !self.header_printed {
            println!(
                "{:<14} {:<16} {:>7} {:>6} {:>10} {:>12}",
                "backend", "op", "n", "width", "ms", "rate"
            );
            self.header_printed = true;
        }
        for r in records {
            let rate = match (r.gflops, r.gigabytes_per_second) {
                (Some(g), _) => format!("{g:.1} GFLOP/s"),
                (None, Some(b)) => format!("{b:.1} GB/s"),
                _ => String::new(),
            };
            println!(
                "{:<14} {:<16} {:>7} {:>6} {:>10.3} {:>12}",
                r.backend, r.op, r.n, r.width, r.ms, rate
            );
        }
        Ok(())
    }
}

pub fn run(args: &BenchArgs, choice: BackendChoice) -> anyhow::Result<()> {
    if args.wavelet_only {
        for backend in backends(choice)? {
            let backend = backend.as_ref();
            let with_memory = cooperative_fragment(backend).is_none();
            for line in crate::bench_wavelet::lines(backend, args.repeats.max(5), with_memory) {
                println!("{line}");
            }
        }
        return Ok(());
    }
    let mut report = Report {
        json: args.json,
        records: Vec::new(),
        header_printed: false,
    };
    // The baselines' Python, unless "--python none".
    let python = (args.python != "none").then_some(args.python.as_str());
    let numpy = python.and_then(|python| numpy_baseline(python, &args.suite_sizes, &report));
    let mut pytorch = crate::bench_training::PytorchBaselines::new(python);
    for backend in backends(choice)? {
        let backend = backend.as_ref();
        eprintln!("measuring {} ({})…", label(backend), backend.adapter_name());
        let measured = measure_operations(backend, args.repeats);
        report.operations(&measured.records)?;
        report.lines(measured.skipped);
        // A backend whose dense layers are on cooperative matrices is measured beside its f32
        // twin for the operations and the steps of the methods with dense layers (the
        // trained ones and the wavelet operator); the reservoir suite (no dense layers), the
        // rollout's memory and the display path once, on the f32 one.
        let cooperative = cooperative_fragment(backend).is_some();
        if !cooperative {
            report.lines(suite_table_lines(
                backend,
                &args.suite_sizes,
                numpy.as_ref(),
            ));
        }
        // Training steps of the trained methods (issue 5), in the same table.
        report.lines(crate::bench_training::training_lines(
            backend,
            args.repeats.max(5),
            &mut pytorch,
        ));
        report.lines(crate::bench_wavelet::lines(
            backend,
            args.repeats.max(5),
            !cooperative,
        ));
        if !cooperative {
            report.lines(display_path_lines(backend, args.repeats.max(5)));
        }
    }
    if args.ui_frames > 0 {
        report.lines([ui_frame_time_line(args.ui_frames)]);
    }
    if args.scheduling {
        let (lines, records) = scheduling_lines()?;
        report.lines(lines);
        report.records.extend(records);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.records)?);
    }
    Ok(())
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;

    /// The suite's table on a GPU gives every method's final PSNR beside the CPU backend's
    /// and the largest difference, which is within the 0.05 dB target at a small size.
    #[test]
    fn the_suite_table_holds_the_gpu_to_the_cpu() {
        let Some(gpu) = crate::compute::gpu::test_backend() else {
            return;
        };
        let lines = suite_table_lines(&gpu, &[32], None);
        let text = lines.join("\n");
        for name in SUITE_METHODS {
            let line = lines
                .iter()
                .find(|line| line.trim_start().starts_with(name))
                .unwrap_or_else(|| panic!("no line for {name} in\n{text}"));
            assert!(line.contains(" dB  (cpu "), "{name}: {line}");
        }
        assert!(
            text.contains("largest difference") && text.contains("(within 0.05 dB)"),
            "{text}"
        );
    }
}
