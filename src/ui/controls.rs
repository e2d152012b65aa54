//! The left panel: the image, playback, the methods to run and their parameters. Everything
//! here is generated from the method registry and its parameter specs, so a new method's
//! checkbox and sliders appear without edits.

use egui::{Button, RichText, Slider};

use crate::app::settings::{Settings, SparseSettings, WORKING_SIZES};
use crate::app::state::{Model, RunStatus};
use crate::methods::params::{Edit, Following, apply_edit, following, knob_owners, shared_specs};
use crate::methods::{self, MethodInfo, MethodParams, ParamSpec, ParamValues, Scale};

use super::{method_color, palette, run_activity, run_summary, swatch_ui};

/// What the user asked for in this panel; the app carries it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    OpenDialog,
    LoadSample,
    /// Pick a folder for the methods that train on one.
    OpenFolderDialog,
    /// Those methods train on the image again.
    LeaveFolder,
    /// Save the whole window as PNG into the output folder (F12).
    Screenshot,
    /// Save the current view as a figure (its pictures at their own resolution with captions,
    /// or the curves as a plot and CSV) into the output folder (Ctrl+E).
    ExportView,
    /// Pick the folder screenshots and exports go to.
    ChooseOutputFolder,
    /// Save the whole setup (image, working size, methods, parameters) as a preset.
    SavePreset,
    /// Load a preset, or the setup any file inrlab wrote records.
    LoadPreset,
    /// Put the `inrlab run` line of the focused method on the clipboard.
    CopyCommandLine,
    /// Save the focused trained method's checkpoint into the output folder.
    SaveCheckpoint,
    /// Restart a trained method from a checkpoint file.
    LoadCheckpoint,
    /// Write every run's PSNR, loss and time per step as CSV and JSON.
    ExportMetrics,
    /// Start or stop recording the view.
    ToggleRecording,
    TogglePlay,
    StepOnce,
    Reset,
    /// The user clicked this method in the list: it gets the larger compute share.
    Focus(&'static str),
    /// The compute thread has ended: start a new one.
    RestartCompute,
}

/// Shows the panel's contents. Edits `settings` in place (the app compares and forwards the
/// changes) and returns the actions to perform. `saveable`: the method Save checkpoint saves,
/// or why it is off.
pub fn controls_ui(
    ui: &mut egui::Ui,
    settings: &mut Settings,
    model: &Model,
    playing: bool,
    recording: Option<(usize, usize)>,
    saveable: Result<&'static str, String>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.add_space(6.0);
    ui.horizontal(|ui| {
        ui.label(
            RichText::new("inrlab")
                .size(22.0)
                .strong()
                .color(palette::ACCENT),
        );
        ui.label(RichText::new("images, step by step").color(palette::TEXT_DIM));
    });
    ui.add_space(4.0);
    egui::ScrollArea::vertical()
        .auto_shrink(false)
        .show(ui, |ui| {
            section(ui, "Image");
            image_ui(ui, settings, model, &mut actions);
            section(ui, "Sparse reconstruction");
            sparse_ui(ui, settings, model);
            section(ui, "Run");
            playback_ui(
                ui,
                settings,
                model,
                playing,
                recording,
                saveable,
                &mut actions,
            );
            section(ui, "Methods");
            methods_ui(ui, settings, model, &mut actions);
            section(ui, "Parameters");
            parameters_ui(ui, settings);
        });
    actions
}

fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(10.0);
    ui.label(
        RichText::new(title.to_uppercase())
            .size(11.5)
            .strong()
            .color(palette::TEXT_DIM),
    );
    ui.separator();
}

fn image_ui(ui: &mut egui::Ui, settings: &mut Settings, model: &Model, actions: &mut Vec<Action>) {
    match &model.target {
        Some(target) => {
            ui.label(
                RichText::new(&target.name)
                    .strong()
                    .color(palette::TEXT_STRONG),
            )
            .on_hover_text("The image being fitted. Drop any image on the window to replace it.");
        }
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("loading…");
            });
        }
    }
    ui.horizontal(|ui| {
        if ui
            .button("Open…")
            .on_hover_text("Choose an image file (PNG, JPEG, GIF, BMP, TIFF, WebP, …).")
            .clicked()
        {
            actions.push(Action::OpenDialog);
        }
        if ui
            .button("Sample")
            .on_hover_text("The built-in sample image.")
            .clicked()
        {
            actions.push(Action::LoadSample);
        }
        ui.label(RichText::new("or drop an image").color(palette::TEXT_DIM));
    });
    folder_ui(ui, model, actions);
    ui.horizontal(|ui| {
        ui.label("working size").on_hover_text(
            "The image is resized to this many pixels a side before fitting. Larger sizes show \
             more detail and take longer per step.",
        );
        for size in WORKING_SIZES {
            ui.selectable_value(&mut settings.working_size, size, size.to_string());
        }
    });
}

/// Record: start/stop, the file type, a frame every n steps, frames per second; while
/// recording, a red indicator with the frames taken and dropped. `recording` is (frames,
/// dropped) of the recording in progress.
fn recording_ui(
    ui: &mut egui::Ui,
    settings: &mut Settings,
    recording: Option<(usize, usize)>,
    actions: &mut Vec<Action>,
) {
    ui.horizontal(|ui| {
        let (text, hint) = match recording {
            Some(_) => ("Stop", "Stop recording and finish the file (Ctrl+R)."),
            None => (
                "Record",
                "Record the view into recording-NNN in the output folder (Ctrl+R): a frame \
                 every n steps, taken off the compute's path (frames are dropped, and counted, \
                 rather than slowing it).",
            ),
        };
        if ui.button(text).on_hover_text(hint).clicked() {
            actions.push(Action::ToggleRecording);
        }
        match recording {
            Some((frames, dropped)) => {
                // A painted dot: egui's fonts have no "●".
                let (dot, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                ui.painter().circle_filled(dot.center(), 5.0, palette::BAD);
                ui.label(RichText::new("REC").strong().color(palette::BAD));
                ui.label(
                    RichText::new(format!("{frames} frames · {dropped} dropped"))
                        .monospace()
                        .color(palette::TEXT_STRONG),
                );
            }
            None => {
                let format = ui.label("as");
                egui::ComboBox::from_id_salt("record-format")
                    .width(64.0)
                    .selected_text(settings.record_format.clone())
                    .show_ui(ui, |ui| {
                        for (format, name) in [("gif", "GIF"), ("png", "APNG"), ("mp4", "MP4")] {
                            ui.selectable_value(&mut settings.record_format, format.into(), name);
                        }
                    })
                    .response
                    .labelled_by(format.id);
                let every = ui.label("every");
                ui.add(egui::DragValue::new(&mut settings.record_every).range(1..=1000))
                    .labelled_by(every.id);
                let fps = ui.label("fps");
                ui.add(egui::DragValue::new(&mut settings.record_fps).range(1..=60))
                    .labelled_by(fps.id);
            }
        }
    });
}

/// Seed 001's own setting: the methods that can ([`MethodInfo::trains_on_folder`]) train on a
/// folder of images instead of the image, and grow new ones from noise canvases.
fn folder_ui(ui: &mut egui::Ui, model: &Model, actions: &mut Vec<Action>) {
    let takers: Vec<&str> = (methods::registry().iter())
        .filter(|info| info.trains_on_folder)
        .map(|info| info.title)
        .collect();
    ui.horizontal(|ui| {
        if ui
            .button("Train on a folder…")
            .on_hover_text(format!(
                "{} trains on every image of a folder (seed 001's setting) and grows new \
                 images from 4×4 noise canvases; the other methods keep fitting the image. \
                 Dropping a folder on the window does the same.",
                takers.join(", ")
            ))
            .clicked()
        {
            actions.push(Action::OpenFolderDialog);
        }
        if model.folder.is_some()
            && ui
                .button("Back to the image")
                .on_hover_text("Train on the image again.")
                .clicked()
        {
            actions.push(Action::LeaveFolder);
        }
    });
    if let Some(folder) = &model.folder {
        let name = folder.file_name().map_or_else(
            || folder.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        // Once built, the run says what it found there.
        let about = (model.runs.iter())
            .filter(|run| run.info.trains_on_folder)
            .find_map(|run| run.trains_on.clone());
        let text = match about {
            Some(about) => format!("{}: {about}", takers.join(", ")),
            None => format!("{} on the folder {name}", takers.join(", ")),
        };
        ui.label(RichText::new(text).color(palette::TEXT_DIM))
            .on_hover_text(folder.display().to_string());
    }
}

/// Save checkpoint (off, saying why, unless the focused method is trained and has stepped) and
/// Load checkpoint….
fn checkpoints_ui(
    ui: &mut egui::Ui,
    saveable: Result<&'static str, String>,
    actions: &mut Vec<Action>,
) {
    ui.horizontal(|ui| {
        let save = ui.add_enabled(saveable.is_ok(), Button::new("Save checkpoint"));
        let save = match &saveable {
            Ok(method) => save.on_hover_text(format!(
                "Save {method}'s weights, optimizer state and random streams with how it was                  made as checkpoint-{method}-step-NNNNNN.safetensors in the output folder, to                  go on exactly from here later."
            )),
            Err(why) => save.on_disabled_hover_text(format!(
                "{why} (the focused method: click a trained one in the list)"
            )),
        };
        if save.clicked() {
            actions.push(Action::SaveCheckpoint);
        }
        if ui
            .button("Load checkpoint…")
            .on_hover_text(
                "Restart a trained method from a checkpoint, with its parameters, where it                  stopped; the other methods go on.",
            )
            .clicked()
        {
            actions.push(Action::LoadCheckpoint);
        }
    });
}

fn playback_ui(
    ui: &mut egui::Ui,
    settings: &mut Settings,
    model: &Model,
    playing: bool,
    recording: Option<(usize, usize)>,
    saveable: Result<&'static str, String>,
    actions: &mut Vec<Action>,
) {
    ui.horizontal(|ui| {
        let text = if playing { "Pause" } else { "Play" };
        let play = Button::new(RichText::new(text).size(15.0).strong())
            .min_size(egui::vec2(92.0, 28.0))
            .fill(if playing {
                palette::CELL
            } else {
                palette::ACCENT.gamma_multiply(0.55)
            });
        if ui
            .add(play)
            .on_hover_text("Play or pause all methods (Space).")
            .clicked()
        {
            actions.push(Action::TogglePlay);
        }
        if ui
            .add(Button::new("Step").min_size(egui::vec2(0.0, 28.0)))
            .on_hover_text("One step of every running method (S).")
            .clicked()
        {
            actions.push(Action::StepOnce);
        }
        if ui
            .add(Button::new("Reset").min_size(egui::vec2(0.0, 28.0)))
            .on_hover_text("Restart every method from scratch (R).")
            .clicked()
        {
            actions.push(Action::Reset);
        }
    });
    let folder =
        (settings.output_folder.clone()).unwrap_or_else(crate::app::saving::default_output_folder);
    ui.horizontal(|ui| {
        if ui
            .button("Screenshot")
            .on_hover_text(format!(
                "Save the whole window as PNG in {} (F12), with how it was made in the file.",
                folder.display()
            ))
            .clicked()
        {
            actions.push(Action::Screenshot);
        }
        if ui
            .button("Export view")
            .on_hover_text(
                "Save the current view as a figure in the output folder (Ctrl+E): its pictures \
                 at their own resolution with their step and PSNR captions, or the curves as a \
                 plot with their numbers as CSV. The file records how it was made.",
            )
            .clicked()
        {
            actions.push(Action::ExportView);
        }
        if ui
            .button("Folder…")
            .on_hover_text("Choose where screenshots go.")
            .clicked()
        {
            actions.push(Action::ChooseOutputFolder);
        }
        if ui
            .button("Metrics")
            .on_hover_text(
                "Save every run's PSNR, loss and compute time per step as metrics-NNN.csv and \
                 .json in the output folder, with how they were made (Ctrl+S).",
            )
            .clicked()
        {
            actions.push(Action::ExportMetrics);
        }
        let name = folder.file_name().map_or_else(
            || folder.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        ui.label(RichText::new(name).color(palette::TEXT_DIM))
            .on_hover_text(folder.display().to_string());
    });
    ui.horizontal(|ui| {
        if ui
            .button("Save preset…")
            .on_hover_text(
                "Save the whole setup (image and its hash, working size, methods, every \
                 parameter with its seed, generator, backend) as JSON.",
            )
            .clicked()
        {
            actions.push(Action::SavePreset);
        }
        if ui
            .button("Load preset…")
            .on_hover_text(
                "Load a preset, or the setup recorded in any file inrlab wrote (a screenshot, \
                 a PNG, metrics.json or metrics.csv of `inrlab run`).",
            )
            .clicked()
        {
            actions.push(Action::LoadPreset);
        }
        if ui
            .button("Copy command")
            .on_hover_text(
                "Put the `inrlab run` line that makes the focused method's run headless on the \
                 clipboard.",
            )
            .clicked()
        {
            actions.push(Action::CopyCommandLine);
        }
    });
    checkpoints_ui(ui, saveable, actions);
    recording_ui(ui, settings, recording, actions);
    ui.checkbox(&mut settings.show_ground_truth, "show ground truth (G)")
        .on_hover_text("Show the target in place of the outputs in Compare and Inspect.");
    egui::Grid::new("run-stats")
        .num_columns(2)
        .spacing([12.0, 2.0])
        .show(ui, |ui| {
            let stat = |ui: &mut egui::Ui, name: &str, value: String| {
                ui.label(RichText::new(name).color(palette::TEXT_DIM));
                ui.label(RichText::new(value).monospace().color(palette::TEXT_STRONG));
                ui.end_row();
            };
            stat(ui, "steps", model.total_steps_done().to_string());
            stat(ui, "steps / s", format!("{:.1}", model.steps_per_second()));
            stat(
                ui,
                "elapsed",
                format!("{:.1} s", model.elapsed.as_secs_f64()),
            );
            stat(ui, "compute time", format!("{:.1} s", model.compute_secs()));
        });
}

/// The mask controls: on/off, the pattern and its density or stride, the validation share, the
/// patience and the seed; the baselines' scores once the mask is built.
fn sparse_ui(ui: &mut egui::Ui, settings: &mut Settings, model: &Model) {
    if ui
        .button("Sparse preset")
        .on_hover_text(
            "The best configuration found for 10% of the pixels: edge-steered kernel regression \
             beside the Fourier MLP at σ = 3 on a random 10% mask, the step chosen on 10% of \
             the observed pixels, then refitted on all of them (beats Delaunay-linear by 1.2 dB \
             on the sample), on the Sparse tab.",
        )
        .clicked()
    {
        apply_sparse_preset(settings);
    }
    let sparse = &mut settings.sparse;
    ui.checkbox(&mut sparse.enabled, "fit from a fraction of the pixels")
        .on_hover_text(format!(
            "The methods that can ({}) fit on the observed pixels only and render all of them; \
             every step is scored on the unobserved pixels, beside Delaunay-linear and \
             nearest-neighbour interpolation (the Sparse tab). The other methods pause \
             meanwhile.",
            methods::fitting_observed_pixels(|info| info.title)
        ));
    if !sparse.enabled {
        return;
    }
    ui.horizontal(|ui| {
        ui.label("pattern");
        for pattern in SparseSettings::PATTERNS {
            ui.selectable_value(&mut sparse.pattern, pattern.to_owned(), pattern)
                .on_hover_text(match pattern {
                    "random" => "Each pixel observed with the same probability (seeded).",
                    "grid" => "Every s-th row and column.",
                    _ => "Probability proportional to a Gaussian centred in the image (σ = S/4), scaled to the density.",
                });
        }
    });
    if sparse.pattern == "grid" {
        ui.add(Slider::new(&mut sparse.stride, 2..=8).text("stride s"));
    } else {
        let mut percent = sparse.density * 100.0;
        let slider = Slider::new(&mut percent, 1.0..=50.0)
            .logarithmic(true)
            .fixed_decimals(1)
            .suffix(" %")
            .text("observed");
        if ui.add(slider).changed() {
            sparse.density = percent / 100.0;
        }
    }
    let mut validation = sparse.validation_share * 100.0;
    let slider = Slider::new(&mut validation, 0.0..=30.0)
        .fixed_decimals(0)
        .suffix(" %")
        .text("validation");
    if ui
        .add(slider)
        .on_hover_text(
            "Share of the observed pixels kept out of the fit and scored every step, so the \
             best step shows without looking at the unobserved pixels (0 turns it off).",
        )
        .changed()
    {
        sparse.validation_share = validation / 100.0;
    }
    ui.add(
        Slider::new(&mut sparse.patience, 0..=1000)
            .text("patience")
            .logarithmic(true),
    )
    .on_hover_text(
        "Stop a trained run once its validation PSNR has not improved for this many steps \
         (0: run every step).",
    );
    ui.add_enabled(
        sparse.validation_share > 0.0,
        egui::Checkbox::new(&mut sparse.refit, "refit on every observed pixel"),
    )
    .on_hover_text(
        "Once a run has finished, fit it again on all the observed pixels (the validation share \
         included) for as many steps as its best-validation step: validation chooses when to \
         stop, and the answer loses none of the pixels.",
    )
    .on_disabled_hover_text("Needs a validation share to choose the step.");
    ui.add(Slider::new(&mut sparse.seed, 0..=99).text("mask seed"));
    if let Some(observation) = model.target.as_ref().and_then(|t| t.observation.as_ref()) {
        ui.label(
            RichText::new(observation.observation.describe())
                .small()
                .color(palette::TEXT_DIM),
        );
        for baseline in &observation.observation.baselines {
            ui.label(
                RichText::new(format!(
                    "{}: {:.2} dB on the unobserved",
                    baseline.name, baseline.scores.unobserved_db
                ))
                .small()
                .monospace()
                .color(palette::TEXT_DIM),
            );
        }
    }
}

/// The sparse preset: the steered kernel (the study's winner) and the Fourier MLP at σ = 3 (the
/// anchor's best), on a random 10% mask with validation and the refit, on the Sparse tab.
pub fn apply_sparse_preset(settings: &mut Settings) {
    settings.sparse = SparseSettings {
        enabled: true,
        refit: true,
        ..SparseSettings::default()
    };
    for name in ["steered-kernel", "fourier-mlp"] {
        if !settings.selected.iter().any(|s| s == name) {
            settings.selected.push(name.to_owned());
        }
    }
    let mut values = settings
        .params
        .get("fourier-mlp")
        .cloned()
        .unwrap_or_default();
    values.set("sigma", 3.0);
    settings.params.insert("fourier-mlp".into(), values);
    settings.active_view = "sparse".into();
}

fn methods_ui(
    ui: &mut egui::Ui,
    settings: &mut Settings,
    model: &Model,
    actions: &mut Vec<Action>,
) {
    for info in methods::registry() {
        let mut on = settings.selected.iter().any(|s| s == info.name);
        let masked_out = settings.sparse.enabled && !info.fits_observed_pixels;
        let run = model.run(info.name).filter(|_| on && !masked_out);
        ui.horizontal(|ui| {
            swatch_ui(ui, method_color(info.name));
            let checkbox = ui
                .add_enabled(
                    !masked_out,
                    egui::Checkbox::new(&mut on, RichText::new(info.title).strong()),
                )
                .on_hover_text(info.summary)
                .on_disabled_hover_text(
                    "Cannot fit from a fraction of the pixels: paused while sparse \
                     reconstruction is on.",
                );
            if checkbox.changed() {
                if on {
                    settings.selected.push(info.name.to_owned());
                } else {
                    settings.selected.retain(|s| s != info.name);
                }
            }
            if checkbox.clicked() && on {
                actions.push(Action::Focus(info.name));
            }
            if let Some(run) = run {
                let color = match run.status {
                    RunStatus::Diverged { .. } | RunStatus::Failed(_) => palette::BAD,
                    RunStatus::Done => palette::GOOD,
                    _ => palette::TEXT_DIM,
                };
                let summary = run_summary(run);
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let label = ui.add(
                        egui::Label::new(
                            RichText::new(short(&summary, 26)).monospace().color(color),
                        )
                        .sense(egui::Sense::click()),
                    );
                    if label.clicked() {
                        actions.push(Action::Focus(info.name));
                    }
                    if summary.chars().count() > 26 {
                        label.on_hover_text(summary);
                    }
                });
            }
        });
        if let Some(activity) = run.and_then(|run| run_activity(run, model.in_flight.as_ref())) {
            ui.horizontal(|ui| {
                ui.add_space(24.0);
                ui.label(
                    RichText::new(activity)
                        .small()
                        .monospace()
                        .color(palette::TEXT_DIM),
                );
            });
        }
    }
}

fn short(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max_chars - 1).collect();
        format!("{cut}…")
    }
}

fn parameters_ui(ui: &mut egui::Ui, settings: &mut Settings) {
    let selected: Vec<&'static MethodInfo> = methods::registry()
        .iter()
        .filter(|info| settings.selected.iter().any(|s| s == info.name))
        .collect();
    if selected.is_empty() {
        ui.label(RichText::new("Select a method above.").color(palette::TEXT_DIM));
        return;
    }
    let selected_params: Vec<MethodParams> =
        selected.iter().map(|info| info.param_list()).collect();
    let shared = shared_specs(&selected_params);
    let every_method: Vec<MethodParams> = methods::registry()
        .iter()
        .map(MethodInfo::param_list)
        .collect();
    let no_values = ParamValues::new();
    if !shared.is_empty() {
        ui.label(RichText::new("shared by the selected methods").color(palette::TEXT_DIM));
        for spec in &shared {
            let owners = knob_owners(&every_method, spec);
            let first = selected
                .iter()
                .find(|info| info.params.iter().any(|s| s.name == spec.name))
                .map_or("", |info| info.name);
            // What the first selected owner runs with (a default that follows another
            // parameter resolved against that method's values).
            let values = settings.params.get(first).unwrap_or(&no_values);
            let mut value = values.get(spec);
            let follow = following(spec, values);
            let help = format!("{}\n\nApplies to: {}", spec.help, owners.join(", "));
            if let Some(edit) = param_slider_ui(ui, spec, &mut value, &help, follow) {
                // Applied to every method with this knob; each restarts only if its value changed.
                for name in owners {
                    apply_edit(
                        settings.params.entry(name.to_owned()).or_default(),
                        spec,
                        edit,
                    );
                }
            }
        }
    }
    for info in selected {
        let own: Vec<&ParamSpec> = info
            .params
            .iter()
            .filter(|spec| !shared.iter().any(|s| s.name == spec.name))
            .collect();
        ui.add_space(4.0);
        egui::CollapsingHeader::new(
            RichText::new(info.title)
                .strong()
                .color(method_color(info.name)),
        )
        .id_salt(info.name)
        .default_open(true)
        .show(ui, |ui| {
            let values = settings.params.entry(info.name.to_owned()).or_default();
            for spec in own {
                let mut value = values.get(spec);
                let follow = following(spec, values);
                if let Some(edit) = param_slider_ui(ui, spec, &mut value, spec.help, follow) {
                    apply_edit(values, spec, edit);
                }
            }
            if ui
                .small_button("defaults")
                .on_hover_text(
                    "Reset this method's parameters (shared ones included) to their defaults.",
                )
                .clicked()
            {
                *values = ParamValues::new();
            }
        });
    }
}

/// A labelled slider with its value editable as a number; the tooltip says what it does. It
/// shows the value a run uses: for a default that follows another parameter (the learning
/// rate follows the optimizer), the default for the option chosen there, until a value is set.
fn param_slider_ui(
    ui: &mut egui::Ui,
    spec: &ParamSpec,
    value: &mut f64,
    help: &str,
    follow: Option<Following>,
) -> Option<Edit> {
    let mut edit = None;
    let label = ui
        .horizontal(|ui| {
            let label = ui
                .label(RichText::new(spec.label).color(palette::TEXT_STRONG))
                .on_hover_text(help);
            match follow {
                Some(Following {
                    option,
                    explicit: false,
                }) => {
                    ui.label(
                        RichText::new(format!("{option} default"))
                            .small()
                            .color(palette::TEXT_DIM),
                    )
                    .on_hover_text(format!(
                        "Not set: the usual value for {option}; it changes with the option."
                    ));
                }
                Some(Following {
                    option,
                    explicit: true,
                }) if ui
                    .small_button(format!("use {option} default"))
                    .on_hover_text(format!(
                        "Forget the value set here and use the usual value for {option}."
                    ))
                    .clicked() =>
                {
                    edit = Some(Edit::Unset);
                }
                _ => {}
            }
            label
        })
        .inner;
    if spec.is_choice() {
        // Categorical: a combo box of the option names; the value is the chosen index.
        let mut index = (value.round().max(0.0) as usize).min(spec.choices.len() - 1);
        let before = index;
        egui::ComboBox::from_id_salt(("choice", spec.name))
            .selected_text(spec.choices[index])
            .show_ui(ui, |ui| {
                for (i, name) in spec.choices.iter().enumerate() {
                    ui.selectable_value(&mut index, i, *name);
                }
            })
            .response
            .on_hover_text(help)
            .labelled_by(label.id);
        *value = index as f64;
        return (index != before).then_some(Edit::Set(*value));
    }
    let logarithmic = spec.scale == Scale::Logarithmic;
    ui.spacing_mut().slider_width = (ui.available_width() - 90.0).max(80.0);
    let mut slider = Slider::new(value, spec.min..=spec.max).logarithmic(logarithmic);
    if spec.integer {
        slider = slider.integer();
    }
    if logarithmic && spec.min < 1e-3 {
        // λ spans 14 decades: scientific notation keeps it readable.
        slider = slider
            .custom_formatter(|v, _| format!("{v:.1e}"))
            .custom_parser(|text| text.trim().parse::<f64>().ok());
    }
    let response = ui.add(slider).on_hover_text(help).labelled_by(label.id);
    if response.changed() {
        edit = Some(Edit::Set(*value));
    }
    edit
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value the "learning rate" slider shows.
    fn shown_learning_rate(h: &egui_kittest::Harness<'_, Settings>) -> f64 {
        use egui_kittest::kittest::{NodeT, Queryable};
        let shown: Vec<f64> = h
            .query_all_by_label("learning rate")
            .filter_map(|node| node.accesskit_node().numeric_value())
            .collect();
        // The slider, and its number field when that is named after it too.
        assert!(
            !shown.is_empty() && shown.iter().all(|&v| v == shown[0]),
            "one learning-rate value: {shown:?}"
        );
        shown[0]
    }

    /// The controls panel alone, driven by kittest, with `settings` as its state.
    fn controls_harness(settings: Settings) -> egui_kittest::Harness<'static, Settings> {
        egui_kittest::Harness::builder()
            .with_size(egui::vec2(360.0, 1600.0))
            .build_ui_state(
                |ui, settings: &mut Settings| {
                    controls_ui(
                        ui,
                        settings,
                        &Model::default(),
                        false,
                        None,
                        Err(String::new()),
                    );
                },
                settings,
            )
    }

    #[test]
    fn the_learning_rate_slider_shows_the_rate_the_run_uses() {
        let settings = Settings {
            selected: vec!["fourier-mlp".into()],
            ..Settings::default()
        };
        let mut h = controls_harness(settings);
        h.run_steps(3); // the image spinner keeps repainting
        assert_eq!(shown_learning_rate(&h), 1e-3, "adam's rate");
        let optimizer = |h: &mut egui_kittest::Harness<'_, Settings>, index: f64| {
            h.state_mut()
                .params
                .entry("fourier-mlp".into())
                .or_default()
                .set("optimizer", index);
            h.run_steps(3); // the image spinner keeps repainting
        };
        optimizer(&mut h, 1.0);
        assert_eq!(shown_learning_rate(&h), 1.0, "sgd's rate");
        optimizer(&mut h, 0.0);
        assert_eq!(shown_learning_rate(&h), 1e-3, "adam's rate again");
        // A rate set by hand is used and shown whatever the optimizer.
        h.state_mut()
            .params
            .get_mut("fourier-mlp")
            .unwrap()
            .set("lr", 0.05);
        h.run_steps(3); // the image spinner keeps repainting
        assert_eq!(shown_learning_rate(&h), 0.05);
        optimizer(&mut h, 1.0);
        assert_eq!(shown_learning_rate(&h), 0.05);
        // "use sgd default" forgets it.
        use egui_kittest::kittest::Queryable;
        h.get_by_label("use sgd default").click();
        h.run_steps(3); // the image spinner keeps repainting
        assert_eq!(h.state().params["fourier-mlp"].explicit("lr"), None);
        assert_eq!(shown_learning_rate(&h), 1.0);
    }

    #[test]
    fn a_shared_learning_rate_slider_follows_the_shared_optimizer() {
        let mut settings = Settings {
            selected: vec!["fourier-mlp".into(), "learned-refine".into()],
            ..Settings::default()
        };
        for method in ["fourier-mlp", "learned-refine"] {
            settings
                .params
                .entry(method.into())
                .or_default()
                .set("optimizer", 1.0);
        }
        let mut h = controls_harness(settings);
        h.run_steps(3); // the image spinner keeps repainting
        assert_eq!(shown_learning_rate(&h), 1.0);
    }
}
