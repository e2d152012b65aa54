//! The reservoir suite against the reference table (numpy float64 on chelsea_128.png, seed 42)
//! and the GPU backend against the CPU backend.

use inrlab::compute::Backend;
use inrlab::compute::cpu::CpuBackend;
use inrlab::methods::{self, ParamValues};
use inrlab::rng::{NormalSource, NumpyRandomState, RngKind};
use inrlab::runner::run_to_completion;
use inrlab::target::{Fit, Target, decode_bytes};
use serde_json::Value;

const TOLERANCE_DB: f64 = 0.05;
/// The methods of the reservoir notebook (the trained networks have their own tests).
const RESERVOIR_SUITE: [&str; 5] = [
    "trajectory",
    "cumulative",
    "refine",
    "multiscale",
    "fourier-ridge",
];

fn reference() -> Value {
    serde_json::from_str(include_str!("data/chelsea_128.json")).unwrap()
}

/// The reference's exact pixels (PIL's Lanczos), used as is: no resampling at 128.
fn chelsea(size: usize) -> Target {
    let image = decode_bytes(include_bytes!("data/chelsea_128.png"), "chelsea_128.png").unwrap();
    Target::from_image("chelsea_128.png", &image.image, size, Fit::Stretch).unwrap()
}

fn psnrs(method: &str, target: &Target, backend: &dyn Backend) -> Vec<f64> {
    let info = methods::find(method).unwrap();
    run_to_completion(
        info,
        target,
        backend,
        RngKind::Numpy,
        &ParamValues::new(),
        false,
    )
    .unwrap()
    .iter()
    .map(|r| r.report.psnr_db)
    .collect()
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// Expected PSNRs of each method, in step order, from the reference table.
fn expected(method: &str) -> Vec<f64> {
    let r = reference();
    match method {
        "trajectory" => numbers(&r["trajectory_psnr_per_step"]),
        "cumulative" => ["1", "2", "3", "5", "10"]
            .iter()
            .map(|k| r["cumulative_psnr_per_k"][k].as_f64().unwrap())
            .collect(),
        "refine" => numbers(&r["refine_psnr_per_iteration"]),
        "multiscale" => numbers(&r["multiscale_psnr_per_scale"]),
        "fourier-ridge" => vec![r["fourier_ridge_psnr"].as_f64().unwrap()],
        other => panic!("no reference for {other}"),
    }
}

fn assert_close(method: &str, got: &[f64], want: &[f64], tolerance: f64) {
    assert_eq!(got.len(), want.len(), "{method}: step count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tolerance,
            "{method} step {}: {g:.4} dB, expected {w:.4} ± {tolerance} (all: {got:.4?})",
            i + 1
        );
    }
}

#[test]
fn numpy_generator_reproduces_the_reference_draws() {
    let data: Value = serde_json::from_str(include_str!("data/reference_weights.json")).unwrap();
    for reservoir in data["reservoirs"].as_array().unwrap() {
        let seed = reservoir["seed"].as_u64().unwrap();
        let input_dim = reservoir["input_dim"].as_u64().unwrap() as usize;
        let mut rng = NumpyRandomState::new(seed as u32);
        let w_in = rng.standard_normals(input_dim * 256);
        let w_hh = rng.standard_normals(256 * 256);
        let b = rng.standard_normals(256);
        let check = |name: &str, draws: &[f64], scale: f64, relative: f64| {
            for pair in reservoir[name].as_array().unwrap() {
                let index = pair[0].as_u64().unwrap() as usize;
                let want = pair[1].as_f64().unwrap();
                let got = draws[index] * scale;
                assert!(
                    (got - want).abs() <= relative * want.abs(),
                    "{} {name}[{index}]: {got:e} vs {want:e}",
                    reservoir["name"]
                );
            }
        };
        // Input and bias scales are exact in binary floating point: bit-for-bit equality.
        check("w_in", &w_in, 0.5, 0.0);
        check("b", &b, 0.1, 0.0);
        // W_hh is scaled by ρ / max|eig|; the eigen solvers differ in the last bits.
        let rho = reservoir["spectral_radius"].as_f64().unwrap();
        let radius = inrlab::linalg::spectral_radius(&w_hh, 256);
        check("w_hh", &w_hh, rho / radius, 1e-12);
    }
    let fourier = &data["fourier_B"];
    let draws = NumpyRandomState::new(42).standard_normals(512);
    for pair in fourier["values"].as_array().unwrap() {
        let index = pair[0].as_u64().unwrap() as usize;
        assert_eq!(draws[index] * 10.0, pair[1].as_f64().unwrap());
    }
}

#[test]
fn reference_target_is_used_without_resampling() {
    let data: Value = serde_json::from_str(include_str!("data/reference_weights.json")).unwrap();
    let sum: f64 = chelsea(128).pixels.iter().map(|&v| v as f64).sum();
    assert!(
        (sum - data["Y_sum"].as_f64().unwrap()).abs() < 1e-2,
        "{sum}"
    );
}

#[test]
fn cpu_backend_matches_the_reference_table() {
    let target = chelsea(128);
    let backend = CpuBackend::new();
    for method in RESERVOIR_SUITE {
        let got = psnrs(method, &target, &backend);
        assert_close(method, &got, &expected(method), TOLERANCE_DB);
    }
}

#[test]
fn other_images_and_sizes_give_sane_fits() {
    // Not tuned to one image: the built-in sample (another crop of the cat, stretched) at 48²
    // and a synthetic pattern; every method must improve on a flat grey guess and stay finite.
    let backend = CpuBackend::new();
    let mut pattern = vec![0.0f32; 40 * 40 * 3];
    for (i, px) in pattern.chunks_mut(3).enumerate() {
        let (r, c) = ((i / 40) as f32, (i % 40) as f32);
        px[0] = 0.5 + 0.5 * (r / 3.0).sin();
        px[1] = (c / 40.0).powi(2);
        px[2] = if (r as i32 / 8 + c as i32 / 8) % 2 == 0 {
            0.9
        } else {
            0.1
        };
    }
    let synthetic = Target {
        name: "pattern".into(),
        size: 40,
        pixels: pattern,
        observation: None,
    };
    for target in [Target::sample(48, Fit::CenterCrop).unwrap(), synthetic] {
        let mean = target.pixels.iter().sum::<f32>() / target.pixels.len() as f32;
        let flat_mse = target
            .pixels
            .iter()
            .map(|&v| ((v - mean) as f64).powi(2))
            .sum::<f64>()
            / target.pixels.len() as f64;
        let flat_psnr = -10.0 * flat_mse.log10();
        for method in RESERVOIR_SUITE {
            let got = psnrs(method, &target, &backend);
            let last = *got.last().unwrap();
            assert!(
                last.is_finite() && last > flat_psnr + 3.0,
                "{method} on {}: {last:.2} dB vs flat {flat_psnr:.2} dB",
                target.name
            );
        }
    }
}

// ----- GPU backend (lavapipe in CI, ~1 GFLOP/s: reference sizes only where the issue asks) -----

#[test]
fn gpu_backend_matches_the_reference_table_at_128() {
    let Some(gpu) = inrlab::compute::gpu::test_backend() else {
        return;
    };
    let target = chelsea(128);
    for method in ["trajectory", "fourier-ridge"] {
        let got = psnrs(method, &target, &gpu);
        assert_close(method, &got, &expected(method), TOLERANCE_DB);
    }
}

/// Every method of the suite gives `gpu` the CPU backend's curve at 64².
fn assert_suite_matches_the_cpu_at_64(gpu: &dyn Backend) {
    let cpu = CpuBackend::new();
    let target = chelsea(64);
    for method in RESERVOIR_SUITE {
        let on_cpu = psnrs(method, &target, &cpu);
        let on_gpu = psnrs(method, &target, gpu);
        assert_close(method, &on_gpu, &on_cpu, TOLERANCE_DB);
    }
}

#[test]
fn gpu_backend_matches_the_cpu_backend_at_64() {
    let Some(gpu) = inrlab::compute::gpu::test_backend() else {
        return;
    };
    assert_suite_matches_the_cpu_at_64(&gpu);
}

/// On hardware adapters the ridge Gram products run on the float-float kernel (lavapipe takes
/// the host path): forced onto the kernel, the suite still gives the CPU backend's numbers.
#[test]
fn the_gram_kernel_gives_the_suite_the_cpu_backends_numbers_at_64() {
    let Some(gpu) = inrlab::compute::gpu::test_backend() else {
        return;
    };
    assert_suite_matches_the_cpu_at_64(&gpu.with_gram_kernel_everywhere());
}
