//! What the window saves on request (screenshots now): into an output folder chosen once, under
//! a numbered name that never replaces a file, with the window's setup as provenance, encoded
//! and written off the UI thread so a frame never waits for the disk.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use egui::ColorImage;

use super::settings::Settings;
use super::state::Model;
use crate::methods::{self, ParamValues};
use crate::output::{Existing, png_bytes_with_text, write_atomic};
use crate::provenance::Provenance;
use crate::rng::RngKind;
use crate::target::Fit;
use crate::ui::ViewExport;

/// Where saved files go until the user picks a folder: the pictures folder when there is one.
pub fn default_output_folder() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match home {
        Some(home) if home.join("Pictures").is_dir() => home.join("Pictures").join("inrlab"),
        Some(home) => home.join("inrlab"),
        None => PathBuf::from("inrlab-output"),
    }
}

/// The first `<stem>-NNN.<extensions[0]>` in `folder` such that no `<stem>-NNN` with any of
/// `extensions` exists yet (files saved together share their number), after making the folder.
pub fn numbered_path(folder: &Path, stem: &str, extensions: &[&str]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(folder)
        .map_err(|e| anyhow::anyhow!("cannot create the folder {}: {e}", folder.display()))?;
    let path = (1..)
        .map(|n| folder.join(format!("{stem}-{n:03}.{}", extensions[0])))
        .find(|path| extensions.iter().all(|e| !path.with_extension(e).exists()))
        .expect("some number is free");
    Ok(path)
}

/// How the window's current picture was made: its image, working size, the selected methods
/// with their parameters, the generator and the backend. `None` before an image is loaded.
pub fn window_provenance(model: &Model, settings: &Settings) -> Option<Provenance> {
    let target = model.target.as_ref()?;
    let runs: Vec<(&methods::MethodInfo, ParamValues)> = methods::registry()
        .iter()
        .filter(|info| settings.selected.iter().any(|s| s == info.name))
        .map(|info| {
            let values = settings.params.get(info.name).cloned().unwrap_or_default();
            (info, values)
        })
        .collect();
    let borrowed: Vec<_> = runs.iter().map(|(info, values)| (*info, values)).collect();
    let (backend, adapter) = model
        .backend
        .as_ref()
        .map_or(("unknown".to_owned(), String::new()), |(kind, adapter)| {
            (kind.to_string(), adapter.clone())
        });
    // The window fits stretched images with numpy's generator, as `inrlab run` does by default.
    let mut record = Provenance::with_backend_names(
        target.origin.clone(),
        target.size,
        Fit::Stretch,
        RngKind::Numpy,
        (backend, adapter),
        &borrowed,
    )
    .ok()?;
    record.dataset = model.folder.clone();
    if record.dataset.is_some() {
        record.dataset_files = (model.runs.iter())
            .flat_map(|run| run.data_files.iter().cloned())
            .collect();
    }
    Some(record)
}

/// One method's step as the metrics files list it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MetricsRow {
    pub method: &'static str,
    pub step: usize,
    pub label: String,
    pub psnr_db: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Compute seconds of the run up to and including this step.
    pub seconds: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<crate::methods::LevelReport>,
    /// Seen through a mask: the scores on its sets.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<crate::sparse::SetScores>,
}

/// Every step of every run the window has, in registry order then by step.
pub fn metrics_rows(model: &Model) -> Vec<MetricsRow> {
    let mut rows = Vec::new();
    for run in &model.runs {
        let mut seconds = 0.0;
        for cell in run.cells.values() {
            seconds += cell.step_secs;
            rows.push(MetricsRow {
                method: run.info.name,
                step: cell.report.step,
                label: cell.report.label.clone(),
                psnr_db: cell.report.psnr_db,
                loss: cell.report.loss,
                seconds,
                levels: cell.report.levels.clone(),
                sparse: cell.report.sparse,
            });
        }
    }
    rows
}

/// Writes `rows` as `metrics-NNN.csv` and `metrics-NNN.json` (same number) in `folder`, each
/// with the provenance; returns the CSV's path.
pub fn save_metrics(
    folder: &Path,
    rows: &[MetricsRow],
    provenance: &Provenance,
) -> anyhow::Result<PathBuf> {
    let csv_path = numbered_path(folder, "metrics", &["csv", "json"])?;
    let csv = metrics_csv(rows, provenance);
    let json = serde_json::to_vec_pretty(&serde_json::json!({
        "provenance": provenance,
        "steps": rows,
    }))?;
    write_atomic(&csv_path.with_extension("json"), &json, Existing::Refuse)?;
    write_atomic(&csv_path, csv.as_bytes(), Existing::Refuse)?;
    Ok(csv_path)
}

/// The metrics as CSV: the provenance as `# ` lines, then a row per method and step.
fn metrics_csv(rows: &[MetricsRow], provenance: &Provenance) -> String {
    let mut csv = provenance.csv_header();
    csv.push_str(&format!("method,{}\n", Provenance::CSV_STEP_COLUMNS));
    for row in rows {
        let step = crate::provenance::csv_step_row(
            row.step,
            &row.label,
            row.psnr_db,
            row.loss,
            row.seconds,
            row.sparse.as_ref(),
        );
        csv.push_str(&format!("{},{step}\n", row.method));
    }
    csv
}

/// Width of an exported curves plot.
const CURVES_WIDTH_PX: u32 = 1400;

/// Writes a view's export into `folder` under a new number: `<view>-NNN.png` for a sheet, or
/// `curves-NNN.png` with the numbers behind it as `curves-NNN.csv` (`rows`). Returns the PNG.
pub fn save_view_export(
    folder: &Path,
    view: &str,
    export: ViewExport,
    rows: &[MetricsRow],
    provenance: &Provenance,
) -> anyhow::Result<PathBuf> {
    let (picture, csv) = match export {
        ViewExport::Sheet(sheet) => (sheet.render(), None),
        ViewExport::Curves(figure) => (
            figure.render(CURVES_WIDTH_PX)?,
            Some(metrics_csv(rows, provenance)),
        ),
    };
    let bytes = png_bytes_with_text(&picture, &provenance.png_text())?;
    let path = numbered_path(folder, view, &["png", "csv"])?;
    if let Some(csv) = csv {
        write_atomic(
            &path.with_extension("csv"),
            csv.as_bytes(),
            Existing::Refuse,
        )?;
    }
    write_atomic(&path, &bytes, Existing::Refuse)?;
    Ok(path)
}

/// Writes `record` as a preset (pretty JSON), atomically.
pub fn save_preset(path: &Path, record: &Provenance, existing: Existing) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(record)?;
    write_atomic(path, &json, existing)
}

/// The outcome of a save, for the banner: the file written, or why not.
pub type Saved = Arc<Mutex<Option<Result<PathBuf, String>>>>;

/// The picture as PNG with the provenance in its text chunks, under a new numbered name.
pub fn save_window_picture(
    folder: &Path,
    image: &ColorImage,
    provenance: Option<&Provenance>,
) -> anyhow::Result<PathBuf> {
    let picture = rgb_picture(image)?;
    let text = provenance.map(Provenance::png_text).unwrap_or_default();
    let bytes = png_bytes_with_text(&picture, &text)?;
    let path = numbered_path(folder, "screenshot", &["png"])?;
    write_atomic(&path, &bytes, Existing::Refuse)?;
    Ok(path)
}

/// egui's RGBA screenshot as an RGB image.
pub fn rgb_picture(image: &ColorImage) -> anyhow::Result<image::RgbImage> {
    let [width, height] = image.size;
    let rgb: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|c| {
            let [r, g, b, _] = c.to_array();
            [r, g, b]
        })
        .collect();
    image::RgbImage::from_raw(width as u32, height as u32, rgb)
        .ok_or_else(|| anyhow::anyhow!("the screenshot has an unexpected size"))
}

/// Shows `folder` in the desktop's file manager.
pub fn open_folder(folder: &Path) -> anyhow::Result<()> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(target_os = "windows") {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(folder)
        .spawn()
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("cannot open {} with {opener}: {e}", folder.display()))
}

/// A recording of the view in the window: a frame each time `every` new steps have arrived,
/// cut out of a window screenshot (the view's rectangle), handed to a [`Recorder`] that never
/// makes the UI wait (a full queue drops the frame and counts it).
///
/// [`Recorder`]: crate::recording::Recorder
pub struct WindowRecording {
    pub recorder: crate::recording::Recorder,
    pub every: u64,
    /// `Model::frames_received` when the last frame was asked for.
    pub last_frames: u64,
    /// Whether a screenshot for it is on its way.
    pub pending: bool,
}

impl WindowRecording {
    /// Starts `recording-NNN.<extension>` in `folder`.
    pub fn start(
        folder: &Path,
        extension: &str,
        every: u64,
        fps: u32,
        provenance: Option<&Provenance>,
    ) -> anyhow::Result<Self> {
        let path = numbered_path(folder, "recording", &[extension])?;
        let options = crate::recording::RecordingOptions {
            fps,
            text: provenance.map(Provenance::png_text).unwrap_or_default(),
            ..Default::default()
        };
        Ok(WindowRecording {
            recorder: crate::recording::Recorder::start(&path, options, Existing::Refuse)?,
            every: every.max(1),
            last_frames: 0,
            pending: false,
        })
    }

    /// Whether enough new steps have arrived for another frame.
    pub fn wants_frame(&self, frames_received: u64) -> bool {
        !self.pending && frames_received >= self.last_frames + self.every
    }
}

/// The part of a window screenshot inside `rect` (in points, `pixels_per_point` pixels each),
/// as RGB bytes.
pub fn crop_rgb(
    image: &ColorImage,
    rect: egui::Rect,
    pixels_per_point: f32,
) -> (usize, usize, Vec<u8>) {
    let [width, height] = image.size;
    let x0 = ((rect.min.x * pixels_per_point).round().max(0.0) as usize).min(width - 1);
    let y0 = ((rect.min.y * pixels_per_point).round().max(0.0) as usize).min(height - 1);
    let x1 = ((rect.max.x * pixels_per_point).round() as usize).clamp(x0 + 1, width);
    let y1 = ((rect.max.y * pixels_per_point).round() as usize).clamp(y0 + 1, height);
    let mut rgb = Vec::with_capacity((x1 - x0) * (y1 - y0) * 3);
    for y in y0..y1 {
        for pixel in &image.pixels[y * width + x0..y * width + x1] {
            let [r, g, b, _] = pixel.to_array();
            rgb.extend_from_slice(&[r, g, b]);
        }
    }
    (x1 - x0, y1 - y0, rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_never_replace_a_file_and_pictures_carry_their_record() {
        let folder = std::env::temp_dir().join(format!("inrlab-saving-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        let image = ColorImage::new([4, 3], vec![egui::Color32::from_rgb(9, 80, 200); 12]);
        let first = save_window_picture(&folder, &image, None).unwrap();
        let second = save_window_picture(&folder, &image, None).unwrap();
        assert_eq!(first.file_name().unwrap(), "screenshot-001.png");
        assert_eq!(second.file_name().unwrap(), "screenshot-002.png");
        let decoded = image::open(&second).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (4, 3));
        assert_eq!(decoded.get_pixel(0, 0).0, [9, 80, 200]);
        // An unwritable place is an error, not a panic.
        let blocked = folder.join("screenshot-001.png").join("inside");
        assert!(save_window_picture(&blocked, &image, None).is_err());
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
