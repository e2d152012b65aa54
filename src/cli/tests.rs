use super::*;
use std::path::{Path, PathBuf};

use clap::{ArgMatches, FromArgMatches};

use crate::provenance::Provenance;

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
        "inrlab", "run", "--config", &config, "--steps", "3", "--seed", "4", "--out", &other_arg,
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
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("superres").join("superres.json")).unwrap())
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
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("holdout").join("metrics.json")).unwrap())
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
        let distinct: std::collections::BTreeSet<[u8; 3]> = picture.pixels().map(|p| p.0).collect();
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
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(metrics).unwrap()).unwrap();
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
