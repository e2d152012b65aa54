//! Every registered method is a tested method: each entry of `methods::registry()` is built on
//! both backends at 32², stepped twice, and must report a finite PSNR, with the GPU agreeing
//! with the CPU, and a training state exactly when its entry says it is resumable. A new method
//! gets this test by its registry line alone.

use inrlab::compute::cancel::is_cancelled_error;
use inrlab::compute::cpu::CpuBackend;
use inrlab::compute::{Backend, CancelToken};
use inrlab::methods::{self, Method, MethodCache, MethodInfo, ParamValues, Setup};
use inrlab::rng::RngKind;
use inrlab::session::{AdvanceResult, Session};
use inrlab::target::{Fit, Target};

const SIZE: usize = 32;

/// (PSNR of each of two steps, the image after them).
fn two_steps(info: &'static MethodInfo, backend: &dyn Backend) -> (Vec<f64>, Vec<f32>) {
    let mut session = Session::borrowing(backend, methods::MethodCache::blocking(), RngKind::Numpy);
    session.set_target(Target::sample(SIZE, Fit::Stretch).unwrap());
    session.set_selection(&[(info, ParamValues::new())]);
    let mut psnrs = Vec::new();
    while psnrs.len() < 2 && session.slot(0).is_runnable(None) {
        match session.advance(0, false).result {
            AdvanceResult::Stepped(report) => psnrs.push(report.psnr_db),
            AdvanceResult::Stopped(reason) => panic!("{}: {reason}", info.name),
            AdvanceResult::Waiting(what) => panic!("{} waits for {what}", info.name),
            AdvanceResult::Cancelled => panic!("{} was cancelled", info.name),
            AdvanceResult::Refit(_) => panic!("{} refits without a mask", info.name),
        }
    }
    let method = session.slot(0).method().expect("built");
    assert_eq!(method.steps_done(), psnrs.len());
    // The registry says which methods have a state to checkpoint.
    let state = method.training_state(backend);
    assert_eq!(state.is_some(), info.resumable, "{}", info.name);
    assert!(state.is_none_or(|s| s.step == psnrs.len()), "{}", info.name);
    (psnrs, method.image(backend))
}

#[test]
fn every_registered_method_builds_steps_and_agrees_across_backends() {
    let cpu = CpuBackend::new();
    let gpu = inrlab::compute::gpu::test_backend();
    assert!(!methods::registry().is_empty());
    for info in methods::registry() {
        let (psnrs, image) = two_steps(info, &cpu);
        assert!(!psnrs.is_empty(), "{} took no step", info.name);
        for psnr in &psnrs {
            assert!(
                psnr.is_finite() && *psnr > 5.0,
                "{}: PSNR {psnr}",
                info.name
            );
        }
        assert_eq!(image.len(), SIZE * SIZE * 3, "{}", info.name);
        let Some(gpu) = &gpu else { continue };
        let (gpu_psnrs, gpu_image) = two_steps(info, gpu);
        assert_eq!(psnrs.len(), gpu_psnrs.len(), "{}", info.name);
        for (c, g) in psnrs.iter().zip(&gpu_psnrs) {
            assert!(
                (c - g).abs() < 0.05,
                "{}: cpu {c:.3} dB, gpu {g:.3} dB",
                info.name
            );
        }
        let worst = image
            .iter()
            .zip(&gpu_image)
            .map(|(c, g)| (c.clamp(0.0, 1.0) - g.clamp(0.0, 1.0)).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 0.02, "{}: images differ by {worst}", info.name);
    }
}

fn build(
    info: &MethodInfo,
    target: &Target,
    backend: &dyn Backend,
    cancel: &CancelToken,
) -> Box<dyn Method> {
    info.build(&Setup {
        target,
        backend,
        rng: RngKind::Numpy,
        params: &ParamValues::new(),
        cache: &MethodCache::blocking(),
        cancel,
        folder: None,
    })
    .unwrap_or_else(|error| panic!("{}: {error:#}", info.name))
}

/// A step cancelled at any point where it checks its token leaves the method able to take the
/// same step again with the same result (the window's pause relies on it).
#[cfg(feature = "testing")]
#[test]
fn every_method_resumes_a_step_cancelled_anywhere_with_the_same_result() {
    let backend = CpuBackend::new();
    let target = Target::sample(16, Fit::Stretch).unwrap();
    for info in methods::registry() {
        let never = CancelToken::new();
        let mut reference = build(info, &target, &backend, &never);
        let steps = reference.total_steps().min(3);
        let expected: Vec<_> = (0..steps)
            .map(|_| reference.step(&backend).unwrap())
            .collect();
        let mut points = 0;
        for cut in 0.. {
            let token = CancelToken::new();
            let mut method = build(info, &target, &backend, &token);
            token.cancel_after_checks(cut);
            let mut reports = Vec::new();
            let mut cancelled = false;
            while reports.len() < steps {
                match method.step(&backend) {
                    Ok(report) => reports.push(report),
                    Err(error) if is_cancelled_error(&error) => {
                        assert!(!cancelled, "{}: cancelled twice at cut {cut}", info.name);
                        cancelled = true;
                        token.reset();
                    }
                    Err(error) => panic!("{}: {error:#}", info.name),
                }
            }
            assert_eq!(reports, expected, "{}: cancelled at check {cut}", info.name);
            if !cancelled {
                break; // every check point of the first steps has been tried
            }
            points += 1;
        }
        assert!(points > 0, "{} never checks its token", info.name);
    }
}
