//! Every method at the ends of its parameter ranges, at every working size the window offers:
//! the memory estimate admits the configuration or refuses it in one clear line, and what it
//! admits and is quick to run builds and steps on the CPU backend without panicking.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use inrlab::compute::cpu::CpuBackend;
use inrlab::compute::{Backend, CancelToken};
use inrlab::methods::{self, MethodCache, MethodInfo, ParamValues, Setup};
use inrlab::rng::RngKind;
use inrlab::target::{Fit, Target};

/// The working sizes the window offers, and 32² (the command line and the tests use it).
const SIZES: [usize; 5] = [32, 64, 128, 256, 512];
/// Configurations estimated to take more floating-point work than this to build and step once
/// are only estimated: on two cores this is a few tenths of a second.
const QUICK_FLOPS: f64 = 3e9;
/// Configurations holding more than this build one at a time, so that the suite never needs
/// more memory than the machine has.
const LARGE_BYTES: u64 = 1 << 30;
static LARGE_BUILDS: Mutex<()> = Mutex::new(());

/// The defaults, then each numeric parameter at its minimum and at its maximum.
fn configurations(info: &MethodInfo) -> Vec<(String, ParamValues)> {
    let mut all = vec![("defaults".to_owned(), ParamValues::new())];
    for spec in info.params.iter().filter(|spec| !spec.is_choice()) {
        for value in [spec.min, spec.max] {
            let mut values = ParamValues::new();
            values.set(spec.name, value);
            all.push((format!("--{} {value}", spec.name), values));
        }
    }
    all
}

fn check_at_limits(name: &str) {
    let info = methods::find(name).unwrap();
    let backend = CpuBackend::new();
    let budget = backend.memory_budget();
    let targets: Vec<Target> = SIZES
        .iter()
        .map(|&size| Target::sample(size, Fit::Stretch).unwrap())
        .collect();
    let mut built = 0;
    for (label, values) in configurations(info) {
        for target in &targets {
            let what = format!("{name} {label} at {}²", target.size);
            let checked = catch_unwind(AssertUnwindSafe(|| {
                info.check_memory(&values, target.size, &budget)
            }));
            let estimate = match checked {
                Err(_) => panic!("{what}: the memory estimate panicked"),
                Ok(Err(refusal)) => {
                    let message = format!("{refusal:#}");
                    assert!(
                        message.starts_with(name) && message.contains("GB"),
                        "{what}: unclear refusal '{message}'"
                    );
                    assert!(!message.contains('\n'), "{what}: '{message}' is one line");
                    continue;
                }
                Ok(Ok(estimate)) => estimate,
            };
            if estimate.first_step_flops > QUICK_FLOPS {
                continue;
            }
            let _one_at_a_time = (estimate.host_need(&budget) > LARGE_BYTES)
                .then(|| LARGE_BUILDS.lock().unwrap_or_else(|e| e.into_inner()));
            let outcome = catch_unwind(AssertUnwindSafe(|| -> anyhow::Result<_> {
                let mut method = info.build(&Setup {
                    target,
                    backend: &backend,
                    rng: RngKind::Numpy,
                    params: &values,
                    cache: &MethodCache::blocking(),
                    cancel: &CancelToken::new(),
                    folder: None,
                })?;
                method.step(&backend)
            }));
            match outcome {
                Err(_) => panic!("{what}: building or stepping panicked"),
                Ok(Err(error)) => panic!("{what}: admitted but failed: {error:#}"),
                Ok(Ok(report)) => assert_eq!(report.step, 1, "{what}"),
            }
            built += 1;
        }
    }
    assert!(
        built > 0,
        "{name}: no configuration was quick enough to build"
    );
}

#[test]
fn trajectory_at_its_limits() {
    check_at_limits("trajectory");
}

#[test]
fn cumulative_at_its_limits() {
    check_at_limits("cumulative");
}

#[test]
fn refine_at_its_limits() {
    check_at_limits("refine");
}

#[test]
fn multiscale_at_its_limits() {
    check_at_limits("multiscale");
}

#[test]
fn fourier_ridge_at_its_limits() {
    check_at_limits("fourier-ridge");
}

#[test]
fn fourier_mlp_at_its_limits() {
    check_at_limits("fourier-mlp");
}

#[test]
fn coord_mlp_at_its_limits() {
    check_at_limits("coord-mlp");
}

#[test]
fn learned_refine_at_its_limits() {
    check_at_limits("learned-refine");
}

#[test]
fn wavelet_at_its_limits() {
    check_at_limits("wavelet");
}

#[test]
fn steered_kernel_at_its_limits() {
    check_at_limits("steered-kernel");
}

/// Every method is covered above.
#[test]
fn every_method_is_checked() {
    let source = include_str!("limits.rs");
    for info in methods::registry() {
        assert!(
            source.contains(&format!("check_at_limits(\"{}\")", info.name)),
            "{} has no limits test",
            info.name
        );
    }
}
