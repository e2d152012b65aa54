//! The command line: `inrlab` opens the window, `inrlab run` runs a method headless,
//! `inrlab bench` measures. Method parameters (`--spectral-radius 0.9`, …) are generated from
//! the registry's parameter specs, so a new method's parameters appear here without edits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::io::IsTerminal;

use anyhow::Context as _;
use clap::builder::TypedValueParser as _;
use clap::{Arg, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Serialize;

use crate::checkpoint::{Checkpoint, CheckpointSchedule};
use crate::compute::{Backend, BackendChoice, create_backend};
use crate::figures;
use crate::imaging::{color_image_from_rgb, host_mse};
use crate::methods::params::Resolved;
use crate::methods::wavelet_dataset::logs_levels;
use crate::methods::{
    self, LevelImages, LevelReport, Method, MethodInfo, ParamValues, StepReport, psnr_from_mse,
};
use crate::output::{Existing, check_writable, png_bytes_with_text, write_atomic};
use crate::provenance::{ImageOrigin, Provenance};
use crate::rng::RngKind;
use crate::runner::{StepRecord, run_methods};
use crate::session::{AdvanceResult, Session};
use crate::sheet::SheetCell;
use crate::sparse::{BestStep, MaskSpec, ObservationSpec, Refit, SetScores, superres};
use crate::target::{Fit, Target, load_image, rgb8_from_f32};

#[derive(Parser, Debug)]
#[command(
    name = "inrlab",
    version,
    about = "Watch images being generated, step by step, by iterative coordinate-based models.",
    after_help = "Without a subcommand, inrlab opens its window on the built-in sample (or --image). \
                  Method parameters given to the window apply to every selected method that has \
                  them, in place of the values saved from last time: \
                  inrlab --methods fourier-mlp,learned-refine --optimizer sgd"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub window: WindowArgs,
}

/// Options of the window (no subcommand).
#[derive(Args, Debug, Clone, Default)]
pub struct WindowArgs {
    /// Image to open instead of the built-in sample.
    #[arg(long, global = true)]
    pub image: Option<PathBuf>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto, global = true)]
    pub backend: BackendChoice,
    /// Save a screenshot of the whole window to this PNG after --after steps, then exit.
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// Steps of each selected method before the screenshot is taken.
    #[arg(long, default_value_t = 10)]
    pub after: usize,
    /// Replace the --screenshot file if it is already there.
    #[arg(long)]
    pub overwrite: bool,
    /// Methods to show, comma-separated, in place of the ones ticked last time.
    #[arg(long, value_delimiter = ',', value_name = "NAMES", value_parser = method_names())]
    pub methods: Option<Vec<String>>,
    /// Method parameters given to the window (`--optimizer sgd`), filled in by [`parse`].
    #[arg(skip)]
    pub params: ParamValues,
    /// Test hook: destroy the GPU device the window shares with the compute after this many
    /// steps of each method, as a driver reset would.
    #[cfg(feature = "testing")]
    #[arg(long, hide = true)]
    pub lose_window_device_after: Option<usize>,
    /// Test hook: resize the window every frame until the screenshot is taken.
    #[cfg(feature = "testing")]
    #[arg(long, hide = true)]
    pub resize_every_frame: bool,
}

fn method_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(methods::registry().iter().map(|info| info.name))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one method (or all) headless and write metrics.json, final.png and trajectory.png.
    Run(Box<RunArgs>),
    /// Measure the backends' throughput and the method suite's time.
    Bench(BenchArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Method name, a comma-separated list of them, or `all`; several methods write into
    /// <out>/<method>/ and run side by side, sharing what they can. With --config, the file's
    /// methods unless given.
    #[arg(long, required_unless_present_any = ["config", "resume"])]
    pub method: Option<String>,
    /// Make a run again from a file inrlab wrote: a preset, a metrics.json or metrics.csv, or
    /// a PNG (its embedded record). Image, working size, fit, generator, backend, methods and
    /// every parameter come from the file; options given beside it override them.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Working size S: the image is resized to S×S.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Seed of the random weights (same as --seed of each method).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Random generator: numpy reproduces np.random.seed/randn draw for draw (the default, so
    /// the seed notebooks' numbers are reproduced); `default` is rand's StdRng.
    #[arg(long, value_enum, default_value_t = RngKind::Numpy)]
    pub rng: RngKind,
    /// How a non-square image becomes square.
    #[arg(long, value_enum, default_value_t = Fit::Stretch)]
    pub fit: Fit,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace files that are already in the output directory.
    #[arg(long)]
    pub overwrite: bool,
    /// Record the method's image at every --every-th step (and the last) into this file: an
    /// animated GIF (.gif), a lossless animated PNG (.png) or MP4 (.mp4, needs ffmpeg on PATH).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// With --record: every how many steps a frame is taken.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub every: u64,
    /// With --record: frames per second of the recording.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub fps: u32,
    /// Train the wavelet operator on every image in this folder (working size 32, 64 or 128)
    /// and sample new images from 4×4 noise canvases: writes samples.png and metrics.json
    /// (held-out per-level PSNRs every 100th step and at the last).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Go on from a checkpoint (.safetensors) of a trained method: the method, image, working
    /// size, generator, backend and every parameter come from the file, the weights, optimizer
    /// and random streams too; options beside it override (--steps 400 to train longer).
    /// metrics.json and metrics.csv list every step, the checkpoint's included.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Save a checkpoint of the (one, trained) method every N steps and at the last, as
    /// checkpoint-step-NNNNNN.safetensors in --out.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: Option<u64>,
    /// Reconstruct from a fraction of the pixels: the methods fit on the observed ones only and
    /// every step is scored on the unobserved ones, beside Delaunay-linear and nearest-neighbour
    /// interpolation. `random:P` (each pixel with probability P), `grid:S` (every S-th row and
    /// column) or `center:P` (denser towards the centre, P on average).
    #[arg(long, value_name = "SPEC", conflicts_with_all = ["holdout", "dataset"])]
    pub mask: Option<String>,
    /// Seed of --mask's draw and of the validation share's.
    #[arg(long, default_value_t = 0)]
    pub mask_seed: u32,
    /// With --mask: the share of the observed pixels kept out of the fit and scored every step,
    /// so the best step can be told without looking at the unobserved pixels (0: off).
    #[arg(long, default_value_t = ObservationSpec::DEFAULT_VALIDATION_SHARE)]
    pub validation: f64,
    /// With --mask and validation: stop a trained run once its validation PSNR has not
    /// improved for N steps (0: run every step; the best step is reported either way).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub patience: usize,
    /// With --mask and validation: once a run has finished, fit it again on every observed
    /// pixel (the validation share included) for as many steps as its best-validation step,
    /// so validation chooses when to stop without costing the fit its pixels.
    #[arg(long)]
    pub refit: bool,
    /// Tancik et al.'s held-out protocol: train on the even pixels [::2, ::2], report PSNR on
    /// the odd ones [1::2, 1::2] (`heldout_db`). Unless given, the protocol's network: 3
    /// hidden layers of 256, 256 frequencies at σ = 10, Adam at 1e-3 (1e-2 for coord-mlp),
    /// 2000 steps.
    #[arg(long, conflicts_with_all = ["mask", "dataset", "superres"])]
    pub holdout: bool,
    /// "Fit at S/k, score at S": fit on the working image downsampled by K (Lanczos-3), render
    /// the model at S and score it against the true S image beside bicubic and Lanczos
    /// upsampling; writes superres.png and superres.json.
    #[arg(long, value_name = "K", value_parser = clap::builder::PossibleValuesParser::new(["2", "4", "8"]).map(|k| k.parse::<usize>().expect("listed")))]
    pub superres: Option<usize>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Print JSON records instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Working sizes at which the method suite is timed (0 to skip the suite).
    #[arg(long, value_delimiter = ',', default_values_t = [128usize, 256])]
    pub suite_sizes: Vec<usize>,
    /// Repetitions per operation; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// UI frames to time while the compute thread is busy (0 to skip).
    #[arg(long, default_value_t = 600)]
    pub ui_frames: usize,
    /// Measure the window's time sharing: how long the Fourier MLP takes to reach step 500
    /// beside the default selection, and slider-to-frame latencies (about three minutes).
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    pub scheduling: bool,
    /// Only the wavelet operator's figures: ms per step at 128² and 256², and the live bytes
    /// of a 512² rollout.
    #[arg(long)]
    pub wavelet_only: bool,
}

/// Every parameter name across the registry, once, with the first spec's help.
fn parameter_args() -> Vec<Arg> {
    let mut seen: BTreeMap<&str, Arg> = BTreeMap::new();
    for info in methods::registry() {
        for spec in info.params {
            if spec.name == "seed" {
                continue; // a fixed option of `run`
            }
            seen.entry(spec.name).or_insert_with(|| {
                let arg = Arg::new(spec.name)
                    .long(spec.name)
                    .help_heading("Method parameters")
                    .help(spec.help);
                if spec.is_choice() {
                    // Categorical: the option names, turned into the spec's index below.
                    arg.value_name("NAME")
                        .value_parser(clap::builder::PossibleValuesParser::new(spec.choices))
                } else {
                    arg.value_name("VALUE")
                        .value_parser(clap::value_parser!(f64))
                        .allow_negative_numbers(true)
                }
            });
        }
    }
    seen.into_values().collect()
}

/// The whole command line: method parameters are options of `run` and of the window.
pub fn command() -> clap::Command {
    Cli::command()
        .args(parameter_args())
        .mut_subcommand("run", |run| run.args(parameter_args()))
}

/// Parses the process arguments. Errors (not help or version) are shortened to one line.
pub fn parse() -> (Cli, ArgMatches) {
    match command().try_get_matches() {
        Ok(matches) => match Cli::from_arg_matches(&matches) {
            Ok(mut cli) => match parameter_values(&matches) {
                Ok(params) => {
                    cli.window.params = params;
                    (cli, matches)
                }
                Err(error) => {
                    eprintln!("inrlab: {error:#} (see inrlab --help)");
                    std::process::exit(2);
                }
            },
            Err(error) => exit_with_clap_error(error),
        },
        Err(error) => exit_with_clap_error(error),
    }
}

fn exit_with_clap_error(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        error.exit();
    }
    let rendered = error.render().to_string();
    let first_line = rendered.lines().next().unwrap_or("invalid arguments");
    eprintln!("{} (see inrlab --help)", first_line.trim());
    std::process::exit(2);
}

/// The first categorical spec called `name` in the registry (the one its argument was made from).
fn choice_spec(name: &str) -> Option<&'static methods::ParamSpec> {
    methods::registry()
        .iter()
        .flat_map(|info| info.params)
        .find(|spec| spec.name == name)
        .filter(|spec| spec.is_choice())
}

/// The method parameters given on the command line (the matches of `run`, or the top level's
/// for the window). A categorical one's name becomes its option's index; a name that is none
/// of them is an error (clap checks names against the first spec of that name).
pub fn parameter_values(run_matches: &ArgMatches) -> anyhow::Result<ParamValues> {
    let mut values = ParamValues::new();
    for arg in parameter_args() {
        let name = arg.get_id().as_str();
        match choice_spec(name) {
            Some(spec) => {
                if let Some(choice) = run_matches.get_one::<String>(name) {
                    values.set(name, spec.choice_index(choice)? as f64);
                }
            }
            None => {
                if let Some(&value) = run_matches.get_one::<f64>(name) {
                    values.set(name, value);
                }
            }
        }
    }
    Ok(values)
}

#[derive(Serialize)]
struct StepEntry {
    step: usize,
    label: String,
    psnr: f64,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<f64>,
    /// Per level, for multi-resolution methods: every 100th step and the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    levels: Option<Vec<LevelReport>>,
    /// Seen through a mask: `unobserved_db`, `observed_db`, `validation_db`,
    /// `unobserved_ssim`, `observed_ssim` (and `heldout_db` for the holdout protocol).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    sparse: Option<SetScores>,
}

impl StepEntry {
    /// One step as metrics.json lists it, its levels when it has any.
    fn new(report: StepReport, seconds: f64) -> Self {
        StepEntry {
            step: report.step,
            label: report.label,
            psnr: report.psnr_db,
            seconds,
            loss: report.loss,
            levels: (!report.levels.is_empty()).then_some(report.levels),
            sparse: report.sparse,
        }
    }
}

/// Steps whose per-level figures go into metrics.json: every 100th and the last.

#[derive(Serialize)]
struct Metrics<'a> {
    method: &'a str,
    backend: String,
    adapter: String,
    image: &'a str,
    size: usize,
    rng: RngKind,
    /// Every parameter's value, a categorical one's by its option's name.
    params: BTreeMap<String, Resolved>,
    /// How to make these files again (`inrlab run --config metrics.json`).
    provenance: &'a Provenance,
    /// Seen through a mask: which pixels, how many of each set.
    #[serde(skip_serializing_if = "Option::is_none")]
    observation: Option<ObservationSummary>,
    /// The interpolation baselines, scored on the unobserved pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    baselines: Option<BaselineScores>,
    /// The step with the best validation PSNR, and its scores: what a user without the
    /// unobserved pixels would pick.
    #[serde(skip_serializing_if = "Option::is_none")]
    best_validation: Option<BestSummary>,
    /// With `--refit`: the method fitted again on every observed pixel to the best-validation
    /// step, and its scores (or why it failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    refit: Option<RefitSummary>,
    steps: Vec<StepEntry>,
}

#[derive(Serialize)]
struct ObservationSummary {
    #[serde(flatten)]
    spec: ObservationSpec,
    observed: usize,
    training: usize,
    validation: usize,
    unobserved: usize,
}

#[derive(Serialize)]
struct BaselineScores {
    delaunay_linear_db: f64,
    nearest_db: f64,
    delaunay_linear_ssim: f64,
    nearest_ssim: f64,
}

#[derive(Serialize)]
struct BestSummary {
    step: usize,
    #[serde(flatten)]
    scores: SetScores,
}

#[derive(Serialize)]
#[serde(untagged)]
enum RefitSummary {
    Done {
        step: usize,
        #[serde(flatten)]
        scores: SetScores,
    },
    Failed {
        failed: String,
    },
}

/// What `--mask`, `--holdout` and their options ask for.
fn observation_spec(args: &RunArgs) -> anyhow::Result<Option<ObservationSpec>> {
    if args.holdout {
        return Ok(Some(ObservationSpec {
            mask: ObservationSpec::HOLDOUT.into(),
            seed: args.mask_seed,
            validation_share: 0.0,
            patience: 0,
            refit: false,
        }));
    }
    let Some(mask) = &args.mask else {
        anyhow::ensure!(!args.refit, "--refit needs --mask (and a validation share)");
        return Ok(None);
    };
    mask.parse::<MaskSpec>()?;
    anyhow::ensure!(
        (0.0..1.0).contains(&args.validation),
        "--validation is a share of the observed pixels: at least 0 and below 1"
    );
    anyhow::ensure!(
        !args.refit || args.validation > 0.0,
        "--refit fits again to the best-validation step: it needs --validation above 0"
    );
    Ok(Some(ObservationSpec {
        mask: mask.clone(),
        seed: args.mask_seed,
        validation_share: args.validation,
        patience: args.patience,
        refit: args.refit,
    }))
}

/// Tancik et al.'s network and optimizer for the holdout protocol: 3 hidden ReLU layers of
/// 256, 256 Gaussian frequencies at σ = 10, Adam at 1e-3 (1e-2 without a mapping), 2000
/// full-batch steps.
fn holdout_defaults(info: &MethodInfo) -> ParamValues {
    use crate::methods::coordinate_mlp::{WIDTH_1, WIDTH_2, WIDTH_3};
    use crate::methods::params::common::FOURIER_SCALE;
    use crate::methods::training::{LEARNING_RATE, TRAINING_STEPS};
    let mut values = ParamValues::new();
    if !info.resumable || !info.fits_observed_pixels {
        return values;
    }
    for spec in [WIDTH_1, WIDTH_2, WIDTH_3] {
        values.set(spec.name, 256.0);
    }
    values.set(TRAINING_STEPS.name, 2000.0);
    let raw = info.name == methods::coord_mlp::INFO.name;
    values.set(LEARNING_RATE.name, if raw { 1e-2 } else { 1e-3 });
    if !raw {
        values.set(methods::fourier_mlp::FREQUENCIES.name, 256.0);
        values.set(FOURIER_SCALE.name, 10.0);
    }
    values
}

/// "fourier-mlp    best validation at step 250: unobserved 24.61 dB (final 24.02 dB)".
fn sparse_summary(
    info: &MethodInfo,
    records: &[StepRecord],
    best: Option<&BestStep>,
    refit: Option<&Result<Refit, String>>,
) -> Option<String> {
    let last = records.last()?.report.sparse?;
    let mut line = match last.heldout_db {
        Some(heldout) => format!(
            "{:<14} held-out odd pixels {heldout:.2} dB, training pixels {:.2} dB",
            info.name, last.observed_db
        ),
        None => format!(
            "{:<14} unobserved pixels {:.2} dB (SSIM {:.3}), observed {:.2} dB",
            info.name, last.unobserved_db, last.unobserved_ssim, last.observed_db
        ),
    };
    if let Some(best) = best {
        line.push_str(&format!(
            "; best validation ({:.2} dB) at step {}: unobserved {:.2} dB",
            best.scores.validation_db.unwrap_or(f64::NAN),
            best.step,
            best.scores.unobserved_db
        ));
    }
    match refit {
        Some(Ok(refit)) => line.push_str(&format!(
            "; refit on every observed pixel to step {}: unobserved {:.2} dB (SSIM {:.3})",
            refit.step, refit.scores.unobserved_db, refit.scores.unobserved_ssim
        )),
        Some(Err(why)) => line.push_str(&format!("; the refit failed: {why}")),
        None => {}
    }
    Some(line)
}

/// metrics.csv: the provenance as `# ` lines, then one row per step.
fn metrics_csv(provenance: &Provenance, steps: &[StepEntry]) -> String {
    let mut csv = provenance.csv_header();
    csv.push_str(Provenance::CSV_STEP_COLUMNS);
    csv.push('\n');
    for s in steps {
        let row = crate::provenance::csv_step_row(
            s.step,
            &s.label,
            s.psnr,
            s.loss,
            s.seconds,
            s.sparse.as_ref(),
        );
        csv.push_str(&row);
        csv.push('\n');
    }
    csv
}

/// Loads the image the user named, or the built-in sample.
pub fn load_target(image: Option<&Path>, size: usize, fit: Fit) -> anyhow::Result<Target> {
    match image {
        None => Target::sample(size, fit),
        Some(path) => {
            let decoded = load_image(path)?;
            if let Some(warning) = &decoded.warning {
                eprintln!("inrlab: warning: {warning}");
            }
            let name = path.display().to_string();
            Target::from_image(&name, &decoded.image, size, fit)
        }
    }
}

/// The methods `--method` names: one, a comma-separated list, or `all`.
pub fn selected_methods(names: &str) -> anyhow::Result<Vec<&'static MethodInfo>> {
    if names == "all" {
        return Ok(methods::registry().iter().collect());
    }
    let mut selected: Vec<&'static MethodInfo> = Vec::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let info = methods::find(name)?;
        if !selected.iter().any(|s| s.name == info.name) {
            selected.push(info);
        }
    }
    anyhow::ensure!(!selected.is_empty(), "--method names no method");
    Ok(selected)
}

/// Progress bars on stderr, one per method, when stderr is a terminal; nothing otherwise.
struct Progress {
    bars: Vec<indicatif::ProgressBar>,
    multi: Option<indicatif::MultiProgress>,
}

impl Progress {
    fn new(names: &[&str]) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress {
                bars: Vec::new(),
                multi: None,
            };
        }
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template(
            "{prefix:>14} [{bar:30}] {pos:>4}/{len:4} {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bars = names
            .iter()
            .map(|name| {
                let bar = multi.add(indicatif::ProgressBar::new(1));
                bar.set_style(style.clone());
                bar.set_prefix(name.to_string());
                bar.set_message("building");
                bar
            })
            .collect();
        Progress {
            bars,
            multi: Some(multi),
        }
    }

    /// A line on standard output, the bars hidden while it is written.
    fn println(&self, line: String) {
        match &self.multi {
            Some(multi) => multi.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    /// A line on standard error, the bars hidden while it is written.
    fn eprintln(&self, line: String) {
        match &self.multi {
            Some(multi) => multi.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn update(&self, session: &Session, advance: &crate::session::Advance) {
        let Some(bar) = self.bars.get(advance.index) else {
            return;
        };
        if let Some(total) = advance.built {
            bar.set_length(total as u64);
        }
        match &advance.result {
            AdvanceResult::Stepped(report) => {
                bar.set_position(report.step.min(bar.length().unwrap_or(0) as usize) as u64);
                bar.set_message(format!("{:.2} dB", report.psnr_db));
                if session.slot(advance.index).is_settled() {
                    bar.finish();
                }
            }
            AdvanceResult::Waiting(what) => bar.set_message(format!("waiting for {what}")),
            AdvanceResult::Stopped(reason) => bar.abandon_with_message(reason.to_string()),
            AdvanceResult::Refit(progress) => match &progress.outcome {
                None => bar.set_message(format!(
                    "refit on every observed pixel: step {} of {}",
                    progress.step, progress.of
                )),
                Some(Ok(refit)) => bar.finish_with_message(format!(
                    "refit to step {}: {:.2} dB unobserved",
                    refit.step, refit.scores.unobserved_db
                )),
                Some(Err(why)) => bar.abandon_with_message(format!("the refit failed: {why}")),
            },
            AdvanceResult::Cancelled => {}
        }
    }
}

/// Whether option `id` was given on the command line (not its default).
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches.try_contains_id(id).unwrap_or(false)
        && matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
}

/// `--config <file>` (or `--resume`): the run `record` (read from `config`) records, with
/// whatever the command line gives beside it in its place; per method, the recorded parameters.
fn apply_config(
    record: Provenance,
    config: &Path,
    args: &RunArgs,
    window: &WindowArgs,
    matches: &ArgMatches,
) -> anyhow::Result<(RunArgs, WindowArgs, BTreeMap<&'static str, ParamValues>)> {
    let (mut args, mut window) = (args.clone(), window.clone());
    let infos = record.method_infos()?;
    if args.method.is_none() {
        let names: Vec<&str> = infos.iter().map(|info| info.name).collect();
        args.method = Some(names.join(","));
    }
    if !given(matches, "size") {
        args.size = record.working_size;
    }
    if !given(matches, "fit") {
        args.fit = record.fit;
    }
    if !given(matches, "rng") {
        args.rng = record.rng;
    }
    if args.dataset.is_none() {
        args.dataset = record.dataset.clone();
    }
    if let Some(spec) = &record.observation
        && args.mask.is_none()
        && !args.holdout
    {
        if spec.is_holdout() {
            args.holdout = true;
        } else {
            args.mask = Some(spec.mask.clone());
            if !given(matches, "validation") {
                args.validation = spec.validation_share;
            }
            if !given(matches, "patience") {
                args.patience = spec.patience;
            }
            if !given(matches, "refit") {
                args.refit = spec.refit;
            }
        }
        if !given(matches, "mask_seed") {
            args.mask_seed = spec.seed;
        }
    }
    if args.superres.is_none() {
        args.superres = record.superres;
    }
    if !given(matches, "backend") {
        window.backend = match record.backend.as_str() {
            "gpu" => BackendChoice::Gpu,
            _ => BackendChoice::Cpu,
        };
    }
    if window.image.is_none() && record.dataset.is_none() {
        window.image = record
            .image
            .resolve()
            .with_context(|| format!("{} names an image", config.display()))?;
    }
    let mut recorded = BTreeMap::new();
    for info in infos {
        recorded.insert(info.name, record.params_of(info)?);
    }
    Ok((args, window, recorded))
}

/// `inrlab run`.
pub fn run(args: &RunArgs, window: &WindowArgs, run_matches: &ArgMatches) -> anyhow::Result<()> {
    let resumed = args.resume.as_deref().map(Checkpoint::read).transpose()?;
    let (args, window, recorded) = match (&args.config, &resumed, &args.resume) {
        (Some(config), _, _) => {
            apply_config(Provenance::read(config)?, config, args, window, run_matches)?
        }
        (None, Some(checkpoint), Some(path)) => apply_config(
            checkpoint.provenance.clone(),
            path,
            args,
            window,
            run_matches,
        )?,
        _ => (args.clone(), window.clone(), BTreeMap::new()),
    };
    let (args, window) = (&args, &window);
    let mut params = parameter_values(run_matches)?;
    if let Some(seed) = args.seed {
        params.set("seed", seed as f64);
    }
    let selected = selected_methods(args.method.as_deref().unwrap_or_default())?;
    let several = selected.len() > 1;
    let observation = observation_spec(args)?;
    if observation.is_some() || args.superres.is_some() {
        let unable: Vec<&str> = (selected.iter())
            .filter(|info| !info.fits_observed_pixels)
            .map(|info| info.name)
            .collect();
        anyhow::ensure!(
            unable.is_empty(),
            "{} cannot fit from a fraction of the pixels or render off its grid; {} can",
            unable.join(", "),
            methods::fitting_observed_pixels(|info| info.name)
        );
    }
    let existing = if args.overwrite {
        Existing::Overwrite
    } else {
        Existing::Refuse
    };
    check_checkpointed(args, &selected, resumed.as_ref())?;
    if let Some(folder) = &args.dataset {
        anyhow::ensure!(
            selected.len() == 1 && selected[0].name == methods::wavelet::INFO.name,
            "--dataset trains the wavelet operator: use it with --method wavelet"
        );
        let mut own = recorded.get(selected[0].name).cloned().unwrap_or_default();
        for (name, value) in params.iter() {
            own.set(name, value);
        }
        own.validate(selected[0].name, selected[0].params)?;
        return run_dataset(folder, args, window, &own, existing, resumed.as_ref());
    }
    // Validate everything before any computing: parameters, then files.
    let mut plans = Vec::new();
    let mut dirs = Vec::new();
    for info in &selected {
        // The protocol's network (--holdout), the file's values (with --config), then those
        // given here.
        let mut own = if args.holdout {
            holdout_defaults(info)
        } else {
            ParamValues::new()
        };
        for (name, value) in recorded.get(info.name).into_iter().flat_map(|r| r.iter()) {
            own.set(name, value);
        }
        for spec in info.params {
            if let Some(v) = params.explicit(spec.name) {
                own.set(spec.name, v);
            }
        }
        if !several {
            // A parameter the single method lacks is a mistake worth reporting.
            for (name, value) in params.iter() {
                own.set(name, value);
            }
        }
        own.validate(info.name, info.params)?;
        let dir = if several {
            args.out.join(info.name)
        } else {
            args.out.clone()
        };
        let mut files: Vec<PathBuf> = [
            "metrics.json",
            "metrics.csv",
            "final.png",
            "trajectory.png",
            "curves.png",
        ]
        .iter()
        .map(|f| dir.join(f))
        .collect();
        if info.has_levels {
            files.push(dir.join("scales.png"));
        }
        if observation.is_some() {
            files.push(dir.join("sparse.png"));
        }
        if args.superres.is_some() {
            files.extend(["superres.png", "superres.json"].map(|f| dir.join(f)));
        }
        check_writable(&files, existing)?;
        plans.push((*info, own));
        dirs.push(dir);
    }
    let mut summary_files = vec![args.out.join("compare.png")];
    if several {
        summary_files.push(args.out.join("curves.png"));
    }
    check_writable(&summary_files, existing)?;
    if several {
        let unused: Vec<&str> = params
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                !selected
                    .iter()
                    .any(|m| m.params.iter().any(|p| p.name == *name))
            })
            .collect();
        anyhow::ensure!(
            unused.is_empty(),
            "none of the selected methods has --{}",
            unused.join(", --")
        );
    }
    if let Some(checkpoint) = &resumed {
        check_steps_left(checkpoint, plans[0].0, &plans[0].1)?;
    }
    let truth = load_target(window.image.as_deref(), args.size, args.fit)?;
    let target = match args.superres {
        Some(factor) => {
            anyhow::ensure!(
                args.size.is_multiple_of(factor) && args.size / factor >= 4,
                "--superres {factor} needs a working size that is a multiple of {factor} and \
                 at least {}",
                4 * factor
            );
            Target {
                name: truth.name.clone(),
                size: args.size / factor,
                pixels: superres::downsample(&truth.pixels, args.size, factor)?,
                observation: None,
            }
        }
        None => truth.clone(),
    };
    let target = match &observation {
        Some(spec) => target.observed_through(spec.clone())?,
        None => target,
    };
    if let Some(observation) = &target.observation {
        let baselines: Vec<String> = (observation.baselines.iter())
            .map(|b| format!("{} {:.2} dB", b.name, b.scores.unobserved_db))
            .collect();
        println!(
            "mask {}; on the unobserved pixels: {}",
            observation.describe(),
            baselines.join(", ")
        );
    }
    let render_coords = args
        .superres
        .map(|factor| crate::target::rendering_grid(args.size / factor, args.size));
    let backend = create_backend(window.backend)?;
    let origin = match &window.image {
        Some(path) => ImageOrigin::file(path)?,
        None => ImageOrigin::sample(),
    };
    let record_of = |runs: &[(&MethodInfo, &ParamValues)]| {
        let mut record = Provenance::new(
            origin.clone(),
            args.size,
            args.fit,
            args.rng,
            backend.as_ref(),
            runs,
        )?;
        record.observation = observation.clone();
        record.superres = args.superres;
        anyhow::Ok(record)
    };
    let mut schedule = match args.checkpoint_every {
        Some(every) => {
            let (info, own) = &plans[0];
            let record = record_of(&[(info, own)])?;
            let schedule = CheckpointSchedule::new(
                every as usize,
                total_steps(info, own),
                &args.out,
                existing,
                record,
                resumed
                    .as_ref()
                    .map(|c| c.history.clone())
                    .unwrap_or_default(),
            );
            check_writable(&schedule.paths(), existing)?;
            Some(schedule)
        }
        None => None,
    };
    let mut unsaved_checkpoints = 0;
    let recorder = match &args.record {
        Some(file) => {
            anyhow::ensure!(
                !several,
                "--record records one method; name one with --method"
            );
            let (info, own) = &plans[0];
            let record = record_of(&[(info, own)])?;
            let options = crate::recording::RecordingOptions {
                fps: args.fps,
                text: record.png_text(),
                ..Default::default()
            };
            Some(crate::recording::Recorder::start(file, options, existing)?)
        }
        None => None,
    };
    let every = args.every as usize;
    let names: Vec<&str> = selected.iter().map(|m| m.name).collect();
    let progress = Progress::new(&names);
    let mut failures = Vec::new();
    let mut first_error = None;
    let mut finished = Vec::new();
    // Each method's files are written as soon as it settles, while the others go on.
    run_methods(
        &plans,
        &target,
        backend.as_ref(),
        args.rng,
        true,
        resumed.as_ref(),
        render_coords.as_deref(),
        |session, advance| {
            progress.update(session, advance);
            if let (Some(schedule), AdvanceResult::Stepped(report)) =
                (schedule.as_mut(), &advance.result)
            {
                let slot = session.slot(advance.index);
                let method = slot.method().expect("a stepped method is in its slot");
                let saved =
                    schedule.after_step(method, session.backend(), report, slot.compute_secs);
                if let Some(Err(error)) = saved {
                    progress.eprintln(format!("inrlab: checkpoint not saved: {error:#}"));
                    unsaved_checkpoints += 1;
                }
            }
            if let (Some(recorder), AdvanceResult::Stepped(report)) = (&recorder, &advance.result)
                && let Some(method) = session.slot(advance.index).method()
                && (report.step.is_multiple_of(every) || method.is_done())
            {
                let (side, rgb) = recording_frame(&method.image(session.backend()), target.size);
                recorder.push_waiting(side, side, std::sync::Arc::new(rgb));
            }
        },
        |index, outcome| {
            let (info, own) = &plans[index];
            let dir = &dirs[index];
            let written = outcome.and_then(|outcome| {
                let records = outcome.records;
                let provenance = record_of(&[(info, own)])?;
                let superres = match (args.superres, outcome.rendering) {
                    (Some(factor), Some(rendering)) => {
                        let rendering = rendering?;
                        let (report, renderings) = superres::evaluate(
                            &truth.pixels,
                            truth.size,
                            factor,
                            &target.pixels,
                            &rendering,
                        )?;
                        Some((report, rendering, renderings))
                    }
                    _ => None,
                };
                write_run(
                    dir,
                    info,
                    own,
                    &records,
                    outcome.iterates.as_deref(),
                    outcome.levels.as_deref(),
                    outcome.best.as_ref(),
                    outcome.refit.as_ref(),
                    &target,
                    backend.as_ref(),
                    &provenance,
                    existing,
                )?;
                if let Some((report, rendering, renderings)) = &superres {
                    write_superres(
                        dir,
                        info,
                        &truth,
                        report,
                        rendering,
                        renderings,
                        &provenance,
                        existing,
                    )?;
                    progress.println(format!(
                        "{:<14} {}× super-resolution: {:.2} dB (bicubic {:.2}, Lanczos {:.2}); \
                         power above the {}² Nyquist: {:.1}% (truth {:.1}%, bicubic {:.1}%)",
                        info.name,
                        report.factor,
                        report.model_db,
                        report.bicubic_db,
                        report.lanczos_db,
                        target.size,
                        100.0 * report.spectrum.hf_share.model,
                        100.0 * report.spectrum.hf_share.truth,
                        100.0 * report.spectrum.hf_share.bicubic,
                    ));
                }
                if let Some(line) = sparse_summary(
                    info,
                    &records,
                    outcome.best.as_ref(),
                    outcome.refit.as_ref(),
                ) {
                    progress.println(line);
                }
                let last = records.last().expect("a run has at least one step");
                let image = records.iter().rev().find_map(|r| r.image.clone());
                finished.push((
                    *info,
                    records.iter().map(|r| r.report.clone()).collect::<Vec<_>>(),
                    image.unwrap_or_else(|| target.pixels.clone()),
                ));
                progress.println(format!(
                    "{:<14} {:>3} steps  {:>7.3} s  final PSNR {:.2} dB  → {}",
                    info.name,
                    records.len(),
                    last.seconds,
                    last.report.psnr_db,
                    dir.display()
                ));
                Ok(())
            });
            if let Err(error) = written {
                if several {
                    progress.eprintln(format!("inrlab: {error:#}"));
                    failures.push(info.name);
                } else {
                    first_error = Some(error);
                }
            }
        },
    );
    drop(progress);
    if !finished.is_empty() {
        let runs: Vec<_> = plans
            .iter()
            .filter(|(info, _)| finished.iter().any(|(f, _, _)| f.name == info.name))
            .map(|(info, own)| (*info, own))
            .collect();
        let provenance = record_of(&runs)?;
        let summary = write_summary(&args.out, &target, &finished, &provenance, existing);
        if let Err(error) = summary {
            first_error.get_or_insert(error);
        }
    }
    if let Some(recorder) = recorder {
        let summary = recorder.finish()?;
        println!(
            "recorded {} frames into {} ({} bytes)",
            summary.frames,
            summary.path.display(),
            summary.bytes
        );
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    anyhow::ensure!(
        unsaved_checkpoints == 0,
        "{unsaved_checkpoints} checkpoints were not saved (see above)"
    );
    match failures.as_slice() {
        [] => Ok(()),
        many => anyhow::bail!("{} did not finish (see above)", many.join(", ")),
    }
}

/// `--resume` and `--checkpoint-every` are for one trained method; `--resume` for the
/// checkpoint's own.
fn check_checkpointed(
    args: &RunArgs,
    selected: &[&'static MethodInfo],
    resumed: Option<&Checkpoint>,
) -> anyhow::Result<()> {
    if args.checkpoint_every.is_none() && resumed.is_none() {
        return Ok(());
    }
    let what = if resumed.is_some() {
        "--resume"
    } else {
        "--checkpoint-every"
    };
    let trained: Vec<&str> = (methods::registry().iter())
        .filter(|info| info.resumable)
        .map(|info| info.name)
        .collect();
    let [info] = selected else {
        anyhow::bail!(
            "{what} is for one method; name one of the trained ones ({}) with --method",
            trained.join(", ")
        );
    };
    anyhow::ensure!(
        info.resumable,
        "{} is not trained step by step, so it has no checkpoints ({what} is for {})",
        info.name,
        trained.join(", ")
    );
    if let Some(checkpoint) = resumed {
        anyhow::ensure!(
            checkpoint.method() == info.name,
            "the checkpoint is of {}, not {}",
            checkpoint.method(),
            info.name
        );
    }
    Ok(())
}

/// How many steps a run of a trained method with `params` takes (its `steps`).
fn total_steps(info: &MethodInfo, params: &ParamValues) -> usize {
    (info.params.iter())
        .find(|spec| spec.name == "steps")
        .map_or(0, |spec| params.get(spec) as usize)
}

/// A checkpoint at its run's last step has nothing left to resume.
fn check_steps_left(
    checkpoint: &Checkpoint,
    info: &MethodInfo,
    params: &ParamValues,
) -> anyhow::Result<()> {
    let (step, total) = (checkpoint.state.step, total_steps(info, params));
    anyhow::ensure!(
        step < total,
        "the checkpoint is at step {step} and the run has {total}: nothing is left to do \
         (give --steps to train longer)"
    );
    Ok(())
}

/// `inrlab run --method wavelet --dataset <folder>`: trains on the folder, writes metrics.json
/// and samples.png (one row per noise canvas: every level, magnified to the working size).
fn run_dataset(
    folder: &Path,
    args: &RunArgs,
    window: &WindowArgs,
    params: &ParamValues,
    existing: Existing,
    resumed: Option<&Checkpoint>,
) -> anyhow::Result<()> {
    use crate::methods::wavelet_dataset::{Dataset, FolderRun};
    let info = &methods::wavelet::INFO;
    let files = ["metrics.json", "samples.png"].map(|f| args.out.join(f));
    check_writable(&files, existing)?;
    if let Some(checkpoint) = resumed {
        check_steps_left(checkpoint, info, params)?;
    }
    let dataset = std::sync::Arc::new(Dataset::load(folder, args.size, args.fit)?);
    let backend = create_backend(window.backend)?;
    let mut run = FolderRun::new(
        backend.as_ref(),
        std::sync::Arc::clone(&dataset),
        params,
        args.rng,
        dataset.size,
        crate::compute::CancelToken::new(),
    )?;
    for warning in run.warnings() {
        eprintln!("inrlab: {warning}");
    }
    eprintln!(
        "inrlab: {} training images, {} held out, at {}²",
        dataset.train.len(),
        dataset.held_out.len(),
        dataset.size
    );
    let mut provenance = Provenance::new(
        ImageOrigin::sample(),
        dataset.size,
        args.fit,
        args.rng,
        backend.as_ref(),
        &[(info, params)],
    )?;
    provenance.dataset = Some(folder.to_path_buf());
    provenance.dataset_files = dataset.files.clone();
    let history = resumed.map(|c| c.history.clone()).unwrap_or_default();
    let mut schedule = args.checkpoint_every.map(|every| {
        CheckpointSchedule::new(
            every as usize,
            run.total_steps(),
            &args.out,
            existing,
            provenance.clone(),
            history.clone(),
        )
    });
    if let Some(schedule) = &schedule {
        check_writable(&schedule.paths(), existing)?;
    }
    if let Some(checkpoint) = resumed {
        checkpoint.restore(&mut run, backend.as_ref())?;
    }
    let steps = run.total_steps();
    let bar = indicatif::ProgressBar::new(steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("wavelet {bar:30} {pos}/{len} steps  {msg}")
            .expect("a valid template"),
    );
    bar.set_position(run.steps_done() as u64);
    // A resumed run's time goes on from the checkpoint's.
    let earlier_secs = history.last().map_or(0.0, |h| h.seconds);
    let started = std::time::Instant::now();
    let mut monitor = crate::runner::DivergenceMonitor::default();
    let mut entries: Vec<StepEntry> = (history.into_iter())
        .map(|h| {
            monitor.observe(&h.report);
            StepEntry::new(h.report, h.seconds)
        })
        .collect();
    let mut unsaved_checkpoints = 0;
    while !run.is_done() {
        let report = run.step(backend.as_ref())?;
        if let Some(why) = monitor.observe(&report) {
            anyhow::bail!(
                "wavelet diverged at step {} ({why}); lower --lr",
                report.step
            );
        }
        let seconds = earlier_secs + started.elapsed().as_secs_f64();
        if let Some(schedule) = schedule.as_mut()
            && let Some(Err(error)) = schedule.after_step(&run, backend.as_ref(), &report, seconds)
        {
            bar.suspend(|| eprintln!("inrlab: checkpoint not saved: {error:#}"));
            unsaved_checkpoints += 1;
        }
        if let Some(level) = report.levels.last() {
            bar.set_message(format!(
                "held-out rollout {:.2} dB, teacher-forced {:.2} dB",
                level.rollout_db, level.teacher_forced_db
            ));
        }
        bar.inc(1);
        entries.push(StepEntry::new(report, seconds));
    }
    bar.finish_and_clear();
    #[derive(Serialize)]
    struct DatasetMetrics<'a> {
        method: &'a str,
        backend: String,
        adapter: String,
        dataset: String,
        training_images: usize,
        held_out_images: usize,
        skipped: Vec<String>,
        size: usize,
        rng: RngKind,
        params: BTreeMap<String, Resolved>,
        provenance: &'a Provenance,
        /// What `psnr` of a step is here.
        psnr_is: &'static str,
        steps: Vec<StepEntry>,
    }
    let metrics = DatasetMetrics {
        method: info.name,
        backend: backend.kind().to_string(),
        adapter: backend.adapter_name(),
        dataset: folder.display().to_string(),
        training_images: dataset.train.len(),
        held_out_images: dataset.held_out.len(),
        skipped: dataset
            .skipped
            .iter()
            .map(|(p, why)| format!("{}: {why}", p.display()))
            .collect(),
        size: dataset.size,
        rng: args.rng,
        params: params.resolved(info.params)?,
        provenance: &provenance,
        psnr_is: "teacher-forced PSNR of the step's mini-batch at the finest level; `levels` \
                  are the held-out images'",
        steps: entries,
    };
    let samples = run.samples(backend.as_ref(), 6)?;
    let sheet = figures::samples_sheet(info, &provenance, steps, &samples);
    let size = dataset.size;
    write_atomic(
        &args.out.join("metrics.json"),
        &serde_json::to_vec_pretty(&metrics)?,
        existing,
    )?;
    write_atomic(
        &args.out.join("samples.png"),
        &png_bytes_with_text(&sheet.render(), &provenance.png_text())?,
        existing,
    )?;
    let last = metrics
        .steps
        .last()
        .and_then(|s| s.levels.as_ref())
        .and_then(|l| l.last());
    match last {
        Some(level) => eprintln!(
            "wavelet  {steps} steps on {} images  held-out at {size}²: teacher-forced {:.2} dB, \
             rollout {:.2} dB (bicubic {:.2})  → {}",
            dataset.train.len(),
            level.teacher_forced_db,
            level.rollout_db,
            level.bicubic_db,
            args.out.display()
        ),
        None => eprintln!("wavelet  {steps} steps  → {}", args.out.display()),
    }
    anyhow::ensure!(
        unsaved_checkpoints == 0,
        "{unsaved_checkpoints} checkpoints were not saved (see above)"
    );
    Ok(())
}

/// A method's image as a recording frame: RGB bytes, magnified by a whole factor (nearest) to
/// at least 256 pixels a side so that a small working size stays legible.
fn recording_frame(pixels: &[f32], size: usize) -> (usize, Vec<u8>) {
    let factor = 256usize.div_ceil(size).max(1);
    let image = rgb8_from_f32(pixels, size, size);
    let side = size * factor;
    let big = image::imageops::resize(
        &image,
        side as u32,
        side as u32,
        image::imageops::FilterType::Nearest,
    );
    (side, big.into_raw())
}

fn write_run(
    dir: &Path,
    info: &MethodInfo,
    params: &ParamValues,
    records: &[StepRecord],
    iterates: Option<&[Vec<f32>]>,
    levels: Option<&[LevelImages]>,
    best: Option<&BestStep>,
    refit: Option<&Result<Refit, String>>,
    target: &Target,
    backend: &dyn Backend,
    provenance: &Provenance,
    existing: Existing,
) -> anyhow::Result<()> {
    let last_step = records.last().map_or(0, |r| r.report.step);
    let observation = target.observation.as_deref();
    let holdout = observation.is_some_and(|o| o.spec.is_holdout());
    let metrics = Metrics {
        method: info.name,
        backend: backend.kind().to_string(),
        adapter: backend.adapter_name(),
        image: &provenance.image.name,
        size: target.size,
        rng: provenance.rng,
        params: params.resolved(info.params)?,
        provenance,
        observation: observation.map(|o| ObservationSummary {
            spec: o.spec.clone(),
            observed: o.observed_pixels.len(),
            training: o.split.train.len(),
            validation: o.split.validation.len(),
            unobserved: o.split.unobserved.len(),
        }),
        baselines: observation
            .filter(|o| o.baselines.len() == 2)
            .map(|o| BaselineScores {
                delaunay_linear_db: o.baselines[0].scores.unobserved_db,
                nearest_db: o.baselines[1].scores.unobserved_db,
                delaunay_linear_ssim: o.baselines[0].scores.unobserved_ssim,
                nearest_ssim: o.baselines[1].scores.unobserved_ssim,
            }),
        best_validation: best.map(|b| BestSummary {
            step: b.step,
            scores: b.scores,
        }),
        refit: refit.map(|refit| match refit {
            Ok(refit) => RefitSummary::Done {
                step: refit.step,
                scores: refit.scores,
            },
            Err(why) => RefitSummary::Failed {
                failed: why.clone(),
            },
        }),
        steps: records
            .iter()
            .map(|r| {
                let mut entry = StepEntry::new(r.report.clone(), r.seconds);
                // Levels every 100th step and at the last, not every step.
                if !logs_levels(r.report.step, last_step) {
                    entry.levels = None;
                }
                // The protocol's "psnr" is that of the training (even) pixels.
                if let (true, Some(sparse)) = (holdout, &entry.sparse) {
                    entry.psnr = sparse.observed_db;
                }
                entry
            })
            .collect(),
    };
    let size = target.size;
    let picture = |pixels: &[f32]| Arc::new(color_image_from_rgb(pixels, size));
    let kept: Vec<SheetCell> = records
        .iter()
        .filter_map(|r| Some(figures::step_cell(&r.report, picture(r.image.as_deref()?))))
        .collect();
    let last = records
        .iter()
        .rev()
        .find_map(|r| r.image.as_deref())
        .unwrap_or(&target.pixels);
    // A method that refines internally: its trajectory is the final network's iterations.
    let iterates = iterates.map(|images| {
        let cells = images
            .iter()
            .map(|image| {
                (
                    picture(image),
                    psnr_from_mse(host_mse(image, &target.pixels)),
                )
            })
            .collect();
        (last_step, cells)
    });
    let trajectory = figures::trajectory_sheet(
        info,
        provenance,
        picture(&target.pixels),
        if iterates.is_some() { Vec::new() } else { kept },
        iterates,
    );
    let reports: Vec<&StepReport> = records.iter().map(|r| &r.report).collect();
    let runs = [(info, reports)];
    let mut figure = figures::curves_figure(provenance, &runs);
    if let Some(observation) = observation {
        figures::add_sparse_curves(&mut figure, &runs, observation);
    }
    let curves = figure.render(CURVES_WIDTH_PX)?;
    let json = serde_json::to_vec_pretty(&metrics)?;
    let text = provenance.png_text();
    let png = |image: &image::RgbImage| png_bytes_with_text(image, &text);
    write_atomic(&dir.join("metrics.json"), &json, existing)?;
    let csv = metrics_csv(provenance, &metrics.steps);
    write_atomic(&dir.join("metrics.csv"), csv.as_bytes(), existing)?;
    write_atomic(
        &dir.join("final.png"),
        &png(&rgb8_from_f32(last, size, size))?,
        existing,
    )?;
    write_atomic(
        &dir.join("trajectory.png"),
        &png(&trajectory.render())?,
        existing,
    )?;
    write_atomic(&dir.join("curves.png"), &png(&curves)?, existing)?;
    if let Some(levels) = levels {
        let pictures: Vec<_> = levels
            .iter()
            .map(figures::LevelPictures::from_levels)
            .collect();
        let sheet = figures::scales_sheet(info, provenance, last_step, &pictures);
        write_atomic(&dir.join("scales.png"), &png(&sheet.render())?, existing)?;
    }
    if let (Some(observation), Some(last_record)) = (observation, records.last()) {
        let sheet = figures::sparse_sheet(
            info,
            provenance,
            observation,
            &target.pixels,
            (last, last_record.report.sparse),
            figures::SparseChoices {
                best,
                refit: refit.and_then(|r| r.as_ref().ok()),
            },
        );
        write_atomic(&dir.join("sparse.png"), &png(&sheet.render())?, existing)?;
    }
    Ok(())
}

/// superres.png (truth, model, bicubic, Lanczos at S, and their spectra) and superres.json.
fn write_superres(
    dir: &Path,
    info: &MethodInfo,
    truth: &Target,
    report: &superres::SuperresReport,
    rendering: &[f32],
    renderings: &superres::Renderings,
    provenance: &Provenance,
    existing: Existing,
) -> anyhow::Result<()> {
    let sheet = figures::superres_sheet(info, provenance, truth, report, rendering, renderings);
    let text = provenance.png_text();
    let spectra = figures::spectrum_figure(provenance, report).render(CURVES_WIDTH_PX)?;
    let mut picture = sheet.render();
    picture = figures::stack_vertically(&picture, &spectra);
    write_atomic(
        &dir.join("superres.png"),
        &png_bytes_with_text(&picture, &text)?,
        existing,
    )?;
    let json = serde_json::to_vec_pretty(report)?;
    write_atomic(&dir.join("superres.json"), &json, existing)
}

/// Width of curves.png.
const CURVES_WIDTH_PX: u32 = 1200;

/// compare.png (the target and every method's last image) and, for several methods, curves.png
/// of them all, in the run's output folder.
fn write_summary(
    out: &Path,
    target: &Target,
    finished: &[(&MethodInfo, Vec<StepReport>, Vec<f32>)],
    provenance: &Provenance,
    existing: Existing,
) -> anyhow::Result<()> {
    let size = target.size;
    let picture = |pixels: &[f32]| Arc::new(color_image_from_rgb(pixels, size));
    let outputs = finished
        .iter()
        .filter_map(|(info, reports, image)| {
            Some((*info, figures::step_cell(reports.last()?, picture(image))))
        })
        .collect();
    let sheet = figures::compare_sheet(provenance, picture(&target.pixels), outputs);
    let text = provenance.png_text();
    write_atomic(
        &out.join("compare.png"),
        &png_bytes_with_text(&sheet.render(), &text)?,
        existing,
    )?;
    if finished.len() > 1 {
        let runs: Vec<_> = finished
            .iter()
            .map(|(info, reports, _)| (*info, reports.iter().collect()))
            .collect();
        let curves = figures::curves_figure(provenance, &runs).render(CURVES_WIDTH_PX)?;
        write_atomic(
            &out.join("curves.png"),
            &png_bytes_with_text(&curves, &text)?,
            existing,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::training::LEARNING_RATE;

    fn parse_from(args: &[&str]) -> (Cli, ArgMatches) {
        let matches = command().try_get_matches_from(args).unwrap();
        let mut cli = Cli::from_arg_matches(&matches).unwrap();
        cli.window.params = parameter_values(&matches).unwrap();
        (cli, matches)
    }

    #[test]
    fn sgd_without_a_learning_rate_runs_and_reports_sgds_rate() {
        let out = std::env::temp_dir().join(format!("inrlab-cli-lr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let out_arg = out.display().to_string();
        let (cli, matches) = parse_from(&[
            "inrlab",
            "run",
            "--method",
            "fourier-mlp",
            "--optimizer",
            "sgd",
            "--steps",
            "2",
            "--size",
            "16",
            "--frequencies",
            "8",
            "--width-1",
            "8",
            "--width-2",
            "0",
            "--backend",
            "cpu",
            "--out",
            &out_arg,
        ]);
        let run_matches = matches.subcommand_matches("run").unwrap();
        let values = parameter_values(run_matches).unwrap();
        assert_eq!(values.explicit("lr"), None);
        assert_eq!(values.get(&LEARNING_RATE), 1.0);
        let Some(Command::Run(args)) = &cli.command else {
            panic!("run was parsed")
        };
        run(args, &cli.window, run_matches).unwrap();
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
        assert_eq!(metrics["params"]["lr"], 1.0, "{}", metrics["params"]);
        assert_eq!(metrics["params"]["optimizer"], "sgd");
        assert_eq!(metrics["params"]["batch"], 0.0);
        assert_eq!(metrics["params"]["jitter"], "off");
        let _ = std::fs::remove_dir_all(&out);
    }

    fn run_line(line: &[&str]) -> anyhow::Result<()> {
        let (cli, matches) = parse_from(line);
        let run_matches = matches.subcommand_matches("run").unwrap();
        let Some(Command::Run(args)) = &cli.command else {
            panic!("run was parsed")
        };
        run(args, &cli.window, run_matches)
    }

    fn psnrs(dir: &Path) -> Vec<f64> {
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
        (metrics["steps"].as_array().unwrap().iter())
            .map(|s| s["psnr"].as_f64().unwrap())
            .collect()
    }

    /// Every file says how it was made: the PNGs, metrics.json and metrics.csv carry the
    /// record, and `--config <any of them>` makes the same PSNRs again (bit-identical on the
    /// CPU backend), with options beside it overriding the file's.
    #[test]
    fn a_run_is_made_again_from_any_of_its_files() {
        let dir = std::env::temp_dir().join(format!("inrlab-cli-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let image = dir.join("picture.png");
        std::fs::create_dir_all(&dir).unwrap();
        image::RgbImage::from_fn(30, 20, |x, y| image::Rgb([x as u8 * 8, y as u8 * 12, 99]))
            .save(&image)
            .unwrap();
        let (first, image_arg) = (dir.join("first"), image.display().to_string());
        let first_arg = first.display().to_string();
        run_line(&[
            "inrlab",
            "run",
            "--method",
            "fourier-mlp",
            "--steps",
            "6",
            "--size",
            "16",
            "--frequencies",
            "8",
            "--width-1",
            "8",
            "--width-2",
            "0",
            "--lr",
            "0.01",
            "--seed",
            "3",
            "--image",
            &image_arg,
            "--backend",
            "cpu",
            "--out",
            &first_arg,
        ])
        .unwrap();
        let reference = psnrs(&first);
        assert_eq!(reference.len(), 6);
        let csv = std::fs::read_to_string(first.join("metrics.csv")).unwrap();
        assert!(csv.starts_with("# inrlab "), "{csv}");
        assert!(
            csv.contains(&format!("\n{}\n", Provenance::CSV_STEP_COLUMNS)),
            "{csv}"
        );
        assert_eq!(csv.lines().filter(|l| !l.starts_with('#')).count(), 7);
        let files = [
            "final.png",
            "trajectory.png",
            "curves.png",
            "compare.png",
            "metrics.json",
            "metrics.csv",
        ];
        for (n, file) in files.into_iter().enumerate() {
            let again = dir.join(format!("again{n}"));
            let (config, again_arg) = (
                first.join(file).display().to_string(),
                again.display().to_string(),
            );
            run_line(&["inrlab", "run", "--config", &config, "--out", &again_arg]).unwrap();
            assert_eq!(psnrs(&again), reference, "from {file}");
        }
        // Beside the file, --steps and --seed win.
        let other = dir.join("other");
        let (config, other_arg) = (
            first.join("final.png").display().to_string(),
            other.display().to_string(),
        );
        run_line(&[
            "inrlab", "run", "--config", &config, "--steps", "3", "--seed", "4", "--out",
            &other_arg,
        ])
        .unwrap();
        let changed = psnrs(&other);
        assert_eq!(changed.len(), 3);
        assert_ne!(changed[..], reference[..3], "another seed, other weights");
        // The record's command line, as the window copies it, makes the same run.
        let record = Provenance::read(&first.join("final.png")).unwrap();
        let line = record.command_line("fourier-mlp").unwrap();
        assert!(
            line.contains(" --image ") && line.contains(" --seed 3 "),
            "{line}"
        );
        let copied = dir.join("copied").display().to_string();
        let mut words: Vec<&str> = line.split(' ').collect();
        *words.last_mut().unwrap() = &copied;
        words.insert(0, "inrlab");
        words.remove(1); // "inrlab" again
        run_line(&words).unwrap();
        assert_eq!(psnrs(&dir.join("copied")), reference, "from {line}");
        // The image changed since: named, with the hash the run used.
        image::RgbImage::from_pixel(30, 20, image::Rgb([1, 2, 3]))
            .save(&image)
            .unwrap();
        let error = format!(
            "{:#}",
            run_line(&["inrlab", "run", "--config", &config, "--out", &other_arg]).unwrap_err()
        );
        assert!(error.contains("has changed since"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A masked run: metrics.json carries the set scores, the baselines, the mask and the best
    /// validation step; sparse.png is drawn; `--config` remakes the run; methods that cannot fit
    /// from a mask and malformed masks are refused.
    #[test]
    fn a_masked_run_scores_its_sets_and_is_made_again_from_its_metrics() {
        let dir = std::env::temp_dir().join(format!("inrlab-cli-mask-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = dir.display().to_string();
        let line = [
            "inrlab",
            "run",
            "--method",
            "fourier-ridge,fourier-mlp",
            "--steps",
            "12",
            "--size",
            "32",
            "--backend",
            "cpu",
            "--mask",
            "random:0.2",
            "--validation",
            "0.2",
            "--refit",
            "--out",
            &out,
        ];
        run_line(&line).unwrap();
        let metrics: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("fourier-mlp").join("metrics.json")).unwrap(),
        )
        .unwrap();
        let baselines = &metrics["baselines"];
        let delaunay = baselines["delaunay_linear_db"].as_f64().unwrap();
        assert!(
            delaunay > baselines["nearest_db"].as_f64().unwrap(),
            "{baselines}"
        );
        let observation = &metrics["observation"];
        assert_eq!(observation["mask"], "random:0.2");
        assert_eq!(
            observation["observed"].as_u64().unwrap() + observation["unobserved"].as_u64().unwrap(),
            32 * 32
        );
        let steps = metrics["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 12);
        for key in [
            "psnr",
            "unobserved_db",
            "observed_db",
            "validation_db",
            "unobserved_ssim",
        ] {
            assert!(steps[11][key].as_f64().is_some(), "step 12 lacks {key}");
        }
        let best_step = metrics["best_validation"]["step"].as_u64().unwrap();
        // --refit: fitted again on every observed pixel to the best step, scored without a
        // validation share.
        let refit = &metrics["refit"];
        assert_eq!(refit["step"].as_u64(), Some(best_step), "{refit}");
        assert!(refit["unobserved_db"].as_f64().is_some() && refit["validation_db"].is_null());
        // metrics.csv carries the set scores too.
        let csv = std::fs::read_to_string(dir.join("fourier-mlp").join("metrics.csv")).unwrap();
        let rows: Vec<&str> = csv.lines().filter(|l| !l.starts_with('#')).collect();
        let header: Vec<&str> = rows[0].split(',').collect();
        let last: Vec<&str> = rows[12].rsplitn(header.len() - 1, ',').collect();
        let column = |name: &str| {
            let from_end = header.len() - 1 - header.iter().position(|h| *h == name).unwrap();
            last[from_end].parse::<f64>().unwrap()
        };
        assert_eq!(
            column("unobserved_db"),
            steps[11]["unobserved_db"].as_f64().unwrap()
        );
        assert_eq!(
            column("validation_db"),
            steps[11]["validation_db"].as_f64().unwrap()
        );
        let sheet = image::open(dir.join("fourier-mlp").join("sparse.png"))
            .unwrap()
            .to_rgb8();
        let distinct: std::collections::BTreeSet<[u8; 3]> = sheet.pixels().map(|p| p.0).collect();
        assert!(distinct.len() > 50 && sheet.width() >= 4 * crate::sheet::MIN_CELL_PX as u32);
        // The mask is part of the record: the run is made again from its metrics.
        let record = Provenance::read(&dir.join("fourier-mlp").join("metrics.json")).unwrap();
        assert_eq!(record.observation.as_ref().unwrap().mask, "random:0.2");
        assert!(record.observation.as_ref().unwrap().refit);
        let again = dir.join("again");
        let metrics_path = dir.join("fourier-ridge").join("metrics.json");
        run_line(&[
            "inrlab",
            "run",
            "--config",
            &metrics_path.display().to_string(),
            "--out",
            &again.display().to_string(),
        ])
        .unwrap();
        let unobserved = |path: &Path| {
            let metrics: serde_json::Value =
                serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            metrics["steps"][0]["unobserved_db"].as_f64().unwrap()
        };
        assert_eq!(
            unobserved(&metrics_path),
            unobserved(&again.join("metrics.json"))
        );
        // A method that cannot fit from a mask is refused before anything runs.
        let refused = run_line(&[
            "inrlab",
            "run",
            "--method",
            "wavelet",
            "--mask",
            "grid:2",
            "--size",
            "16",
            "--out",
            &dir.join("refused").display().to_string(),
        ]);
        assert!(format!("{:#}", refused.unwrap_err()).contains("cannot fit"));
        let bad = run_line(&[
            "inrlab",
            "run",
            "--method",
            "fourier-ridge",
            "--mask",
            "random:7",
            "--out",
            &dir.join("bad").display().to_string(),
        ]);
        assert!(bad.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn superres_and_holdout_write_their_numbers() {
        let dir = std::env::temp_dir().join(format!("inrlab-cli-superres-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        run_line(&[
            "inrlab",
            "run",
            "--method",
            "fourier-mlp",
            "--steps",
            "20",
            "--size",
            "32",
            "--backend",
            "cpu",
            "--superres",
            "2",
            "--out",
            &dir.join("superres").display().to_string(),
        ])
        .unwrap();
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("superres").join("superres.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report["factor"], 2);
        for key in ["model_db", "bicubic_db", "lanczos_db"] {
            assert!(report[key].as_f64().unwrap() > 10.0, "{key}: {report}");
        }
        for key in ["model", "bicubic", "lanczos", "truth"] {
            assert!(report["gradient"][key].as_f64().unwrap() > 0.0);
            assert!(report["spectrum"]["hf_share"][key].as_f64().unwrap() >= 0.0);
            assert!(!report["spectrum"][key].as_array().unwrap().is_empty());
        }
        let sheet = image::open(dir.join("superres").join("superres.png"))
            .unwrap()
            .to_rgb8();
        assert!(sheet.width() >= 4 * crate::sheet::MIN_CELL_PX as u32);
        run_line(&[
            "inrlab",
            "run",
            "--method",
            "fourier-mlp",
            "--steps",
            "5",
            "--size",
            "16",
            "--backend",
            "cpu",
            "--holdout",
            "--width-1",
            "32",
            "--width-2",
            "32",
            "--width-3",
            "32",
            "--frequencies",
            "16",
            "--out",
            &dir.join("holdout").display().to_string(),
        ])
        .unwrap();
        let metrics: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("holdout").join("metrics.json")).unwrap(),
        )
        .unwrap();
        let step = &metrics["steps"][4];
        assert!(step["heldout_db"].as_f64().is_some() && step["psnr"].as_f64().is_some());
        // The protocol's σ = 10 unless given; the widths as given.
        assert_eq!(metrics["params"]["sigma"], 10.0);
        assert_eq!(metrics["params"]["width-1"], 32.0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Several methods: each folder gets its captioned trajectory sheet and curves plot (the
    /// wavelet operator its level sheet), and the run's folder the comparison and the curves of
    /// them all; every one decodes at the size its cells need and carries the run's record.
    #[test]
    fn a_run_writes_captioned_sheets_and_plots() {
        let dir = std::env::temp_dir().join(format!("inrlab-cli-sheets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = dir.display().to_string();
        run_line(&[
            "inrlab",
            "run",
            "--method",
            "multiscale,fourier-mlp,wavelet",
            "--steps",
            "5",
            "--size",
            "16",
            "--backend",
            "cpu",
            "--out",
            &out,
        ])
        .unwrap();
        let open = |path: PathBuf| {
            let picture = image::open(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .to_rgb8();
            let distinct: std::collections::BTreeSet<[u8; 3]> =
                picture.pixels().map(|p| p.0).collect();
            assert!(distinct.len() > 20, "{} looks blank", path.display());
            let record = Provenance::read(&path).unwrap();
            assert_eq!(record.working_size, 16);
            (picture, record)
        };
        let cell = crate::sheet::MIN_CELL_PX as u32;
        // Target and three methods, each cell magnified to at least 128 pixels.
        let (compare, record) = open(dir.join("compare.png"));
        assert!(compare.width() >= 4 * cell, "{:?}", compare.dimensions());
        assert_eq!(record.methods.len(), 3);
        let (curves, _) = open(dir.join("curves.png"));
        assert!(curves.width() >= 1000 && curves.height() > curves.width() / 2);
        // multiscale's trajectory: the target and its scales in one row.
        let (trajectory, record) = open(dir.join("multiscale").join("trajectory.png"));
        let scales = open_scales_count(&dir.join("multiscale").join("metrics.json"));
        assert!(trajectory.width() >= (scales as u32 + 1).min(8) * cell);
        assert_eq!(record.methods.keys().collect::<Vec<_>>(), ["multiscale"]);
        for method in ["fourier-mlp", "wavelet"] {
            open(dir.join(method).join("trajectory.png"));
            open(dir.join(method).join("curves.png"));
        }
        // Levels 4², 8², 16² side by side, rows of rollout, prediction and truth.
        let (levels, _) = open(dir.join("wavelet").join("scales.png"));
        assert!(levels.width() >= 3 * cell && levels.height() >= 3 * cell);
        // A second run into the same folder is refused before anything is computed.
        let error = run_line(&[
            "inrlab",
            "run",
            "--method",
            "multiscale",
            "--size",
            "16",
            "--out",
            &out,
        ])
        .unwrap_err();
        assert!(format!("{error:#}").contains("already exists"), "{error:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn open_scales_count(metrics: &Path) -> usize {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(metrics).unwrap()).unwrap();
        json["steps"].as_array().unwrap().len()
    }

    /// `--record run.png --every 3`: an animated PNG of steps 3, 6, 9 and the last (10),
    /// magnified to 256², carrying the run's record; an existing file is refused.
    #[test]
    fn a_run_records_every_nth_step_into_an_animation() {
        let dir = std::env::temp_dir().join(format!("inrlab-cli-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (movie, out) = (dir.join("run.png"), dir.join("out"));
        let (movie_arg, out_arg) = (movie.display().to_string(), out.display().to_string());
        let line = [
            "inrlab",
            "run",
            "--method",
            "trajectory",
            "--steps",
            "10",
            "--hidden",
            "64",
            "--size",
            "16",
            "--backend",
            "cpu",
            "--record",
            &movie_arg,
            "--every",
            "3",
            "--out",
            &out_arg,
        ];
        run_line(&line).unwrap();
        let bytes = std::fs::read(&movie).unwrap();
        let reader = png::Decoder::new(std::io::Cursor::new(&bytes))
            .read_info()
            .unwrap();
        let info = reader.info();
        assert_eq!(info.animation_control.unwrap().num_frames, 4);
        assert_eq!((info.width, info.height), (256, 256));
        let record = Provenance::read(&movie).unwrap();
        assert_eq!(record.methods.keys().collect::<Vec<_>>(), ["trajectory"]);
        // Again, into the same file: refused before anything runs.
        let again = dir.join("again").display().to_string();
        let mut second = line;
        *second.last_mut().unwrap() = &again;
        let error = format!("{:#}", run_line(&second).unwrap_err());
        assert!(error.contains("already exists"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `inrlab run --method wavelet --dataset <folder>`: metrics.json with the loss every
    /// step and held-out levels at the last, samples.png with a row per noise canvas.
    #[test]
    fn a_folder_run_writes_its_metrics_and_samples() {
        let dir = std::env::temp_dir().join(format!("inrlab-cli-folder-{}", std::process::id()));
        let (folder, out) = (dir.join("images"), dir.join("out"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..4u8 {
            image::RgbImage::from_fn(20, 24, |x, y| {
                image::Rgb([x as u8 * 12, y as u8 * 9, 60 * i])
            })
            .save(folder.join(format!("{i}.png")))
            .unwrap();
        }
        std::fs::write(folder.join("notes.txt"), "not an image").unwrap();
        let (folder_arg, out_arg) = (folder.display().to_string(), out.display().to_string());
        let line = [
            "inrlab",
            "run",
            "--method",
            "wavelet",
            "--dataset",
            &folder_arg,
            "--size",
            "32",
            "--steps",
            "4",
            "--channels",
            "8",
            "--backend",
            "cpu",
            "--out",
            &out_arg,
        ];
        run_line(&line).unwrap();
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
        assert_eq!(metrics["training_images"], 3);
        assert_eq!(metrics["held_out_images"], 1);
        assert_eq!(metrics["skipped"].as_array().unwrap().len(), 1);
        let steps = metrics["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 4);
        assert!(
            steps
                .iter()
                .all(|s| s["loss"].as_f64().is_some_and(f64::is_finite))
        );
        // Held-out scores at the early steps (1, 2) and the last, not at step 3.
        assert!(steps[0].get("levels").is_some());
        assert!(steps[2].get("levels").is_none());
        let sizes: Vec<u64> = (steps[3]["levels"].as_array().unwrap().iter())
            .map(|l| l["size"].as_u64().unwrap())
            .collect();
        assert_eq!(sizes, [8, 16, 32]);
        let samples = image::open(out.join("samples.png")).unwrap().to_rgb8();
        // Six captioned rows of four cells (4×4 to 32×32, each magnified to 128²).
        let cell = crate::sheet::MIN_CELL_PX as u32;
        let (width, height) = samples.dimensions();
        assert!(width >= 4 * cell, "{width}");
        assert!(height >= 6 * cell && height < 11 * cell, "{height}");
        let record = Provenance::read(&out.join("samples.png")).unwrap();
        let names: Vec<&str> = record
            .dataset_files
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["0.png", "1.png", "2.png", "3.png"]);
        assert!(record.dataset_files.iter().all(|f| f.sha256.len() == 64));
        // Written files are never silently overwritten.
        assert!(run_line(&line).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_window_takes_methods_and_method_parameters() {
        let (cli, _) = parse_from(&[
            "inrlab",
            "--methods",
            "learned-refine,fourier-mlp",
            "--optimizer",
            "sgd",
        ]);
        assert!(cli.command.is_none());
        assert_eq!(
            cli.window.methods.as_deref(),
            Some(&["learned-refine".to_owned(), "fourier-mlp".to_owned()][..])
        );
        assert_eq!(cli.window.params.explicit("optimizer"), Some(1.0));
        assert!(
            command()
                .try_get_matches_from(["inrlab", "--methods", "no-such-method"])
                .is_err()
        );
    }
}
