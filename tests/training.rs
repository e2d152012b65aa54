//! The trained methods: gradients against finite differences, PSNR curves against the PyTorch
//! reference (chelsea_128.json), the GPU backend against the CPU backend, and divergence.

use inrlab::compute::cpu::CpuBackend;
use inrlab::compute::{Backend, CancelToken, Tensor};
use inrlab::methods::StepReport;
use inrlab::methods::learned_refine::LearnedRefine;
use inrlab::methods::training::{Mlp, mlp_widths};
use inrlab::methods::{self, MethodCache, ParamValues, Setup};
use inrlab::rng::{NumpyRandomState, RngKind};
use inrlab::runner::{DivergenceMonitor, run_to_completion};
use inrlab::target::{Fit, Target, decode_bytes};
use serde_json::Value;

fn chelsea(size: usize) -> Target {
    let image = decode_bytes(include_bytes!("data/chelsea_128.png"), "chelsea_128.png").unwrap();
    Target::from_image("chelsea_128.png", &image.image, size, Fit::Stretch).unwrap()
}

fn params(pairs: &[(&str, f64)]) -> ParamValues {
    let mut values = ParamValues::new();
    for &(name, value) in pairs {
        values.set(name, value);
    }
    values
}

fn psnr_curve(
    method: &str,
    target: &Target,
    backend: &dyn Backend,
    values: &ParamValues,
) -> Vec<f64> {
    let info = methods::find(method).unwrap();
    run_to_completion(info, target, backend, RngKind::Numpy, values, false)
        .unwrap()
        .iter()
        .map(|r| r.report.psnr_db)
        .collect()
}

/// Checks analytic gradients against central differences on a sample of elements.
fn check_gradient(
    name: &str,
    analytic: &[f32],
    mut loss_at: impl FnMut(usize, f32) -> f64,
    delta: f32,
) {
    let largest = analytic.iter().fold(0.0f32, |m, g| m.max(g.abs())) as f64;
    assert!(largest > 0.0, "{name}: all gradients are zero");
    let stride = (analytic.len() / 12).max(1);
    for index in (0..analytic.len()).step_by(stride) {
        let numeric = (loss_at(index, delta) - loss_at(index, -delta)) / (2.0 * delta as f64);
        let want = analytic[index] as f64;
        assert!(
            (numeric - want).abs() <= 3e-3 * largest + 3e-2 * want.abs(),
            "{name}[{index}]: analytic {want:e}, finite difference {numeric:e} (largest {largest:e})"
        );
    }
}

fn value_mut<'a>(network: &'a mut Mlp, layer: usize, part: &str) -> &'a mut Tensor {
    let dense = &mut network.layers[layer];
    if part == "weights" {
        &mut dense.weights.value
    } else {
        &mut dense.bias.value
    }
}

fn grad_of<'a>(network: &'a Mlp, layer: usize, part: &str) -> &'a Tensor {
    let dense = &network.layers[layer];
    if part == "weights" {
        &dense.weights.grad
    } else {
        &dense.bias.grad
    }
}

#[test]
fn mlp_gradients_match_finite_differences_in_every_layer() {
    let backend = CpuBackend::new();
    let n = 24;
    let mut rng = NumpyRandomState::new(3);
    let inputs: Vec<f32> = (0..n * 6)
        .map(|_| rng.uniform() as f32 * 2.0 - 1.0)
        .collect();
    let targets: Vec<f32> = (0..n * 3).map(|_| rng.uniform() as f32).collect();
    let input = backend.upload(n, 6, &inputs).unwrap();
    let target = backend.upload(n, 3, &targets).unwrap();
    let mut network = Mlp::new(&backend, &mut rng, &mlp_widths(6, &[7, 5])).unwrap();
    let mut buffers = network.buffers(&backend, n, true).unwrap();
    network.forward(&backend, &input, &mut buffers);
    let (prediction, grad) = buffers.prediction_and_grad();
    backend.mse_grad(prediction, &target, 1.0 / (3 * n) as f32, grad);
    network.backward(&backend, &input, &mut buffers);
    let mut probe = network.buffers(&backend, n, false).unwrap();
    for layer in 0..network.layers.len() {
        for part in ["weights", "bias"] {
            let analytic = backend.download(grad_of(&network, layer, part));
            let original = backend.download(value_mut(&mut network, layer, part));
            check_gradient(
                &format!("layer {layer} {part}"),
                &analytic,
                |index, delta| {
                    let mut nudged = original.clone();
                    nudged[index] += delta;
                    backend.write(value_mut(&mut network, layer, part), &nudged);
                    network.forward(&backend, &input, &mut probe);
                    let loss = backend.mse(probe.prediction(), &target);
                    backend.write(value_mut(&mut network, layer, part), &original);
                    loss
                },
                1e-3,
            );
        }
    }
}

#[test]
fn learned_refine_gradients_match_finite_differences_through_every_iteration() {
    let backend = CpuBackend::new();
    let target = chelsea(6);
    let values = params(&[("width", 5.0), ("iterations", 3.0)]);
    let mut method = LearnedRefine::new(&Setup {
        target: &target,
        backend: &backend,
        rng: RngKind::Numpy,
        params: &values,
        cache: &MethodCache::blocking(),
        cancel: &CancelToken::new(),
        folder: None,
    })
    .unwrap();
    let (_, gradients) = method.gradients(&backend);
    for (name, analytic) in gradients {
        check_gradient(
            name,
            &analytic,
            |index, delta| method.loss_with_nudge(&backend, name, index, delta),
            1e-3,
        );
    }
}

/// The reference's PSNR at `step` for one PyTorch configuration.
fn reference_psnr(encoding: &str, optimizer: &str, step: usize) -> f64 {
    let reference: Value = serde_json::from_str(include_str!("data/chelsea_128.json")).unwrap();
    let runs = reference["fourier_mlp_pytorch"].as_array().unwrap();
    let run = runs
        .iter()
        .find(|r| r["encoding"] == encoding && r["optimizer"] == optimizer)
        .unwrap();
    run["psnr_at_step"][step.to_string()].as_f64().unwrap()
}

/// Full batch at 128², the reference recipe; our initial weights differ, so within 1.5 dB.
#[test]
fn fourier_and_raw_mlps_follow_the_pytorch_curves() {
    let backend = CpuBackend::new();
    let target = chelsea(128);
    for (method, encoding, steps, checkpoints) in [
        ("fourier-mlp", "fourier", 500, &[50usize, 100, 200, 500][..]),
        ("coord-mlp", "none", 200, &[50, 100, 200][..]),
    ] {
        for (optimizer, index) in [("sgd", 1.0), ("adam", 0.0)] {
            let values = params(&[("optimizer", index), ("steps", steps as f64)]);
            let curve = psnr_curve(method, &target, &backend, &values);
            assert_eq!(curve.len(), steps);
            for &step in checkpoints {
                let want = reference_psnr(encoding, optimizer, step);
                let got = curve[step - 1];
                eprintln!("{method} {optimizer} step {step}: {got:.2} dB (PyTorch {want:.2})");
                assert!(
                    (got - want).abs() <= 1.5,
                    "{method} {optimizer} step {step}: {got:.2} dB, PyTorch {want:.2} ± 1.5"
                );
            }
            if encoding == "none" {
                assert!(
                    curve[199] < 20.0,
                    "raw coordinates stay blurry: {:.2}",
                    curve[199]
                );
            }
        }
    }
}

/// A tiny Fourier MLP, for the GPU checks (lavapipe runs ~1 GFLOP/s).
fn small_fourier(optimizer: f64, steps: usize) -> ParamValues {
    params(&[
        ("frequencies", 16.0),
        ("width-1", 32.0),
        ("width-2", 32.0),
        ("optimizer", optimizer),
        ("steps", steps as f64),
    ])
}

fn run_images(
    method: &str,
    target: &Target,
    backend: &dyn Backend,
    values: &ParamValues,
) -> (Vec<f64>, Vec<f32>) {
    let info = methods::find(method).unwrap();
    let records = run_to_completion(info, target, backend, RngKind::Numpy, values, false).unwrap();
    let losses = records.iter().map(|r| r.report.loss.unwrap()).collect();
    let image = records.last().unwrap().image.clone().unwrap();
    (losses, image)
}

fn assert_relative(what: &str, got: &[f32], want: &[f32], tolerance: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (*g as f64, *w as f64);
        assert!(
            (g - w).abs() <= tolerance * w.abs().max(1e-3),
            "{what}[{i}]: GPU {g:e}, CPU {w:e}"
        );
    }
}

#[test]
fn gpu_training_step_agrees_with_cpu() {
    let Some(gpu) = inrlab::compute::gpu::test_backend() else {
        return;
    };
    let cpu = CpuBackend::new();
    let target = chelsea(16);
    for optimizer in [0.0, 1.0] {
        let values = small_fourier(optimizer, 1);
        let (cpu_loss, cpu_image) = run_images("fourier-mlp", &target, &cpu, &values);
        let (gpu_loss, gpu_image) = run_images("fourier-mlp", &target, &gpu, &values);
        assert!((gpu_loss[0] - cpu_loss[0]).abs() <= 1e-4 * cpu_loss[0]);
        assert_relative("fourier-mlp image", &gpu_image, &cpu_image, 1e-4);
    }
    let values = params(&[("width", 8.0), ("iterations", 3.0), ("steps", 1.0)]);
    let (cpu_loss, cpu_image) = run_images("learned-refine", &target, &cpu, &values);
    let (gpu_loss, gpu_image) = run_images("learned-refine", &target, &gpu, &values);
    assert!((gpu_loss[0] - cpu_loss[0]).abs() <= 1e-4 * cpu_loss[0]);
    assert_relative("learned-refine image", &gpu_image, &cpu_image, 1e-4);
}

/// Asserts `gpu` (the `what` path) within `tolerance_db` of `cpu` at every step, and that the
/// CPU curve gains more than `gain_db` over the run (so the comparison is of a run that trains).
fn assert_follows(what: &str, gpu: &[f64], cpu: &[f64], tolerance_db: f64, gain_db: f64) {
    for (step, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        assert!(
            (g - c).abs() <= tolerance_db,
            "step {}: {what} {g:.3} dB, CPU {c:.3} dB",
            step + 1
        );
    }
    assert!(cpu[cpu.len() - 1] > cpu[0] + gain_db, "it trains: {cpu:?}");
}

#[test]
fn gpu_follows_the_cpu_curve_for_100_steps() {
    let Some(gpu) = inrlab::compute::gpu::test_backend() else {
        return;
    };
    let cpu = CpuBackend::new();
    let target = chelsea(32);
    let values = small_fourier(0.0, 100);
    let cpu_curve = psnr_curve("fourier-mlp", &target, &cpu, &values);
    let gpu_curve = psnr_curve("fourier-mlp", &target, &gpu, &values);
    assert_eq!((gpu_curve.len(), cpu_curve.len()), (100, 100));
    assert_follows("GPU", &gpu_curve, &cpu_curve, 0.1, 3.0);
}

/// On cooperative matrices (f16 operands, f32 sums; the hidden layers are 128 wide so their
/// products take them) a Fourier MLP trains along the f32 curve: within 0.3 dB of the CPU
/// backend at every one of 100 Adam steps.
#[test]
fn cooperative_training_follows_the_f32_curve_within_a_third_of_a_db() {
    let Some(gpu) = inrlab::compute::gpu::test_cooperative_backend() else {
        return;
    };
    let cpu = CpuBackend::new();
    let target = chelsea(32);
    let values = params(&[
        ("frequencies", 32.0),
        ("width-1", 128.0),
        ("width-2", 128.0),
        ("optimizer", 0.0),
        ("steps", 100.0),
    ]);
    let cpu_curve = psnr_curve("fourier-mlp", &target, &cpu, &values);
    let gpu_curve = psnr_curve("fourier-mlp", &target, &gpu, &values);
    let worst = gpu_curve
        .iter()
        .zip(&cpu_curve)
        .map(|(g, c)| (g - c).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "cooperative Fourier MLP, step 100: {:.2} dB (CPU {:.2}); largest gap {worst:.3} dB",
        gpu_curve[99], cpu_curve[99]
    );
    assert_eq!((gpu_curve.len(), cpu_curve.len()), (100, 100));
    assert_follows("cooperative", &gpu_curve, &cpu_curve, 0.3, 5.0);
}

/// A full-batch training step on the GPU is one submission's worth of recorded work with one
/// wait at its end (the PSNR and saturation scalars together), and after the first steps it
/// makes no bind groups: they are kept for the tensors it reuses.
#[test]
fn a_gpu_training_step_waits_once_and_reuses_its_bind_groups() {
    let Some(gpu) = inrlab::compute::gpu::test_backend() else {
        return;
    };
    let target = chelsea(32);
    for optimizer in [0.0, 1.0] {
        let values = small_fourier(optimizer, 10);
        let mut method = methods::find("fourier-mlp")
            .unwrap()
            .build(&Setup {
                target: &target,
                backend: &gpu,
                rng: RngKind::Numpy,
                params: &values,
                cache: &MethodCache::blocking(),
                cancel: &CancelToken::new(),
                folder: None,
            })
            .unwrap();
        for _ in 0..2 {
            method.step(&gpu).unwrap();
        }
        let before = gpu.counters();
        let report = method.step(&gpu).unwrap();
        let after = gpu.counters();
        assert!(report.psnr_db.is_finite() && report.saturation.is_some());
        assert_eq!(
            after.readbacks - before.readbacks,
            1,
            "optimizer {optimizer}: host waits in one step"
        );
        assert_eq!(
            after.bind_groups_created, before.bind_groups_created,
            "optimizer {optimizer}: bind groups made in a later step"
        );
    }
}

fn report(step: usize, psnr_db: f64, loss: Option<f64>, saturation: Option<f64>) -> StepReport {
    StepReport {
        step,
        label: format!("step {step}"),
        psnr_db,
        loss,
        saturation,
        levels: Vec::new(),
        sparse: None,
    }
}

/// A loss or PSNR that stops being finite is divergence at once; a loss far above its best, or
/// an output pinned at 0 and 1 with a poor fit, is divergence once it persists for 20 steps.
#[test]
fn the_monitor_flags_what_persists_and_not_a_spike() {
    let mut monitor = DivergenceMonitor::new();
    assert!(
        monitor
            .observe(&report(1, 20.0, Some(0.01), None))
            .is_none()
    );
    assert!(monitor.observe(&report(2, 20.0, None, None)).is_none());
    assert!(
        monitor
            .observe(&report(3, 20.0, Some(f64::NAN), None))
            .is_some()
    );
    assert!(
        DivergenceMonitor::new()
            .observe(&report(1, 20.0, Some(f64::INFINITY), None))
            .is_some()
    );
    assert!(
        DivergenceMonitor::new()
            .observe(&report(1, f64::NAN, Some(0.01), None))
            .is_some()
    );
    // A spike that recovers within 20 steps is not divergence; one that stays is.
    let mut monitor = DivergenceMonitor::new();
    let mut step = 0;
    let mut feed = |monitor: &mut DivergenceMonitor, loss: f64, saturation: f64| {
        step += 1;
        monitor.observe(&report(step, 8.0, Some(loss), Some(saturation)))
    };
    assert!(feed(&mut monitor, 0.01, 0.3).is_none());
    for _ in 0..19 {
        assert!(feed(&mut monitor, 0.5, 0.3).is_none());
    }
    assert!(feed(&mut monitor, 0.01, 0.3).is_none());
    let flagged = (0..20).find_map(|_| feed(&mut monitor, 0.5, 0.3));
    assert!(flagged.unwrap().contains("best"));
    // Pinned outputs with a poor fit, even at a loss that never improved on its first.
    let mut monitor = DivergenceMonitor::new();
    let flagged =
        (1..=20).find_map(|step| monitor.observe(&report(step, 7.5, Some(0.18), Some(0.99))));
    assert!(flagged.unwrap().contains("pinned"));
    // A black-and-white image fitted well is saturated too, and healthy.
    let mut monitor = DivergenceMonitor::new();
    assert!((1..=100).all(|step| {
        monitor
            .observe(&report(step, 25.0, Some(0.003), Some(0.99)))
            .is_none()
    }));
}

/// The seed notebook's SGD at a learning rate 1000× its usual one blows the network into
/// saturation: the loss stays finite, and the run must still end as diverged.
#[test]
fn a_huge_learning_rate_is_reported_as_divergence() {
    let backend = CpuBackend::new();
    let target = chelsea(32);
    let info = methods::find("fourier-mlp").unwrap();
    let values = params(&[("optimizer", 1.0), ("lr", 1000.0), ("steps", 200.0)]);
    let error = run_to_completion(info, &target, &backend, RngKind::Numpy, &values, false)
        .err()
        .expect("a learning rate of 1000 diverges");
    let message = format!("{error:#}");
    assert!(message.contains("diverged"), "{message}");
}

/// Healthy runs at the defaults (both optimizers, and learned refinement) are never flagged.
#[test]
fn healthy_default_runs_are_not_flagged() {
    let backend = CpuBackend::new();
    let target = chelsea(32);
    for (method, values) in [
        ("fourier-mlp", params(&[("steps", 300.0)])),
        (
            "fourier-mlp",
            params(&[("optimizer", 1.0), ("steps", 300.0)]),
        ),
        ("coord-mlp", params(&[("steps", 300.0)])),
        (
            "learned-refine",
            params(&[("width", 32.0), ("steps", 100.0)]),
        ),
    ] {
        let info = methods::find(method).unwrap();
        let outcome = run_to_completion(info, &target, &backend, RngKind::Numpy, &values, false);
        assert!(outcome.is_ok(), "{method}: {:#}", outcome.err().unwrap());
    }
}

#[test]
fn mini_batch_and_jitter_train_and_learned_refine_keeps_its_iterates() {
    let backend = CpuBackend::new();
    let target = chelsea(32);
    for extra in [("batch", 256.0), ("jitter", 1.0)] {
        let values = params(&[("steps", 60.0), extra]);
        let curve = psnr_curve("fourier-mlp", &target, &backend, &values);
        assert!(curve[59] > curve[0] + 2.0, "{extra:?}: {curve:?}");
    }
    let info = methods::find("learned-refine").unwrap();
    let values = params(&[("width", 16.0), ("steps", 3.0)]);
    let outcome =
        inrlab::runner::run_method(info, &target, &backend, RngKind::Numpy, &values, true).unwrap();
    let iterates = outcome
        .iterates
        .expect("learned-refine exposes its iterations");
    assert_eq!(iterates.len(), 5);
    assert!(iterates.iter().all(|image| image.len() == 32 * 32 * 3));
}
