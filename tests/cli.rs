//! `inrlab run` as a user types it (the built binary): checkpoints every N steps, a run resumed
//! from one ending on the uninterrupted run's numbers with every step in its metrics, the same
//! run made again from scratch with `--config <checkpoint>`, and the refusals (an existing
//! file, a method that is not trained, a file that is no checkpoint), each in one line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

fn inrlab(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_inrlab"))
        .args(args)
        .output()
        .expect("the inrlab binary runs")
}

fn succeeds(args: &[&str]) {
    let output = inrlab(args);
    assert!(
        output.status.success(),
        "inrlab {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Checks that the run is refused with one line on stderr that says `why`.
fn refused(args: &[&str], why: &str) {
    let output = inrlab(args);
    assert!(!output.status.success(), "inrlab {} ran", args.join(" "));
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(why), "{stderr}");
}

/// (step, PSNR, loss) of every step in a metrics.json.
fn steps(dir: &Path) -> Vec<(u64, f64, f64)> {
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    (metrics["steps"].as_array().unwrap().iter())
        .map(|s| {
            (
                s["step"].as_u64().unwrap(),
                s["psnr"].as_f64().unwrap(),
                s["loss"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inrlab-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

/// `--checkpoint-every 10` over 20 steps writes steps 10 and 20; `--resume` from step 10 ends
/// where the uninterrupted run ended, bit for bit, and its metrics list steps 1–20;
/// `--config <checkpoint>` trains the same run again from scratch.
#[test]
fn a_run_resumed_from_its_checkpoint_ends_on_the_same_numbers() {
    let dir = temp_dir("resume");
    let (first, resumed, again) = (dir.join("first"), dir.join("resumed"), dir.join("again"));
    let line = [
        "run",
        "--method",
        "fourier-mlp",
        "--steps",
        "20",
        "--size",
        "32",
        "--frequencies",
        "16",
        "--width-1",
        "16",
        "--width-2",
        "16",
        "--batch",
        "128",
        "--jitter",
        "on",
        "--backend",
        "cpu",
        "--checkpoint-every",
        "10",
        "--out",
    ];
    let mut args = line.to_vec();
    let first_arg = text(&first);
    args.push(&first_arg);
    succeeds(&args);
    let checkpoint = first.join("checkpoint-step-000010.safetensors");
    assert!(checkpoint.exists());
    assert!(first.join("checkpoint-step-000020.safetensors").exists());
    let reference = steps(&first);
    assert_eq!(reference.len(), 20);

    let (checkpoint_arg, resumed_arg) = (text(&checkpoint), text(&resumed));
    succeeds(&["run", "--resume", &checkpoint_arg, "--out", &resumed_arg]);
    assert_eq!(
        steps(&resumed),
        reference,
        "steps 1–10 from the checkpoint, 11–20 resumed"
    );
    let csv = std::fs::read_to_string(resumed.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| !l.starts_with('#')).count(), 21);

    let again_arg = text(&again);
    succeeds(&["run", "--config", &checkpoint_arg, "--out", &again_arg]);
    assert_eq!(steps(&again), reference, "the same run from scratch");

    // Checkpoints are outputs like the others: not replaced unasked, before anything runs.
    refused(&args, "already exists");
    args.push("--overwrite");
    succeeds(&args);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The wavelet operator trained on a folder resumes from a checkpoint to the same numbers.
#[test]
fn a_folder_run_resumes_from_its_checkpoint() {
    let dir = temp_dir("folder");
    let folder = common::make_folder("cli-checkpoint-folder", 5);
    let (first, resumed) = (text(&dir.join("first")), text(&dir.join("resumed")));
    let folder_arg = text(&folder);
    let line = "run --backend cpu --method wavelet --size 32 --steps 6 --channels 8 --blocks 2 \
                --noise-sigma 0.1 --checkpoint-every 3";
    let mut args: Vec<&str> = line.split_whitespace().collect();
    args.extend(["--dataset", &folder_arg, "--out", &first]);
    succeeds(&args);
    let checkpoint = text(&dir.join("first").join("checkpoint-step-000003.safetensors"));
    succeeds(&["run", "--resume", &checkpoint, "--out", &resumed]);
    assert_eq!(steps(&dir.join("resumed")), steps(&dir.join("first")));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&folder);
}

/// A method that is not trained, several methods, a file that is no checkpoint, a checkpoint
/// at its run's last step and a changed architecture are refused, each in one line.
#[test]
fn what_cannot_be_checkpointed_or_resumed_is_refused_in_one_line() {
    let dir = temp_dir("refusals");
    let out = text(&dir.join("out"));
    refused(
        &[
            "run",
            "--method",
            "trajectory",
            "--checkpoint-every",
            "5",
            "--out",
            &out,
        ],
        "trajectory is not trained",
    );
    refused(
        &[
            "run",
            "--method",
            "fourier-mlp,coord-mlp",
            "--checkpoint-every",
            "5",
            "--out",
            &out,
        ],
        "for one method",
    );
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint at all").unwrap();
    let junk_arg = text(&junk);
    refused(
        &["run", "--resume", &junk_arg, "--out", &out],
        "not an inrlab checkpoint",
    );

    let first = dir.join("first");
    let first_arg = text(&first);
    succeeds(&[
        "run",
        "--method",
        "coord-mlp",
        "--steps",
        "4",
        "--size",
        "16",
        "--width-1",
        "8",
        "--width-2",
        "8",
        "--backend",
        "cpu",
        "--checkpoint-every",
        "4",
        "--out",
        &first_arg,
    ]);
    let last = text(&first.join("checkpoint-step-000004.safetensors"));
    refused(&["run", "--resume", &last, "--out", &out], "--steps");
    refused(
        &[
            "run",
            "--resume",
            &last,
            "--steps",
            "8",
            "--width-1",
            "9",
            "--out",
            &out,
        ],
        "network.0.weight",
    );
    refused(
        &[
            "run",
            "--resume",
            &last,
            "--method",
            "fourier-mlp",
            "--out",
            &out,
        ],
        "of coord-mlp",
    );
    // Longer, it goes on.
    succeeds(&["run", "--resume", &last, "--steps", "6", "--out", &out]);
    assert_eq!(steps(&dir.join("out")).len(), 6);
    let _ = std::fs::remove_dir_all(&dir);
}
