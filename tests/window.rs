//! Drives the real window headless (egui_kittest over the eframe app) on the built-in sample
//! at 32² with the CPU backend: frames arrive, ρ restarts only the methods it affects, Space
//! and S work, the grid and the curves fill (learned-refine's iterations and the training
//! loss included), the wavelet operator's levels fill the scales view and its per-level curves
//! the curves view (at 64², with pictures of both saved under target/tmp/screenshots), a folder
//! trains it on its images and fills the scales view with samples from noise canvases, and bad
//! files become notices. One test renders with wgpu on a device the GPU backend shares (frames
//! that stay on the GPU, and an export that waits for the step on screen).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use inrlab::app::protocol::ImageSource;
use inrlab::app::{AppOptions, InrlabApp, Settings};
use inrlab::compute::BackendChoice;
use inrlab::methods::ParamValues;

fn small_settings(selected: &[&str]) -> Settings {
    Settings {
        selected: selected.iter().map(|s| s.to_string()).collect(),
        ..Settings::default()
    }
}

fn harness(selected: &[&str], start_paused: bool) -> Harness<'static, InrlabApp> {
    harness_with(small_settings(selected), start_paused)
}

fn harness_with(settings: Settings, start_paused: bool) -> Harness<'static, InrlabApp> {
    harness_at(settings, 32, start_paused)
}

fn harness_at(
    settings: Settings,
    working_size: usize,
    start_paused: bool,
) -> Harness<'static, InrlabApp> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_eframe(move |cc| {
            InrlabApp::new(
                &cc.egui_ctx,
                AppOptions {
                    backend: BackendChoice::Cpu,
                    working_size: Some(working_size),
                    start_paused,
                    ..AppOptions::default()
                },
                Some(settings),
            )
        })
}

/// Steps the harness (with real time passing) until `done` holds or `timeout` passes.
fn step_until(
    harness: &mut Harness<'static, InrlabApp>,
    timeout: Duration,
    done: impl Fn(&InrlabApp) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        harness.step();
        if done(harness.state()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn steps_of(app: &InrlabApp, method: &str) -> usize {
    app.model().run(method).map_or(0, |r| r.steps_done())
}

fn run_id_of(app: &InrlabApp, method: &str) -> u64 {
    app.model().run(method).map_or(0, |r| r.run_id)
}

#[test]
fn starts_on_the_sample_and_frames_arrive() {
    let mut h = harness(&["trajectory", "fourier-ridge"], false);
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| {
            app.model().target.is_some() && steps_of(app, "trajectory") >= 3
        }),
        "no frames arrived"
    );
    let target = h.state().model().target.as_ref().unwrap();
    assert_eq!(target.size, 32);
    assert!(target.name.contains("sample"));
    // The grid has the target and step cells with PSNR captions.
    h.step();
    assert!(h.query_by_label_contains("target ground truth").is_some());
    assert!(h.query_all_by_label_contains(" dB").count() >= 3);
}

#[test]
fn changing_rho_restarts_only_the_methods_it_affects() {
    let mut h = harness(&["trajectory", "fourier-ridge"], false);
    assert!(step_until(&mut h, Duration::from_secs(60), |app| {
        steps_of(app, "trajectory") >= 2 && steps_of(app, "fourier-ridge") >= 1
    }));
    let trajectory_run = run_id_of(h.state(), "trajectory");
    let ridge_run = run_id_of(h.state(), "fourier-ridge");
    h.state_mut()
        .settings_mut()
        .params
        .entry("trajectory".into())
        .or_default()
        .set("spectral-radius", 0.5);
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| {
            run_id_of(app, "trajectory") > trajectory_run && steps_of(app, "trajectory") >= 2
        }),
        "trajectory did not restart with new frames"
    );
    assert_eq!(
        run_id_of(h.state(), "fourier-ridge"),
        ridge_run,
        "fourier-ridge has no ρ and must keep its run"
    );
}

/// Waits until the worker has handled every command sent before this call: it answers an image
/// it cannot decode (named after `tag`) with a notice, in order, and everything it did before
/// has arrived once the notice has (the UI takes messages, then frames).
fn worker_caught_up(harness: &mut Harness<'static, InrlabApp>, tag: &str) -> bool {
    let name = format!("{tag}.txt");
    harness.state_mut().load(ImageSource::Bytes {
        name: name.clone(),
        bytes: b"not an image".as_slice().into(),
    });
    step_until(harness, Duration::from_secs(30), |app| {
        app.model().notices.iter().any(|n| n.text.contains(&name))
    })
}

#[test]
fn space_pauses_and_s_steps_once() {
    // Enough steps that the run cannot finish before the test pauses it.
    let mut settings = small_settings(&["trajectory"]);
    settings
        .params
        .entry("trajectory".into())
        .or_default()
        .set("steps", 200.0);
    let mut h = harness_with(settings, false);
    assert!(step_until(&mut h, Duration::from_secs(60), |app| {
        steps_of(app, "trajectory") >= 1
    }));
    h.key_press(egui::Key::Space);
    h.step();
    assert!(!h.state().is_playing());
    // The worker acknowledges the pause after the step in flight; that step's frame has
    // arrived with the acknowledgement.
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| !app.model().playing),
        "the worker did not acknowledge the pause"
    );
    let paused_at = steps_of(h.state(), "trajectory");
    assert!(worker_caught_up(&mut h, "while-paused"), "no answer");
    assert_eq!(
        steps_of(h.state(), "trajectory"),
        paused_at,
        "paused but still stepping"
    );
    h.key_press(egui::Key::S);
    h.step();
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| {
            steps_of(app, "trajectory") > paused_at
        }),
        "S did not step"
    );
    assert!(worker_caught_up(&mut h, "after-one-step"), "no answer");
    assert_eq!(
        steps_of(h.state(), "trajectory"),
        paused_at + 1,
        "S stepped other than once"
    );
    h.key_press(egui::Key::Space);
    h.step();
    assert!(h.state().is_playing());
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| {
            steps_of(app, "trajectory") > paused_at + 1
        }),
        "playing again, no steps came"
    );
}

#[test]
fn grid_and_curves_have_content() {
    let mut h = harness(&["trajectory", "multiscale", "fourier-ridge"], false);
    assert!(step_until(&mut h, Duration::from_secs(90), |app| {
        steps_of(app, "trajectory") >= 3
            && steps_of(app, "multiscale") >= 1
            && steps_of(app, "fourier-ridge") >= 1
    }));
    h.state_mut().settings_mut().active_view = "trajectory".into();
    h.step();
    assert!(h.query_all_by_label_contains("step ").count() >= 3);
    h.state_mut().settings_mut().active_view = "curves".into();
    h.step();
    h.step();
    assert!(
        h.query_by_label_contains("Reservoir trajectory: best")
            .is_some()
    );
    assert!(
        h.query_by_label_contains("Fourier features + ridge: best")
            .is_some()
    );
    // Each view draws its content: labels that only it shows (compare's target heading,
    // inspect's output and error map, the multiscale method's first scale and its detail map).
    let shows: [(&str, &[&str]); 3] = [
        ("compare", &["Target"]),
        ("inspect", &["output, step ", "|error|"]),
        ("scales", &["scale 1 (ρ", "detail"]),
    ];
    for (view, labels) in shows {
        h.state_mut().settings_mut().active_view = view.into();
        h.step();
        h.step();
        for label in labels {
            assert!(
                h.query_all_by_label_contains(label).next().is_some(),
                "{view} does not show {label:?}"
            );
        }
    }
}

#[test]
fn bad_files_become_notices_and_the_image_keeps_running() {
    let mut h = harness(&["trajectory"], false);
    assert!(step_until(&mut h, Duration::from_secs(60), |app| {
        steps_of(app, "trajectory") >= 1
    }));
    let sample = inrlab::target::SAMPLE_PNG;
    // A name long enough that its notice must wrap to keep its button in the window.
    let long_name = format!("notes-{}.txt", "very-long-name-".repeat(16));
    h.state_mut().load(ImageSource::Bytes {
        name: long_name.clone(),
        bytes: b"certainly not an image".as_slice().into(),
    });
    h.state_mut().load(ImageSource::Bytes {
        name: "truncated.png".into(),
        bytes: sample[..sample.len() / 2].into(),
    });
    // A file on disk whose reason comes with its own full stop and the path.
    let junk = std::env::temp_dir().join(format!("inrlab-window-junk-{}.png", std::process::id()));
    std::fs::write(&junk, b"certainly not a PNG").unwrap();
    h.state_mut().load(ImageSource::Path(junk.clone()));
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| app
            .model()
            .notices
            .len()
            >= 3),
        "no notices"
    );
    std::fs::remove_file(&junk).unwrap();
    let notices: Vec<String> = h
        .state()
        .model()
        .notices
        .iter()
        .map(|n| n.text.clone())
        .collect();
    assert!(notices[0].contains(&long_name), "{notices:?}");
    assert!(notices[1].contains("truncated.png"), "{notices:?}");
    // Each sentence ends once, and the file is named once.
    for notice in &notices {
        assert!(!notice.contains(".."), "{notice}");
    }
    let junk = junk.display().to_string();
    assert_eq!(notices[2].matches(&junk).count(), 1, "{}", notices[2]);
    assert!(
        h.state()
            .model()
            .target
            .as_ref()
            .unwrap()
            .name
            .contains("sample")
    );
    h.step();
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1400.0, 900.0));
    let buttons: Vec<egui::Rect> = h
        .get_all_by_label_contains("dismiss")
        .map(|button| button.rect())
        .collect();
    assert_eq!(buttons.len(), 3);
    for button in buttons {
        assert!(
            window.contains_rect(button),
            "a dismiss button at {button:?}"
        );
    }
    h.get_all_by_label_contains("dismiss")
        .next()
        .unwrap()
        .click();
    h.step();
    h.step();
    assert_eq!(h.state().model().notices.len(), 2);
}

/// A file dropped on the window, as eframe hands it over.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_file(harness: &mut Harness<'static, InrlabApp>, path: &std::path::Path) {
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(path.to_path_buf())));
    harness.step();
}

/// A PNG whose header claims `side`×`side` pixels, with no pixel data after it.
fn png_header_only(side: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in bytes {
            crc ^= byte as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(side.to_be_bytes());
    ihdr.extend(side.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    png
}

#[test]
fn dropping_an_image_restarts_everything_and_bad_drops_are_refused() {
    let dir = std::env::temp_dir().join(format!("inrlab-window-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gradient = dir.join("gradient.png");
    image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 8) as u8, 90])
    })
    .save(&gradient)
    .unwrap();
    let huge = dir.join("huge.png");
    std::fs::write(&huge, png_header_only(100_000)).unwrap();
    let text = dir.join("readme.txt");
    std::fs::write(&text, "not an image").unwrap();

    let mut h = harness(&["trajectory"], false);
    assert!(step_until(&mut h, Duration::from_secs(60), |app| {
        steps_of(app, "trajectory") >= 1
    }));
    let first_run = run_id_of(h.state(), "trajectory");
    drop_file(&mut h, &gradient);
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| {
            app.model()
                .target
                .as_ref()
                .is_some_and(|t| t.name == "gradient.png")
                && run_id_of(app, "trajectory") > first_run
                && steps_of(app, "trajectory") >= 1
        }),
        "the dropped image did not replace the sample"
    );
    for bad in [&huge, &text] {
        drop_file(&mut h, bad);
    }
    assert!(step_until(&mut h, Duration::from_secs(30), |app| {
        app.model().notices.len() >= 2
    }));
    let notices: Vec<String> = h
        .state()
        .model()
        .notices
        .iter()
        .map(|n| n.text.clone())
        .collect();
    assert!(notices[0].contains("too large"), "{notices:?}");
    assert!(notices[1].contains("readme.txt"), "{notices:?}");
    assert_eq!(
        h.state().model().target.as_ref().unwrap().name,
        "gradient.png"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_working_size_selector_restarts_at_the_new_size() {
    let mut h = harness(&["fourier-ridge"], false);
    assert!(step_until(&mut h, Duration::from_secs(60), |app| {
        steps_of(app, "fourier-ridge") >= 1
    }));
    h.state_mut().settings_mut().working_size = 64;
    assert!(step_until(&mut h, Duration::from_secs(60), |app| {
        app.model().target.as_ref().is_some_and(|t| t.size == 64)
            && steps_of(app, "fourier-ridge") >= 1
    }));
    let latest = h
        .state()
        .model()
        .run("fourier-ridge")
        .unwrap()
        .latest
        .as_ref()
        .unwrap();
    assert_eq!(latest.pixels.len(), 64 * 64 * 3);
}

fn iterates_step(app: &InrlabApp, method: &str) -> Option<usize> {
    app.model()
        .run(method)
        .and_then(|r| r.iterates.as_ref())
        .map(|view| view.step)
}

#[test]
fn learned_refine_shows_its_iterations_in_the_grid_and_its_loss_in_the_curves() {
    let mut settings = small_settings(&["learned-refine"]);
    settings.active_view = "curves".into();
    let values = settings.params.entry("learned-refine".into()).or_default();
    values.set("width", 32.0);
    values.set("steps", 100_000.0);
    let mut h = harness_with(settings, false);
    assert!(step_until(&mut h, Duration::from_secs(60), |app| {
        steps_of(app, "learned-refine") >= 3
    }));
    h.step();
    // The curves show its loss; nobody shows its iterates, so none were read back.
    let summary = h.get_by_label_contains("Learned refinement: best");
    assert!(format!("{summary:?}").contains(" · loss "), "{summary:?}");
    assert_eq!(iterates_step(h.state(), "learned-refine"), None);

    h.state_mut().settings_mut().active_view = "trajectory".into();
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| {
            iterates_step(app, "learned-refine").is_some()
        }),
        "the grid shows learned-refine but its iterates did not arrive"
    );
    h.step();
    assert!(
        h.query_by_label_contains("iterations 1…5 at step")
            .is_some()
    );
    for k in 1..=5 {
        let label = format!("iteration {k} ");
        let cell = h.get_by_label_contains(&label);
        assert!(format!("{cell:?}").contains(" dB"), "{cell:?}");
    }
    // They follow the training.
    let first = iterates_step(h.state(), "learned-refine").unwrap();
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| {
            iterates_step(app, "learned-refine").is_some_and(|step| step > first)
        }),
        "the iterates stayed at step {first}"
    );
    // Paused, the row catches up with the last step.
    h.key_press(egui::Key::Space);
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| {
            let steps = steps_of(app, "learned-refine");
            !app.is_playing() && iterates_step(app, "learned-refine") == Some(steps)
        }),
        "paused, the iterates are not those of the last step"
    );
}

/// Renders the window as it was last drawn and saves it as target/tmp/screenshots/`name`.
/// Rendering needs a wgpu adapter (lavapipe will do): without one the picture is skipped with a
/// loud message, or the test fails when INRLAB_REQUIRE_GPU=1 (scripts/test.sh sets it).
fn save_screenshot(harness: &mut Harness<'static, InrlabApp>, name: &str) -> Option<PathBuf> {
    let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness.render()));
    let picture = match rendered {
        Ok(Ok(picture)) => picture,
        failed => {
            let why = match failed {
                Ok(Err(error)) => error,
                _ => "the renderer panicked (no wgpu adapter?)".to_owned(),
            };
            if std::env::var("INRLAB_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("cannot render {name}: {why}");
            }
            eprintln!("\n** SKIPPED the picture {name}: {why} **\n");
            return None;
        }
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    picture.save(&path).unwrap();
    eprintln!("saved {}", path.display());
    Some(path)
}

/// The multi-resolution method, and its levels at 64²: 4×4 base, then 8, 16, 32, 64.
const WAVELET: &str = "wavelet";
const WAVELET_SIDES: [usize; 5] = [4, 8, 16, 32, 64];

fn levels_step(app: &InrlabApp, method: &str) -> Option<usize> {
    app.model()
        .run(method)
        .and_then(|r| r.levels.as_ref())
        .map(|view| view.step)
}

/// Picture cells whose caption starts with `title` and ends with a PSNR.
fn cells_titled(harness: &Harness<'static, InrlabApp>, title: &str) -> usize {
    harness
        .query_all_by_label_contains(title)
        .filter(|node| {
            node.accesskit_node()
                .label()
                .is_some_and(|label| label.starts_with(title) && label.ends_with(" dB"))
        })
        .count()
}

#[test]
fn the_wavelet_operator_shows_its_levels_in_the_scales_view_and_per_level_curves() {
    let mut settings = small_settings(&[WAVELET]);
    settings.active_view = "curves".into();
    let mut h = harness_at(settings, 64, false);
    // Enough steps that the curves (and later the pictures) show some training.
    assert!(
        step_until(&mut h, Duration::from_secs(120), |app| {
            steps_of(app, WAVELET) >= 60
        }),
        "the wavelet operator did not step"
    );
    h.step();
    h.step();
    // The curves: its per-level plot with the latest numbers beside it, and its loss.
    assert!(h.query_by_label_contains(" per level").is_some());
    for side in &WAVELET_SIDES[1..] {
        let label = format!("{side}×{side}");
        assert!(
            h.query_all_by_label(&label).next().is_some(),
            "no {label} in the per-level table"
        );
    }
    let reports = &h.state().model().run(WAVELET).unwrap().cells;
    let levels = &reports.values().next_back().unwrap().report.levels;
    let sizes: Vec<usize> = levels.iter().map(|l| l.size).collect();
    assert_eq!(sizes, WAVELET_SIDES[1..], "levels reported");
    let finest = format!("{:.2}", levels.last().unwrap().teacher_forced_db);
    assert!(
        h.query_all_by_label(&finest).next().is_some(),
        "the table lacks the latest 64×64 teacher-forced PSNR {finest}"
    );
    let title = inrlab::methods::find(WAVELET).unwrap().title;
    let summary_label = format!("{title}: best");
    let summary = h.get_by_label_contains(&summary_label);
    assert!(format!("{summary:?}").contains(" · loss "), "{summary:?}");
    // Nobody shows its levels, so none were read back.
    assert_eq!(levels_step(h.state(), WAVELET), None);
    let curves = save_screenshot(&mut h, "curves-wavelet.png");

    h.state_mut().settings_mut().active_view = "scales".into();
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| {
            levels_step(app, WAVELET).is_some()
        }),
        "the scales view shows the wavelet operator but its levels did not arrive"
    );
    h.step();
    h.step();
    // The strip: the rollout through every level, each captioned with its size and PSNR.
    for side in WAVELET_SIDES {
        let title = format!("{side}×{side} ");
        assert!(
            cells_titled(&h, &title) >= 1,
            "no strip cell for level {title}"
        );
    }
    // The finest level's detail: upsamplings, prediction, truth and both sets of bands.
    assert!(
        h.query_by_label_contains("level 64×64 · nearest and bicubic upsampling of the true 32×32")
            .is_some()
    );
    for title in ["nearest ", "bicubic ", "predicted "] {
        assert_eq!(cells_titled(&h, title), 1, "{title}");
    }
    for band in ["LL ½", "LH (x)", "HL (y)", "HH"] {
        assert_eq!(h.query_all_by_label_contains(band).count(), 2, "{band}");
    }
    // They follow the training.
    let first = levels_step(h.state(), WAVELET).unwrap();
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| {
            levels_step(app, WAVELET).is_some_and(|step| step >= first + 100)
        }),
        "the levels stayed at step {first}"
    );
    h.step();
    let scales = save_screenshot(&mut h, "scales-wavelet.png");
    // Picking the coarsest level: nothing predicts it.
    h.query_all_by_label_contains("4×4 ")
        .find(|node| {
            node.accesskit_node()
                .label()
                .is_some_and(|l| l.starts_with("4×4 "))
        })
        .unwrap()
        .click();
    h.step();
    h.step();
    assert!(h.query_by_label_contains("the coarsest").is_some());
    assert_eq!(cells_titled(&h, "predicted "), 0);
    // Paused, the levels catch up with the last step.
    h.key_press(egui::Key::Space);
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| {
            !app.is_playing() && levels_step(app, WAVELET) == Some(steps_of(app, WAVELET))
        }),
        "paused, the levels are not those of the last step"
    );
    eprintln!("pictures: {curves:?}, {scales:?}");
}

/// Seed 001's own setting from the window: a folder (as picking or dropping one sends it)
/// restarts the wavelet operator on its images while the other method keeps its run; the
/// controls say what it found, skipped files are warned about, the scales view shows the
/// held-out image's rollout and samples grown from noise canvases, the curves the held-out
/// per-level PSNRs; "Back to the image" returns it to the image.
#[test]
fn a_folder_trains_the_wavelet_operator_and_the_scales_view_shows_its_samples() {
    let folder = common::make_folder("window-folder", 10);
    let mut settings = small_settings(&[WAVELET, "fourier-ridge"]);
    settings.active_view = "scales".into();
    let mut wavelet = ParamValues::new();
    wavelet.set("channels", 8.0);
    wavelet.set("steps", 100.0);
    settings.params.insert(WAVELET.into(), wavelet);
    let mut h = harness_at(settings, 64, false);
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| {
            steps_of(app, WAVELET) >= 1 && steps_of(app, "fourier-ridge") >= 1
        }),
        "the methods did not start on the image"
    );
    let (wavelet_run, other_run) = (
        run_id_of(h.state(), WAVELET),
        run_id_of(h.state(), "fourier-ridge"),
    );
    h.state_mut().train_on_folder(Some(folder.clone()));
    assert!(
        step_until(&mut h, Duration::from_secs(120), |app| {
            app.model().folder.is_some()
                && app
                    .model()
                    .run(WAVELET)
                    .is_some_and(|r| r.trains_on.is_some())
                && levels_step(app, WAVELET).is_some()
        }),
        "the folder run did not start or its levels did not arrive"
    );
    assert!(
        run_id_of(h.state(), WAVELET) > wavelet_run,
        "the wavelet operator restarted"
    );
    assert_eq!(
        run_id_of(h.state(), "fourier-ridge"),
        other_run,
        "the other kept its run"
    );
    h.step();
    h.step();
    let about = h
        .state()
        .model()
        .run(WAVELET)
        .unwrap()
        .trains_on
        .clone()
        .unwrap();
    assert!(
        about.contains("images of inrlab-window-folder") && about.contains("at 64²"),
        "{about}"
    );
    assert!(
        h.query_all_by_label_contains(&format!("Wavelet operator: {about}"))
            .next()
            .is_some(),
        "the controls say what it trains on"
    );
    assert!(h.query_by_label_contains("Back to the image").is_some());
    let warnings: Vec<String> = (h.state().model().warnings.iter())
        .map(|n| n.text.clone())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("readme.txt")),
        "{warnings:?}"
    );
    // The strip: the held-out image's rollout (scored) and three samples (not), every level.
    assert!(
        h.query_by_label_contains("held-out image, from its true 4×4")
            .is_some()
    );
    for sample in 1..=3 {
        let caption = format!("sample {sample} (noise canvas)");
        assert!(
            h.query_by_label_contains(&caption).is_some(),
            "no row {caption}"
        );
    }
    let view = h
        .state()
        .model()
        .run(WAVELET)
        .unwrap()
        .levels
        .as_ref()
        .unwrap();
    assert_eq!(
        view.levels.iter().map(|l| l.side).collect::<Vec<_>>(),
        WAVELET_SIDES
    );
    for level in &view.levels {
        assert_eq!(level.rollouts.len(), 4, "level {}", level.side);
        assert!(level.rollouts[0].psnr_db.is_some());
        assert!(level.rollouts[1..].iter().all(|c| c.psnr_db.is_none()));
    }
    // Trained to its last step, the held-out scores make the per-level curves.
    assert!(
        step_until(&mut h, Duration::from_secs(240), |app| {
            steps_of(app, WAVELET) >= 100
        }),
        "the folder run did not finish its 100 steps"
    );
    h.step();
    h.step();
    let scales = save_screenshot(&mut h, "scales-folder.png");
    h.state_mut().settings_mut().active_view = "curves".into();
    h.step();
    h.step();
    assert!(
        h.query_by_label_contains("per level, held-out images")
            .is_some()
    );
    let curves = save_screenshot(&mut h, "curves-folder.png");
    // Back to the image: the operator restarts there.
    let folder_run = run_id_of(h.state(), WAVELET);
    h.get_by_label("Back to the image").click();
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| {
            app.model().folder.is_none()
                && run_id_of(app, WAVELET) > folder_run
                && steps_of(app, WAVELET) >= 1
        }),
        "the wavelet operator did not return to the image"
    );
    assert!(h.state().model().run(WAVELET).unwrap().trains_on.is_none());
    std::fs::remove_dir_all(&folder).unwrap();
    eprintln!("pictures: {scales:?}, {curves:?}");
}

/// The Screenshot button and F12 save the whole window as PNG into the chosen output folder,
/// under numbered names that never replace a file, each saying how it was made; a banner says
/// where it went.
#[test]
fn screenshots_go_to_the_output_folder_with_their_record() {
    let folder = std::env::temp_dir().join(format!("inrlab-window-shots-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let mut settings = small_settings(&["trajectory"]);
    settings.output_folder = Some(folder.clone());
    let mut h = harness_with(settings, false);
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| steps_of(
            app,
            "trajectory"
        ) >= 2),
        "no steps"
    );
    h.get_by_label("Screenshot").click();
    let first = folder.join("screenshot-001.png");
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| app.last_saved()
            == Some(first.as_path())),
        "the screenshot was not saved (is a wgpu adapter there to render it?)"
    );
    h.step();
    assert!(h.query_by_label_contains("saved ").is_some(), "no banner");
    let picture = image::open(&first).unwrap().to_rgb8();
    assert!(
        picture.width() >= 1000 && picture.height() >= 600,
        "{:?}",
        picture.dimensions()
    );
    let distinct: std::collections::BTreeSet<[u8; 3]> = picture.pixels().map(|p| p.0).collect();
    assert!(distinct.len() > 50, "the picture looks blank");
    let record = inrlab::provenance::Provenance::read(&first).unwrap();
    assert_eq!(record.methods.keys().collect::<Vec<_>>(), ["trajectory"]);
    assert_eq!(record.working_size, 32);
    assert!(record.image.is_sample());
    // F12 takes the next number.
    h.key_press(egui::Key::F12);
    let second = folder.join("screenshot-002.png");
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| app.last_saved()
            == Some(second.as_path())),
        "F12 did not save a second picture"
    );
    assert!(first.exists());
    // The metrics of every step so far, as CSV and JSON with their record.
    h.get_by_label("Metrics").click();
    let csv = folder.join("metrics-001.csv");
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| app.last_saved()
            == Some(csv.as_path())),
        "the metrics were not saved"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        rows[0],
        format!(
            "method,{}",
            inrlab::provenance::Provenance::CSV_STEP_COLUMNS
        )
    );
    assert!(
        rows.len() > 2 && rows[1].starts_with("trajectory,1,"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(csv.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["steps"].as_array().unwrap().len(), rows.len() - 1);
    assert_eq!(
        inrlab::provenance::Provenance::read(&csv)
            .unwrap()
            .methods
            .len(),
        1
    );
    std::fs::remove_dir_all(&folder).unwrap();
}

/// A preset keeps the whole setup: saved, then loaded over other settings, it brings back the
/// methods, their parameters and the working size; "Copy command" gives the focused method's
/// `inrlab run` line.
#[test]
fn a_preset_brings_the_setup_back_and_the_command_line_is_copied() {
    use inrlab::app::saving;
    let dir = std::env::temp_dir().join(format!("inrlab-window-preset-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut settings = small_settings(&["trajectory", "fourier-ridge"]);
    let mut trajectory = ParamValues::new();
    trajectory.set("spectral-radius", 0.55);
    settings.params.insert("trajectory".into(), trajectory);
    let mut h = harness_at(settings, 64, true);
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| app
            .model()
            .target
            .is_some()
            && app.model().backend.is_some()),
        "the image did not load"
    );
    let record = saving::window_provenance(h.state().model(), h.state().settings()).unwrap();
    assert_eq!(record.methods["trajectory"]["spectral-radius"], 0.55);
    let preset = dir.join("preset.json");
    saving::save_preset(&preset, &record, inrlab::output::Existing::Refuse).unwrap();
    assert!(saving::save_preset(&preset, &record, inrlab::output::Existing::Refuse).is_err());
    // Other settings, then the preset.
    {
        let settings = h.state_mut().settings_mut();
        settings.selected = vec!["coord-mlp".into()];
        settings.params.clear();
        settings.working_size = 128;
    }
    // The other size first takes effect, so the preset's 64² below is not the first image's.
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| app
            .model()
            .target
            .as_ref()
            .is_some_and(|t| t.size == 128)),
        "the image did not go to 128²"
    );
    h.state_mut().load_preset(&preset).unwrap();
    h.step();
    let settings = h.state().settings();
    assert_eq!(settings.selected, ["trajectory", "fourier-ridge"]);
    assert_eq!(
        settings.params["trajectory"].explicit("spectral-radius"),
        Some(0.55)
    );
    assert_eq!(settings.working_size, 64);
    // A file that records nothing is refused and changes nothing.
    let stranger = dir.join("stranger.json");
    std::fs::write(&stranger, "[1, 2]").unwrap();
    assert!(h.state_mut().load_preset(&stranger).is_err());
    assert_eq!(h.state().settings().working_size, 64);
    // The focused method's command line, once the image is back at 64².
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| app
            .model()
            .target
            .as_ref()
            .is_some_and(|t| t.size == 64)),
        "the image did not come back at 64²"
    );
    h.get_by_label("Copy command").click();
    h.step();
    let line = h.state().copied_command_line().unwrap().to_owned();
    assert!(
        line.starts_with("inrlab run --method trajectory --size 64"),
        "{line}"
    );
    assert!(line.contains("--spectral-radius 0.55"), "{line}");
    assert!(h.query_by_label_contains("copied: inrlab run").is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Record: a frame of the view every step while the methods run, a red indicator with the
/// count, and on Stop the GIF appears in the output folder with those frames.
#[test]
fn recording_the_view_writes_a_gif_of_its_frames() {
    let folder = std::env::temp_dir().join(format!("inrlab-window-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let mut settings = small_settings(&["fourier-mlp"]);
    settings.output_folder = Some(folder.clone());
    settings.active_view = "trajectory".into();
    let mut h = harness_with(settings, false);
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| steps_of(
            app,
            "fourier-mlp"
        ) >= 1),
        "no steps"
    );
    h.get_by_label("Record").click();
    assert!(
        step_until(&mut h, Duration::from_secs(120), |app| app
            .recording_counts()
            .is_some_and(|(frames, _)| frames >= 4)),
        "the recording did not take frames"
    );
    assert!(h.query_by_label("REC").is_some());
    let (frames, _) = h.state().recording_counts().unwrap();
    h.get_by_label("Stop").click();
    let gif = folder.join("recording-001.gif");
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| app.last_saved()
            == Some(gif.as_path())),
        "the recording was not finished"
    );
    assert!(h.state().recording_counts().is_none());
    use image::AnimationDecoder;
    let decoder = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&gif).unwrap(),
    ))
    .unwrap();
    let decoded = decoder.into_frames().collect_frames().unwrap();
    assert!(
        decoded.len() >= frames,
        "{} frames of {frames}",
        decoded.len()
    );
    let first = decoded[0].buffer();
    assert!(
        first.width() > 300 && first.height() > 300,
        "{:?}",
        first.dimensions()
    );
    std::fs::remove_dir_all(&folder).unwrap();
}

/// *Export view* on every tab writes that view as a figure composed from the pictures (not a
/// screen grab): the grid, compare, inspect and scales sheets and the curves plot with its CSV,
/// each numbered, decodable, not blank, and carrying the window's record.
#[test]
fn every_view_exports_a_figure_of_its_own_pictures() {
    let folder = std::env::temp_dir().join(format!("inrlab-window-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let mut settings = small_settings(&["trajectory", "multiscale", "fourier-mlp"]);
    settings.output_folder = Some(folder.clone());
    let mut h = harness_with(settings, false);
    assert!(
        step_until(&mut h, Duration::from_secs(90), |app| {
            steps_of(app, "trajectory") >= 3
                && steps_of(app, "multiscale") >= 2
                && steps_of(app, "fourier-mlp") >= 20
        }),
        "no steps"
    );
    std::fs::create_dir_all("target/tmp/screenshots").unwrap();
    let views = ["trajectory", "compare", "inspect", "scales", "curves"];
    for view in views {
        h.state_mut().settings_mut().active_view = view.into();
        h.step();
        h.step();
        h.get_by_label("Export view").click();
        let path = folder.join(format!("{view}-001.png"));
        assert!(
            step_until(&mut h, Duration::from_secs(60), |app| app.last_saved()
                == Some(path.as_path())),
            "{view} was not exported"
        );
        let picture = image::open(&path).unwrap().to_rgb8();
        let distinct: std::collections::BTreeSet<[u8; 3]> = picture.pixels().map(|p| p.0).collect();
        assert!(distinct.len() > 30, "{view}'s figure looks blank");
        // 32² pictures are drawn at 128² at least, with room for a caption under each.
        assert!(
            picture.width() >= 2 * 128 && picture.height() >= 128 + 40,
            "{view}: {:?}",
            picture.dimensions()
        );
        let record = inrlab::provenance::Provenance::read(&path).unwrap();
        assert_eq!(record.working_size, 32);
        assert_eq!(record.methods.len(), 3);
        std::fs::copy(&path, format!("target/tmp/screenshots/export-{view}.png")).ok();
    }
    let csv = std::fs::read_to_string(folder.join("curves-001.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        rows[0],
        format!(
            "method,{}",
            inrlab::provenance::Provenance::CSV_STEP_COLUMNS
        )
    );
    assert!(
        rows.iter().any(|r| r.starts_with("fourier-mlp,20,")),
        "{csv}"
    );
    // A second export takes the next number.
    h.get_by_label("Export view").click();
    let second = folder.join("curves-002.png");
    assert!(step_until(&mut h, Duration::from_secs(60), |app| app
        .last_saved()
        == Some(second.as_path())));
    // A folder that cannot be made (under a regular file): a notice saying why, the window and
    // its compute go on, and nothing already saved is touched.
    let blocker = folder.join("file.txt");
    std::fs::write(&blocker, "a file, not a folder").unwrap();
    h.state_mut().settings_mut().output_folder = Some(blocker.join("figures"));
    h.get_by_label("Export view").click();
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| notices(app)
            .iter()
            .any(|n| n.starts_with("Not saved: cannot create the folder"))),
        "{:?}",
        notices(h.state())
    );
    h.step();
    assert!(h.state().model().compute_stopped.is_none());
    assert!(second.exists());
    std::fs::remove_dir_all(&folder).unwrap();
}

fn notices(app: &InrlabApp) -> Vec<&str> {
    app.model()
        .notices
        .iter()
        .map(|n| n.text.as_str())
        .collect()
}

/// Steps the harness until `method` has taken at least `steps` steps (a minute at most).
fn reaches_steps(h: &mut Harness<'static, InrlabApp>, method: &str, steps: usize) -> bool {
    step_until(h, Duration::from_secs(60), |app| {
        steps_of(app, method) >= steps
    })
}

/// Save checkpoint is off (saying why) until the focused trained method has stepped, then
/// writes its checkpoint into the output folder, numbered beside an existing one. Loading it
/// restarts that method at the saved step with the file's parameters in the settings, while the
/// other method goes on; a checkpoint of another working size is refused with a notice and
/// changes nothing.
#[test]
fn a_checkpoint_saved_in_the_window_resumes_there() {
    use inrlab::checkpoint::Checkpoint;
    let folder = std::env::temp_dir().join(format!("inrlab-window-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    // fourier-mlp first in the registry's order, so the one Save checkpoint is about.
    let mut settings = small_settings(&["fourier-mlp", "coord-mlp"]);
    settings.output_folder = Some(folder.clone());
    let mut small = ParamValues::new();
    for (name, value) in [("frequencies", 16.0), ("width-1", 16.0), ("width-2", 16.0)] {
        small.set(name, value);
    }
    small.set("steps", 5000.0);
    settings.params.insert("fourier-mlp".into(), small.clone());
    let mut h = harness_with(settings, true);
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| app
            .model()
            .run("fourier-mlp")
            .is_some_and(|r| r.run_id > 0)),
        "the runs did not start"
    );
    let save_is_off = |h: &Harness<'static, InrlabApp>| {
        h.get_by_label("Save checkpoint")
            .accesskit_node()
            .is_disabled()
    };
    assert!(save_is_off(&h), "no step yet");
    h.key_press(egui::Key::Space);
    assert!(reaches_steps(&mut h, "fourier-mlp", 3), "no steps");
    h.key_press(egui::Key::Space);
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| !app.model().playing),
        "the worker did not pause"
    );
    assert!(worker_caught_up(&mut h, "paused"), "no answer");
    let step = steps_of(h.state(), "fourier-mlp");
    assert!(!save_is_off(&h));
    h.get_by_label("Save checkpoint").click();
    let first = folder.join(format!("checkpoint-fourier-mlp-step-{step:06}.safetensors"));
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| app.last_saved()
            == Some(first.as_path())),
        "the checkpoint was not saved: {:?}",
        notices(h.state())
    );
    h.get_by_label("Save checkpoint").click();
    let second = folder.join(format!(
        "checkpoint-fourier-mlp-step-{step:06}-2.safetensors"
    ));
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| app.last_saved()
            == Some(second.as_path())),
        "a second save did not take the next name"
    );
    let checkpoint = Checkpoint::read(&first).unwrap();
    assert_eq!(checkpoint.state.step, step);
    assert_eq!(checkpoint.history.len(), step);
    assert_eq!(checkpoint.provenance.working_size, 32);
    assert!(checkpoint.provenance.image.is_sample());
    assert_eq!(checkpoint.params().unwrap().explicit("width-1"), Some(16.0));

    // Other parameters in the window; the checkpoint brings its own back, at its step.
    let (fourier_run, coord_run) = (
        run_id_of(h.state(), "fourier-mlp"),
        run_id_of(h.state(), "coord-mlp"),
    );
    h.state_mut()
        .settings_mut()
        .params
        .get_mut("fourier-mlp")
        .unwrap()
        .set("lr", 0.02);
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| run_id_of(
            app,
            "fourier-mlp"
        ) > fourier_run),
        "the changed parameter did not restart fourier-mlp"
    );
    let restarted = run_id_of(h.state(), "fourier-mlp");
    h.state_mut().load_checkpoint(&first).unwrap();
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| run_id_of(
            app,
            "fourier-mlp"
        ) > restarted
            && steps_of(app, "fourier-mlp") == step),
        "the checkpoint did not resume: {:?}",
        notices(h.state())
    );
    h.step();
    assert_eq!(
        h.state().settings().params["fourier-mlp"].explicit("steps"),
        Some(5000.0)
    );
    assert_eq!(
        h.state().settings().params["fourier-mlp"].explicit("lr"),
        Some(1e-3)
    );
    assert_eq!(
        run_id_of(h.state(), "coord-mlp"),
        coord_run,
        "the other method restarted"
    );
    let resumed = run_id_of(h.state(), "fourier-mlp");
    assert!(worker_caught_up(&mut h, "resumed"), "no answer");
    let still = run_id_of(h.state(), "fourier-mlp") == resumed;
    assert!(still, "publishing its parameters restarted it");
    // It goes on from there, one step at a time.
    h.key_press(egui::Key::S);
    assert!(reaches_steps(&mut h, "fourier-mlp", step + 1), "no step");
    assert!(worker_caught_up(&mut h, "stepped"), "no answer");
    assert_eq!(steps_of(h.state(), "fourier-mlp"), step + 1);

    // Made at another working size: refused, nothing restarts.
    let mut other = checkpoint.clone();
    other.provenance.working_size = 64;
    let elsewhere = folder.join("other-size.safetensors");
    other
        .write(&elsewhere, inrlab::output::Existing::Refuse)
        .unwrap();
    h.state_mut().load_checkpoint(&elsewhere).unwrap();
    assert!(
        step_until(&mut h, Duration::from_secs(30), |app| app
            .model()
            .notices
            .iter()
            .any(|n| n
                .text
                .starts_with("Checkpoint refused: it trained at 64²"))),
        "no refusal"
    );
    assert_eq!(run_id_of(h.state(), "fourier-mlp"), resumed);
    let _ = std::fs::remove_dir_all(&folder);
}

#[test]
fn the_sparse_view_reconstructs_from_a_mask_beside_the_baselines() {
    let mut settings = small_settings(&["wavelet", "refine", "trajectory", "fourier-ridge"]);
    inrlab::ui::controls::apply_sparse_preset(&mut settings);
    assert_eq!(settings.active_view, "sparse");
    assert!(settings.sparse.refit && settings.sparse.validation_share > 0.0);
    settings.sparse.density = 0.2;
    settings.sparse.validation_share = 0.1;
    settings
        .params
        .get_mut("fourier-mlp")
        .unwrap()
        .set("steps", 40.0);
    let mut h = harness_at(settings, 64, false);
    let refitted = |app: &InrlabApp, method: &str| {
        app.model()
            .run(method)
            .is_some_and(|r| matches!(r.refit, Some(inrlab::app::state::RefitView::Done { .. })))
    };
    assert!(step_until(&mut h, Duration::from_secs(180), |app| {
        steps_of(app, "fourier-mlp") >= 40
            && steps_of(app, "fourier-ridge") >= 1
            && steps_of(app, "trajectory") >= 2
            && steps_of(app, "steered-kernel") >= 6
            && steps_of(app, "refine") >= 2
            && refitted(app, "steered-kernel")
            && refitted(app, "fourier-mlp")
    }));
    // Each refit went to its run's best-validation step, whose picture arrived too.
    for method in ["steered-kernel", "fourier-mlp"] {
        let run = h.state().model().run(method).unwrap();
        let best = inrlab::ui::sparse::best_validation(run).unwrap().0;
        let Some(inrlab::app::state::RefitView::Done { shown, scores }) = &run.refit else {
            unreachable!("waited for above")
        };
        assert_eq!(shown.picture.step, best, "{method}");
        assert!(scores.validation_db.is_none() && scores.unobserved_db > 12.0);
        assert_eq!(run.best_picture.as_ref().unwrap().picture.step, best);
    }
    let model = h.state().model();
    let observation = model.target.as_ref().unwrap().observation.as_ref().unwrap();
    assert_eq!(observation.observation.spec.mask, "random:0.2");
    // The learned refiner cannot fit from a mask: it does not run meanwhile. The reservoir
    // refiner can.
    assert!(
        model
            .run("learned-refine")
            .is_none_or(|r| r.cells.is_empty())
    );
    let refine = model.run("refine").unwrap();
    assert!(refine.latest.is_some());
    assert!(refine.cells.values().all(|c| c.report.sparse.is_some()));
    let report = &model
        .run("fourier-mlp")
        .unwrap()
        .cells
        .get(&40)
        .unwrap()
        .report;
    let scores = report.sparse.unwrap();
    assert!(
        scores.unobserved_db > 12.0 && scores.validation_db.is_some(),
        "{scores:?}"
    );
    h.state_mut().settings_mut().active_view = "sparse".into();
    for _ in 0..3 {
        h.step();
    }
    for label in [
        "sparse input",
        "Delaunay linear",
        "nearest neighbour",
        "ground truth",
    ] {
        assert!(
            h.query_all_by_label_contains(label).next().is_some(),
            "the sparse view does not show {label:?}"
        );
    }
    for label in ["best validation · ", "refit · ", "refit on all observed → "] {
        assert!(
            h.query_all_by_label_contains(label).next().is_some(),
            "the sparse view does not show {label:?}"
        );
    }
    if let Some(path) = save_screenshot(&mut h, "sparse.png") {
        let picture = image::open(path).unwrap().to_rgb8();
        let distinct: std::collections::HashSet<_> = picture.pixels().map(|p| p.0).collect();
        assert!(distinct.len() > 200, "{} colours", distinct.len());
    }
    // Turning the mask off brings every selected method back on every pixel.
    h.state_mut().settings_mut().sparse.enabled = false;
    assert!(step_until(&mut h, Duration::from_secs(60), |app| {
        app.model()
            .target
            .as_ref()
            .is_some_and(|t| t.observation.is_none())
            && steps_of(app, "wavelet") >= 1
    }));
}

#[test]
fn the_zoom_view_evaluates_the_field_at_the_zoomed_regions_resolution() {
    let mut settings = small_settings(&["fourier-mlp"]);
    settings.active_view = "zoom".into();
    let mut values = ParamValues::new();
    values.set("steps", 30.0);
    settings.params.insert("fourier-mlp".into(), values);
    let mut h = harness_at(settings, 32, false);
    assert!(step_until(&mut h, Duration::from_secs(90), |app| {
        steps_of(app, "fourier-mlp") >= 30
            && app.model().zoom.as_ref().is_some_and(|z| z.step == 30)
    }));
    let zoom = h.state().model().zoom.as_ref().unwrap();
    assert_eq!(zoom.request.method, "fourier-mlp");
    let first = zoom.request.region;
    assert!(first.pixels >= 32);
    // 8×: an eighth of the image's width at the same display resolution, evaluated again.
    h.get_by_label("8×").click();
    assert!(step_until(&mut h, Duration::from_secs(30), |app| {
        app.model()
            .zoom
            .as_ref()
            .is_some_and(|z| z.request.region.span < first.span / 2.0)
    }));
    let zoomed = h.state().model().zoom.as_ref().unwrap().request.region;
    assert!((zoomed.zoom() - 8.0).abs() < 1e-6, "{zoomed:?}");
    assert_eq!(zoomed.pixels, first.pixels);
    for label in ["bicubic", "Lanczos-3"] {
        assert!(h.query_by_label_contains(label).is_some(), "{label}");
    }
    save_screenshot(&mut h, "zoom.png");
}

/// A harness whose renderer is wgpu on a device asked for what the kernels need (as the
/// window's is), with the app's compute on the GPU backend sharing it; `None` (skipped loudly,
/// or a failure under INRLAB_REQUIRE_GPU=1) without an adapter.
fn harness_sharing_the_device(settings: Settings) -> Option<Harness<'static, InrlabApp>> {
    inrlab::compute::gpu::test_backend()?;
    let mut create = eframe::egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    create.device_descriptor = std::sync::Arc::new(inrlab::compute::gpu::device_descriptor);
    Some(
        Harness::builder()
            .with_size(egui::vec2(1400.0, 900.0))
            .wgpu_setup(eframe::egui_wgpu::WgpuSetup::CreateNew(create))
            .build_eframe(move |cc| {
                InrlabApp::with_renderer(
                    &cc.egui_ctx,
                    AppOptions {
                        backend: BackendChoice::Gpu,
                        working_size: Some(32),
                        start_paused: true,
                        ..AppOptions::default()
                    },
                    Some(settings),
                    cc.wgpu_render_state.as_ref(),
                )
            }),
    )
}

/// On a device the compute shares with the window, a trained method's picture between kept
/// steps is the device's texture, drawn by the renderer without a download; Export view then
/// waits until the host has the step on screen, so the figure shows what the window showed.
#[test]
fn an_export_on_the_shared_device_waits_for_the_step_on_screen() {
    let folder = std::env::temp_dir().join(format!("inrlab-window-shared-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let mut settings = small_settings(&["fourier-mlp"]);
    settings.output_folder = Some(folder.clone());
    settings.active_view = "compare".into();
    let Some(mut h) = harness_sharing_the_device(settings) else {
        return;
    };
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| app
            .model()
            .target
            .is_some()),
        "the image did not load"
    );
    // Step by hand until a step's picture is shown from the device (steps between kept ones).
    let on_device = |app: &InrlabApp| {
        app.model()
            .run("fourier-mlp")
            .is_some_and(|run| run.shown_from_the_device())
    };
    for step in 1..=8 {
        h.get_by_label("Step").click();
        assert!(
            step_until(&mut h, Duration::from_secs(60), |app| steps_of(
                app,
                "fourier-mlp"
            ) == step
                && app.model().run("fourier-mlp").unwrap().shown_step()
                    == Some(step)),
            "step {step} did not come"
        );
        if on_device(h.state()) {
            break;
        }
    }
    assert!(on_device(h.state()), "no picture came from the device");
    let shown = steps_of(h.state(), "fourier-mlp");
    let downloaded = |app: &InrlabApp| {
        let run = app.model().run("fourier-mlp").unwrap();
        run.latest.as_ref().map(|latest| latest.step)
    };
    assert!(
        downloaded(h.state()) < Some(shown),
        "the host already had it"
    );
    // The renderer draws the device's texture: the window is not blank.
    let picture = h.render().expect("the harness renders with wgpu");
    let distinct: std::collections::BTreeSet<[u8; 4]> = picture.pixels().map(|p| p.0).collect();
    assert!(distinct.len() > 100, "the window looks blank");
    std::fs::create_dir_all("target/tmp/screenshots").unwrap();
    picture
        .save("target/tmp/screenshots/shared-device-compare.png")
        .unwrap();
    h.get_by_label("Export view").click();
    let path = folder.join("compare-001.png");
    assert!(
        step_until(&mut h, Duration::from_secs(60), |app| app.last_saved()
            == Some(path.as_path())),
        "the view was not exported"
    );
    assert_eq!(
        downloaded(h.state()),
        Some(shown),
        "the export did not wait for the step on screen"
    );
    assert!(!on_device(h.state()));
    let record = inrlab::provenance::Provenance::read(&path).unwrap();
    assert_eq!(record.backend, "gpu");
    std::fs::remove_dir_all(&folder).unwrap();
}
