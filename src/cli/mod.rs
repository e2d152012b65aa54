//! The command line: `inrlab` opens the window, `inrlab run` runs a method headless,
//! `inrlab bench` measures. Method parameters (`--spectral-radius 0.9`, …) are generated from
//! the registry's parameter specs, so a new method's parameters appear here without edits.

mod config;
mod dataset;
mod files;
mod progress;
mod run;
#[cfg(test)]
mod tests;

pub use run::run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::builder::TypedValueParser as _;
use clap::{Arg, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::compute::BackendChoice;
use crate::methods::{self, MethodInfo, ParamValues};
use crate::rng::RngKind;
use crate::sparse::ObservationSpec;
use crate::target::{Fit, Target, load_image};

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
    /// The Python that measures the baselines in this run: numpy's seed-notebook recipes at
    /// the suite's sizes, PyTorch's training step beside inrlab's (on CUDA beside a GPU
    /// backend); "none" to skip them.
    #[arg(long, default_value = "python3", value_name = "PYTHON")]
    pub python: String,
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

/// Whether option `id` was given on the command line (not its default).
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches.try_contains_id(id).unwrap_or(false)
        && matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
}
