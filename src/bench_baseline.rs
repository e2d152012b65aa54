//! The bench's baselines, measured in the same run: the seed notebook's numpy recipes
//! (`scripts/numpy_baseline.py`) and the PyTorch training step (`scripts/pytorch_baseline.py`),
//! both built into the binary and run by the Python the user names, so inrlab's speed is quoted
//! against this machine at this hour, never against a table's figure from another machine.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde::de::DeserializeOwned;

const NUMPY_SCRIPT: &str = include_str!("../scripts/numpy_baseline.py");
const PYTORCH_SCRIPT: &str = include_str!("../scripts/pytorch_baseline.py");

/// What `numpy_baseline.py --json` prints.
#[derive(Deserialize, Debug)]
pub struct NumpyBaseline {
    /// numpy's version, for the report.
    pub numpy: String,
    /// Seconds per suite method, keyed by the working size ("128").
    suites: BTreeMap<String, BTreeMap<String, f64>>,
    operations: Vec<NumpyOperation>,
}

#[derive(Deserialize, Debug)]
struct NumpyOperation {
    label: String,
    ms: f64,
    gflops: f64,
}

impl NumpyBaseline {
    /// numpy's seconds for `method` at `size`, when the script timed that size.
    pub fn seconds(&self, size: usize, method: &str) -> Option<f64> {
        self.suites.get(&size.to_string())?.get(method).copied()
    }

    /// numpy's product rates, one line each, beside the backends' table.
    pub fn operation_lines(&self) -> Vec<String> {
        self.operations
            .iter()
            .map(|op| {
                format!(
                    "numpy {:<28} {:>8.2} ms  {:>7.1} GFLOP/s",
                    op.label, op.ms, op.gflops
                )
            })
            .collect()
    }
}

/// Runs the numpy baseline at `sizes`.
pub fn numpy(python: &str, sizes: &[usize]) -> Result<NumpyBaseline, String> {
    let mut args = vec!["--json".to_owned()];
    args.extend(sizes.iter().map(usize::to_string));
    run_script(python, NUMPY_SCRIPT, &args, "numpy")
}

/// What `pytorch_baseline.py --json` prints.
#[derive(Deserialize, Debug)]
pub struct PytorchBaseline {
    pub torch: String,
    /// The device as the script describes it ("cpu, threads 2", or the GPU's name and CUDA).
    #[serde(rename = "where")]
    pub device: String,
    steps: Vec<PytorchStep>,
}

#[derive(Deserialize, Debug)]
struct PytorchStep {
    size: usize,
    optimizer: String,
    wall_ms: f64,
    gpu_ms: Option<f64>,
}

impl PytorchBaseline {
    /// Median wall-clock ms per step, and on CUDA the GPU time from CUDA events.
    pub fn step_ms(&self, size: usize, optimizer: &str) -> Option<(f64, Option<f64>)> {
        self.steps
            .iter()
            .find(|step| step.size == size && step.optimizer == optimizer)
            .map(|step| (step.wall_ms, step.gpu_ms))
    }
}

/// Where the PyTorch step runs and how it is timed: the same sizes, optimizers and step counts
/// as inrlab's own training bench.
pub struct PytorchRequest<'a> {
    /// "cpu" or "cuda".
    pub device: &'a str,
    pub sizes: &'a [usize],
    pub optimizers: &'a [&'a str],
    pub warmup: usize,
    pub timed: usize,
    /// CPU threads, as many as the CPU backend uses.
    pub threads: usize,
}

/// Runs the PyTorch baseline as `request` says.
pub fn pytorch(python: &str, request: &PytorchRequest) -> Result<PytorchBaseline, String> {
    let join = |items: Vec<String>| items.join(",");
    let args = vec![
        "--json".to_owned(),
        format!("--device={}", request.device),
        format!(
            "--sizes={}",
            join(request.sizes.iter().map(usize::to_string).collect())
        ),
        format!(
            "--optimizers={}",
            join(request.optimizers.iter().map(|o| o.to_string()).collect())
        ),
        format!("--warmup={}", request.warmup),
        format!("--timed={}", request.timed),
        format!("--threads={}", request.threads),
    ];
    run_script(python, PYTORCH_SCRIPT, &args, "torch")
}

/// Runs `script` on `python`'s standard input with `args` and reads the JSON object it prints
/// last; the error says in one line why it could not (no such interpreter, `module` not
/// installed, the script failed).
fn run_script<T: DeserializeOwned>(
    python: &str,
    script: &str,
    args: &[String],
    module: &str,
) -> Result<T, String> {
    let mut child = Command::new(python)
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("could not start {python}: {error}"))?;
    // The script is a few kilobytes, well under a pipe's buffer, so writing it all before
    // reading cannot stall.
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(script.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|error| format!("{python} did not finish: {error}"))?;
    if let Some(Err(error)) = written {
        return Err(format!("could not hand the script to {python}: {error}"));
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains(&format!("No module named '{module}'")) {
            return Err(format!("{module} is not installed for {python}"));
        }
        let last = stderr.lines().rev().find(|line| !line.trim().is_empty());
        return Err(format!(
            "{python} failed ({}): {}",
            output.status,
            last.unwrap_or("no message")
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = stdout.lines().rev().find(|line| line.starts_with('{'));
    json.and_then(|line| serde_json::from_str(line).ok())
        .ok_or_else(|| format!("{python} printed no baseline: {}", stdout.trim()))
}

/// `reference` against `measured` (both times) in words that read the right way round either
/// way: "2.1× faster" or "3.0× slower".
pub fn speed_against(reference: f64, measured: f64) -> String {
    let ratio = reference / measured;
    if ratio >= 1.0 {
        format!("{ratio:>5.1}× faster")
    } else {
        format!("{:>5.1}× slower", 1.0 / ratio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interpreter the baseline tests use: INRLAB_BASELINE_PYTHON, else python3.
    fn python() -> String {
        std::env::var("INRLAB_BASELINE_PYTHON").unwrap_or_else(|_| "python3".into())
    }

    #[test]
    fn speed_reads_the_right_way_round() {
        assert_eq!(speed_against(4.0, 2.0), "  2.0× faster");
        assert_eq!(speed_against(1.0, 3.0), "  3.0× slower");
    }

    /// A missing interpreter is a one-line reason, not a panic.
    #[test]
    fn a_missing_python_is_reported() {
        let error = numpy("/nonexistent/python3", &[16]).unwrap_err();
        assert!(
            error.contains("could not start /nonexistent/python3"),
            "{error}"
        );
    }

    /// The built-in numpy script's JSON is what the bench reads: where numpy is installed,
    /// every suite method has its seconds; without it, the reason says so.
    #[test]
    fn the_numpy_script_gives_the_suite_seconds() {
        match numpy(&python(), &[16]) {
            Ok(baseline) => {
                for method in crate::bench::SUITE_METHODS {
                    let seconds = baseline.seconds(16, method);
                    assert!(seconds.is_some_and(|s| s > 0.0), "{method}: {seconds:?}");
                }
                assert_eq!(baseline.seconds(32, "refine"), None);
                assert_eq!(baseline.operation_lines().len(), 3);
            }
            Err(error) => assert!(error.contains("numpy is not installed"), "{error}"),
        }
    }

    /// The built-in PyTorch script likewise, on the CPU at a tiny size.
    #[test]
    fn the_pytorch_script_gives_the_step_times() {
        let request = PytorchRequest {
            device: "cpu",
            sizes: &[8],
            optimizers: &["adam", "sgd"],
            warmup: 1,
            timed: 2,
            threads: 1,
        };
        match pytorch(&python(), &request) {
            Ok(baseline) => {
                for optimizer in ["adam", "sgd"] {
                    let step = baseline.step_ms(8, optimizer);
                    assert!(step.is_some_and(|(wall, gpu)| wall > 0.0 && gpu.is_none()));
                }
                assert!(
                    baseline.device.starts_with("cpu, threads 1"),
                    "{baseline:?}"
                );
            }
            Err(error) => assert!(error.contains("torch is not installed"), "{error}"),
        }
    }
}
