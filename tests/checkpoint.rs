//! Checkpoints of the trained methods on the CPU backend: a run saved at step 100 and resumed
//! in a fresh method continues to exactly the reports of an uninterrupted run at steps
//! 101–200 (mini-batches, jitter, noise and a folder's order included), also when saved inside
//! a cancelled step; and a file that is cut short, random bytes, another method's or another
//! version's checkpoint, or one whose shapes differ is refused with a message and leaves the
//! method as it was built. Writes go to a temporary name and never replace a file unasked.

mod common;

use std::path::{Path, PathBuf};

use inrlab::checkpoint::{Checkpoint, HistoryStep};
use inrlab::compute::CancelToken;
use inrlab::compute::cpu::CpuBackend;
use inrlab::methods::{self, Method, MethodCache, ParamValues, Setup, StepReport};
use inrlab::output::Existing;
use inrlab::provenance::{ImageOrigin, Provenance};
use inrlab::rng::RngKind;
use inrlab::target::{Fit, Target};

const SIZE: usize = 32;

fn params(pairs: &[(&str, f64)]) -> ParamValues {
    let mut values = ParamValues::new();
    for &(name, value) in pairs {
        values.set(name, value);
    }
    values
}

/// One configuration of a trained method, on the sample or on a folder.
struct Case {
    method: &'static str,
    params: ParamValues,
    folder: Option<PathBuf>,
}

fn cases() -> Vec<Case> {
    let case = |method, pairs: &[(&str, f64)]| Case {
        method,
        params: params(pairs),
        folder: None,
    };
    let small_mlp = [
        ("frequencies", 16.0),
        ("width-1", 32.0),
        ("width-2", 32.0),
        ("steps", 200.0),
    ];
    let mut batched = small_mlp.to_vec();
    batched.extend([("batch", 256.0), ("jitter", 1.0), ("lr", 3e-3)]);
    let wavelet = [
        ("channels", 8.0),
        ("blocks", 2.0),
        ("frequencies", 4.0),
        ("noise-sigma", 0.1),
        ("steps", 200.0),
    ];
    vec![
        case("fourier-mlp", &small_mlp),
        // The mini-batch and jitter stream matters here.
        case("fourier-mlp", &batched),
        // SGD keeps a velocity instead of Adam's two moments; jitter on the full grid.
        case(
            "coord-mlp",
            &[
                ("width-1", 32.0),
                ("width-2", 32.0),
                ("optimizer", 1.0),
                ("jitter", 1.0),
                ("steps", 200.0),
            ],
        ),
        case(
            "learned-refine",
            &[("width", 16.0), ("iterations", 3.0), ("steps", 200.0)],
        ),
        // The training noise stream matters here.
        case("wavelet", &wavelet),
    ]
}

/// The wavelet operator on a folder: its image order and noise streams matter.
fn folder_case() -> Case {
    Case {
        method: "wavelet",
        params: params(&[
            ("channels", 8.0),
            ("blocks", 2.0),
            ("noise-sigma", 0.1),
            ("steps", 200.0),
        ]),
        folder: Some(common::make_folder("checkpoint-folder", 6)),
    }
}

struct Bench {
    backend: CpuBackend,
    target: Target,
    cache: MethodCache,
}

impl Bench {
    fn new() -> Self {
        Bench {
            backend: CpuBackend::new(),
            target: Target::sample(SIZE, Fit::Stretch).unwrap(),
            cache: MethodCache::blocking(),
        }
    }

    /// A fresh run of `case`, and the token its steps check.
    fn build(&self, case: &Case, params: &ParamValues) -> (Box<dyn Method>, CancelToken) {
        let cancel = CancelToken::new();
        let info = methods::find(case.method).unwrap();
        let setup = Setup {
            target: &self.target,
            backend: &self.backend,
            rng: RngKind::Numpy,
            params,
            cache: &self.cache,
            cancel: &cancel,
            folder: case.folder.as_deref(),
        };
        (info.build(&setup).unwrap(), cancel)
    }

    fn fresh(&self, case: &Case) -> Box<dyn Method> {
        self.build(case, &case.params).0
    }

    fn steps(&self, method: &mut dyn Method, count: usize) -> Vec<StepReport> {
        (0..count)
            .map(|_| method.step(&self.backend).unwrap())
            .collect()
    }

    /// The method's checkpoint, through a file and back.
    fn saved(&self, case: &Case, method: &dyn Method, dir: &Path) -> Checkpoint {
        let info = methods::find(case.method).unwrap();
        let mut provenance = Provenance::new(
            ImageOrigin::sample(),
            SIZE,
            Fit::Stretch,
            RngKind::Numpy,
            &self.backend,
            &[(info, &case.params)],
        )
        .unwrap();
        provenance.dataset = case.folder.clone();
        let state = method.training_state(&self.backend).unwrap();
        let history = (1..=state.step)
            .map(|step| HistoryStep {
                report: StepReport {
                    step,
                    label: format!("step {step}"),
                    psnr_db: 10.0,
                    loss: Some(0.5),
                    saturation: None,
                    levels: Vec::new(),
                    sparse: None,
                },
                seconds: step as f64,
            })
            .collect();
        let checkpoint = Checkpoint::new(provenance, state, history).unwrap();
        let path = dir.join(format!(
            "{}-{}.safetensors",
            case.method,
            method.steps_done()
        ));
        checkpoint.write(&path, Existing::Overwrite).unwrap();
        let read = Checkpoint::read(&path).unwrap();
        assert_eq!(
            read,
            checkpoint,
            "{} does not read back as written",
            path.display()
        );
        read
    }

    /// `case` trained for `steps` steps, and its checkpoint through a file in `dir`.
    fn trained(&self, case: &Case, steps: usize, dir: &Path) -> Checkpoint {
        let mut method = self.fresh(case);
        self.steps(method.as_mut(), steps);
        self.saved(case, method.as_ref(), dir)
    }

    /// A fresh run of `case` with `checkpoint` restored.
    fn resumed(&self, case: &Case, checkpoint: &Checkpoint) -> (Box<dyn Method>, CancelToken) {
        let (mut method, cancel) = self.build(case, &case.params);
        checkpoint.restore(method.as_mut(), &self.backend).unwrap();
        (method, cancel)
    }
}

/// Equal reports (f64 for f64), or the first step that differs.
fn assert_same(got: &[StepReport], want: &[StepReport], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    if let Some((got, want)) = got.iter().zip(want).find(|(g, w)| g != w) {
        panic!(
            "{what}: step {} differs:\n  got  {got:?}\n  want {want:?}",
            want.step
        );
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inrlab-checkpoint-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saved at step 100 and resumed in a fresh method, every trained method reports at steps
/// 101–200 exactly what an uninterrupted run reports (PSNR, loss, saturation, levels: equal
/// as f64). Saved inside a step cancelled at each of its checks, it resumes to the same
/// steps too.
#[test]
fn a_resumed_run_continues_bit_for_bit() {
    let bench = Bench::new();
    let dir = temp_dir("resume");
    let mut all = cases();
    all.push(folder_case());
    for case in all {
        let what = format!("{} {:?}", case.method, case.params);
        let mut whole = bench.fresh(&case);
        let reference = bench.steps(whole.as_mut(), 200);

        let mut first = bench.fresh(&case);
        assert_eq!(bench.steps(first.as_mut(), 100), reference[..100], "{what}");
        let checkpoint = bench.saved(&case, first.as_ref(), &dir);
        assert_eq!(checkpoint.state.step, 100);
        let (mut resumed, _) = bench.resumed(&case, &checkpoint);
        assert_eq!(resumed.steps_done(), 100);
        let rest = bench.steps(resumed.as_mut(), 100);
        assert_same(
            &rest,
            &reference[100..],
            &format!("{what}: resumed at step 100"),
        );
        assert!(resumed.is_done());

        // Inside step 101, cancelled at its k-th check: saved there, it resumes to step 101
        // and on as if never interrupted.
        for k in 0.. {
            let (mut interrupted, cancel) = bench.resumed(&case, &checkpoint);
            cancel.cancel_after_checks(k);
            match interrupted.step(&bench.backend) {
                Ok(report) => {
                    assert_eq!(report, reference[100], "{what}");
                    assert!(k > 0, "{what}: a step that never checks its token");
                    break;
                }
                Err(error) => assert!(
                    inrlab::compute::cancel::is_cancelled_error(&error),
                    "{what}: {error:#}"
                ),
            }
            assert_eq!(interrupted.steps_done(), 100);
            let inside = bench.saved(&case, interrupted.as_ref(), &dir);
            let (mut again, _) = bench.resumed(&case, &inside);
            let next = bench.steps(again.as_mut(), 3);
            assert_same(
                &next,
                &reference[100..103],
                &format!("{what}: saved at check {k}"),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Damaged files, random bytes, another method's or version's checkpoint and different shapes
/// are refused in one line each, and the method they were meant for steps as a fresh one.
#[test]
fn a_checkpoint_that_does_not_fit_is_refused_and_changes_nothing() {
    let bench = Bench::new();
    let dir = temp_dir("refused");
    let cases = cases();
    let (fourier, coord) = (&cases[0], &cases[2]);
    let good = bench.trained(fourier, 5, &dir);
    let good_path = dir.join("good.safetensors");
    good.write(&good_path, Existing::Refuse).unwrap();
    let bytes = std::fs::read(&good_path).unwrap();

    // Each in one line that names the file and says `why`.
    let refused = |name: &str, contents: &[u8], why: &str| {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        let error = format!("{:#}", Checkpoint::read(&path).unwrap_err());
        assert!(!error.contains('\n'), "{error}");
        assert!(error.starts_with(&path.display().to_string()), "{error}");
        assert!(error.contains(why), "{error}");
    };
    refused(
        "cut.safetensors",
        &bytes[..bytes.len() - 100],
        "not an inrlab checkpoint",
    );
    refused(
        "header.safetensors",
        &bytes[..40],
        "not an inrlab checkpoint",
    );
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    refused("noise.safetensors", &noise, "not an inrlab checkpoint");
    refused("empty.safetensors", b"", "not an inrlab checkpoint");
    // Another program's safetensors file.
    let foreign = safetensors::serialize(
        [(
            "w",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &[0; 4])
                .unwrap(),
        )],
        None,
    )
    .unwrap();
    refused("foreign.safetensors", &foreign, "not an inrlab checkpoint");
    // Another version (the same number of bytes, so the header still reads).
    let version = format!("\"inrlab_version\":\"{}\"", env!("CARGO_PKG_VERSION"));
    let other = version.replace(env!("CARGO_PKG_VERSION"), "9.9.9");
    assert_eq!(
        other.len(),
        version.len(),
        "pick a version of the same length"
    );
    let edited = replace_once(&bytes, version.as_bytes(), other.as_bytes());
    refused("version.safetensors", &edited, "inrlab 9.9.9");
    let edited = replace_once(
        &bytes,
        b"\"format_version\":\"1\"",
        b"\"format_version\":\"7\"",
    );
    refused("format.safetensors", &edited, "format 7");

    // Read fine but not for this method: another method's, another shape's, another
    // optimizer's, a step past the run's last.
    let mut target = bench.fresh(fourier);
    let mut check = |checkpoint: &Checkpoint, expected: &str| {
        let error = format!(
            "{:#}",
            checkpoint
                .restore(target.as_mut(), &bench.backend)
                .unwrap_err()
        );
        assert!(error.contains(expected), "{error}");
        assert!(!error.contains('\n'), "{error}");
        assert_eq!(target.steps_done(), 0);
    };
    check(&bench.trained(coord, 2, &dir), "of coord-mlp");
    let narrow = Case {
        method: "fourier-mlp",
        params: params(&[("frequencies", 16.0), ("width-1", 16.0), ("width-2", 32.0)]),
        folder: None,
    };
    check(&bench.trained(&narrow, 2, &dir), "is 32×16");
    let sgd = Case {
        method: "fourier-mlp",
        params: params(&[
            ("frequencies", 16.0),
            ("width-1", 32.0),
            ("width-2", 32.0),
            ("optimizer", 1.0),
        ]),
        folder: None,
    };
    check(&bench.trained(&sgd, 2, &dir), "another optimizer");
    let mut late = good.clone();
    late.state.step = 500;
    late.state.optimizer_updates = 500;
    check(&late, "past this run's 200 steps");
    let mut tampered = good.clone();
    tampered.state.tensors[0].values.pop();
    check(&tampered, "values for");
    // After all that, it steps as a fresh run does.
    let mut fresh = bench.fresh(fourier);
    assert_eq!(
        target.step(&bench.backend).unwrap(),
        fresh.step(&bench.backend).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{} is not in the file", String::from_utf8_lossy(from)));
    let mut out = bytes.to_vec();
    out[at..at + from.len()].copy_from_slice(to);
    out
}

/// An existing file is refused unless overwriting is asked for, and nothing is left behind;
/// an unwritable folder and a path under a regular file are errors naming the path.
#[test]
fn writing_never_replaces_a_file_unasked_and_bad_places_are_errors() {
    let bench = Bench::new();
    let dir = temp_dir("writing");
    let checkpoint = bench.trained(&cases()[0], 3, &dir);
    let path = dir.join("existing.safetensors");
    std::fs::write(&path, b"keep me").unwrap();
    let error = format!(
        "{:#}",
        checkpoint.write(&path, Existing::Refuse).unwrap_err()
    );
    assert!(error.contains("already exists"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    let bytes = checkpoint.write(&path, Existing::Overwrite).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), bytes);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A path under a regular file can never be written, as root or not.
    let file = dir.join("file.txt");
    std::fs::write(&file, b"a file").unwrap();
    let under = file.join("sub").join("ckpt.safetensors");
    let error = format!(
        "{:#}",
        checkpoint.write(&under, Existing::Refuse).unwrap_err()
    );
    assert!(error.contains("file.txt"), "{error}");
    // A read-only folder, where the permissions bind (not for root).
    use std::os::unix::fs::PermissionsExt;
    let locked = dir.join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = locked.join("probe");
    if std::fs::write(&probe, b"").is_ok() {
        let _ = std::fs::remove_file(&probe);
        eprintln!("running as root: a read-only folder is writable, its check skipped");
    } else {
        let target = locked.join("ckpt.safetensors");
        let error = format!(
            "{:#}",
            checkpoint.write(&target, Existing::Refuse).unwrap_err()
        );
        assert!(error.contains("cannot write"), "{error}");
        assert!(!target.exists());
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A checkpoint carries how its run was made: `Provenance::read` (what `--config` and Load
/// preset… use) finds the record in its header.
#[test]
fn a_checkpoint_carries_its_runs_record() {
    let (bench, dir) = (Bench::new(), temp_dir("record"));
    let checkpoint = bench.trained(&cases()[3], 2, &dir);
    let path = dir.join("run.safetensors");
    checkpoint.write(&path, Existing::Refuse).unwrap();
    let record = Provenance::read(&path).unwrap();
    assert_eq!(record, checkpoint.provenance);
    assert_eq!(
        record.methods.keys().collect::<Vec<_>>(),
        ["learned-refine"]
    );
    assert_eq!(record.methods["learned-refine"]["width"], 16.0);
    assert!(record.image.is_sample());
    assert_eq!(record.working_size, SIZE);
    assert_eq!(record.backend, "cpu");
    assert_eq!(
        checkpoint.params().unwrap().explicit("iterations"),
        Some(3.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
