//! What the window remembers between runs ([`Settings`]) and the working sizes it offers.

use std::collections::BTreeMap;

use super::protocol::Desired;
use crate::methods::{self, MethodInfo, MethodParams, ParamValues, params};

/// Working sizes offered (pixels a side).
pub const WORKING_SIZES: [usize; 4] = [64, 128, 256, 512];

/// What survives a restart: the selection, every method's parameters, the working size, the
/// active view. (Panel widths and the window size are persisted by egui and eframe.)
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub selected: Vec<String>,
    pub params: BTreeMap<String, ParamValues>,
    pub working_size: usize,
    pub active_view: String,
    pub show_ground_truth: bool,
    /// Where screenshots and exports go (`None`: [`super::saving::default_output_folder`]).
    pub output_folder: Option<std::path::PathBuf>,
    /// Recordings of the view: the file type ("gif", "png" for lossless APNG, "mp4" through
    /// ffmpeg), a frame every this many steps, and frames per second.
    pub record_format: String,
    pub record_every: u64,
    pub record_fps: u32,
    /// Reconstruction from a fraction of the pixels (kept while it is off, so turning it on
    /// again restores it).
    pub sparse: SparseSettings,
}

/// The window's mask controls.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SparseSettings {
    pub enabled: bool,
    /// "random", "grid" or "center".
    pub pattern: String,
    /// Observed share for the random and centre-weighted patterns.
    pub density: f64,
    /// Every this many rows and columns, for the grid.
    pub stride: usize,
    pub seed: u32,
    pub validation_share: f64,
    /// Stop after this many steps without a better validation PSNR (0: never).
    pub patience: usize,
    /// Fit a finished validated run again on every observed pixel, to its best step.
    #[serde(default)]
    pub refit: bool,
}

impl Default for SparseSettings {
    fn default() -> Self {
        SparseSettings {
            enabled: false,
            pattern: "random".into(),
            density: 0.1,
            stride: 3,
            seed: 0,
            validation_share: crate::sparse::ObservationSpec::DEFAULT_VALIDATION_SHARE,
            patience: 0,
            refit: false,
        }
    }
}

impl SparseSettings {
    pub const PATTERNS: [&'static str; 3] = ["random", "grid", "center"];

    /// What the worker sees the image through; `None` while it is off.
    pub fn spec(&self) -> Option<crate::sparse::ObservationSpec> {
        self.enabled.then(|| crate::sparse::ObservationSpec {
            mask: match self.pattern.as_str() {
                "grid" => format!("grid:{}", self.stride.max(1)),
                pattern => format!("{pattern}:{}", self.density.clamp(0.001, 1.0)),
            },
            seed: self.seed,
            validation_share: self.validation_share.clamp(0.0, 0.5),
            patience: self.patience,
            refit: self.refit,
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            selected: methods::registry()
                .iter()
                .filter(|info| info.default_on)
                .map(|info| info.name.to_owned())
                .collect(),
            params: BTreeMap::new(),
            working_size: 128,
            active_view: "trajectory".into(),
            show_ground_truth: false,
            output_folder: None,
            record_format: "gif".into(),
            record_every: 1,
            record_fps: 15,
            sparse: SparseSettings::default(),
        }
    }
}

impl Settings {
    /// Drops what a newer or older build would not understand: unknown methods, values outside
    /// their ranges, working sizes not offered.
    pub fn sanitized(mut self) -> Self {
        self.selected.retain(|name| methods::find(name).is_ok());
        self.params.retain(|name, values| {
            methods::find(name).is_ok_and(|info| values.validate(info.name, info.params).is_ok())
        });
        if !WORKING_SIZES.contains(&self.working_size) {
            self.working_size = Settings::default().working_size;
        }
        if !SparseSettings::PATTERNS.contains(&self.sparse.pattern.as_str())
            || self
                .sparse
                .spec()
                .is_some_and(|spec| spec.mask.parse::<crate::sparse::MaskSpec>().is_err())
        {
            self.sparse = SparseSettings::default();
        }
        self
    }

    /// The worker's view of these settings.
    pub fn desired(&self, step_limit: Option<usize>) -> Desired {
        let registry = methods::registry();
        Desired {
            selected: registry
                .iter()
                .filter(|info| self.selected.iter().any(|s| s == info.name))
                // Seen through a mask, only the methods that can fit on part of the pixels run.
                .filter(|info| !self.sparse.enabled || info.fits_observed_pixels)
                .map(|info| info.name)
                .collect(),
            params: registry
                .iter()
                .filter_map(|info| self.params.get(info.name).map(|v| (info.name, v.clone())))
                .collect(),
            working_size: self.working_size,
            step_limit,
            iterates_for: None,
            levels_for: None,
            focused: None,
            observation: self.sparse.spec(),
            zoom: None,
            host_images: false,
        }
    }

    pub fn selected_names(&self) -> Vec<&'static str> {
        self.desired(None).selected
    }

    /// Applies what the command line asked for: the methods to show, in place of the stored
    /// selection, and parameter values, each set on every selected method that has the
    /// parameter (`--steps 40` means training steps for a trained method, reservoir steps for a
    /// reservoir one). A value given there counts as set by the user (a learning rate given
    /// stays, whatever the optimizer).
    pub fn apply_command_line(
        &mut self,
        selected: Option<&[String]>,
        given: &ParamValues,
    ) -> anyhow::Result<()> {
        if let Some(names) = selected {
            for name in names {
                methods::find(name)?;
            }
            self.selected = names.to_vec();
        }
        let selected: Vec<MethodParams> = methods::registry()
            .iter()
            .filter(|info| self.selected.iter().any(|s| s == info.name))
            .map(MethodInfo::param_list)
            .collect();
        params::set_on_every_owner(&mut self.params, &selected, given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_round_trip_and_bad_entries_are_dropped() {
        let mut settings = Settings {
            active_view: "curves".into(),
            ..Settings::default()
        };
        settings
            .params
            .entry("trajectory".into())
            .or_default()
            .set("spectral-radius", 0.7);
        let json = serde_json::to_string(&settings).unwrap();
        let restored: Settings = serde_json::from_str(&json).unwrap();
        assert_eq!(restored.clone().sanitized(), settings);

        let mut stale = restored;
        stale.selected.push("a-method-that-was-removed".into());
        stale
            .params
            .entry("refine".into())
            .or_default()
            .set("spectral-radius", 99.0);
        stale.working_size = 100;
        let clean = stale.sanitized();
        assert!(!clean.selected.iter().any(|s| s.contains("removed")));
        assert!(!clean.params.contains_key("refine"));
        assert_eq!(clean.working_size, 128);
    }

    #[test]
    fn a_first_start_runs_the_methods_that_are_on_by_default() {
        let selected = Settings::default().selected;
        assert!(!selected.iter().any(|s| s == "cumulative"), "{selected:?}");
        for info in methods::registry().iter().filter(|info| info.default_on) {
            assert!(selected.iter().any(|s| s == info.name), "{}", info.name);
        }
    }

    #[test]
    fn desired_follows_registry_order_and_keeps_only_known_methods() {
        let settings = Settings {
            selected: vec!["fourier-ridge".into(), "trajectory".into()],
            ..Settings::default()
        };
        assert_eq!(
            settings.desired(None).selected,
            vec!["trajectory", "fourier-ridge"]
        );
    }

    #[test]
    fn the_command_line_picks_methods_and_sets_parameters_on_every_owner() {
        let mut settings = Settings::default();
        let mut params = ParamValues::new();
        params.set("optimizer", 1.0);
        settings
            .apply_command_line(
                Some(&["learned-refine".to_owned(), "fourier-mlp".to_owned()]),
                &params,
            )
            .unwrap();
        assert_eq!(
            settings.selected_names(),
            vec!["fourier-mlp", "learned-refine"]
        );
        for method in ["fourier-mlp", "learned-refine"] {
            let values = &settings.params[method];
            assert_eq!(values.explicit("optimizer"), Some(1.0), "{method}");
            assert_eq!(
                values.get(&crate::methods::training::LEARNING_RATE),
                1.0,
                "{method} follows sgd"
            );
        }
        // Methods not selected keep their values.
        assert!(!settings.params.contains_key("coord-mlp"));
        let mut steps = ParamValues::new();
        steps.set("spectral-radius", 0.5);
        assert!(
            settings.apply_command_line(None, &steps).is_err(),
            "no selected method has ρ"
        );
        let mut bad = ParamValues::new();
        bad.set("lr", 1e9);
        assert!(Settings::default().apply_command_line(None, &bad).is_err());
        assert!(
            Settings::default()
                .apply_command_line(Some(&["nope".to_owned()]), &ParamValues::new())
                .is_err()
        );
    }
}
