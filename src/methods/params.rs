//! Hyperparameters as data: each method lists [`ParamSpec`]s, and the command line, the window's
//! sliders and the metrics file are all generated from those lists. The rules for setting values
//! live here too (which knobs methods share, which values are stored, how a value given on the
//! command line reaches each method), so the window and the command line follow the same ones.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};

/// How a slider moves through a parameter's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// For quantities that span decades (σ, λ, learning rates).
    Logarithmic,
}

/// A default that depends on the option chosen for a categorical parameter, e.g. the learning
/// rate, whose usual value depends on the optimizer. The command line, the window's sliders and
/// the metrics files all resolve it through [`ParamValues::get`], so they agree on the value used.
#[derive(Clone, Copy, Debug)]
pub struct ChoiceDefault {
    /// The categorical parameter this default follows.
    pub choice: &'static ParamSpec,
    /// The default for each of its options, in the order of `choice.choices`.
    pub defaults: &'static [f64],
}

/// One hyperparameter of a method.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    /// The command-line name, `--<name> <value>`.
    pub name: &'static str,
    /// Short label for the window, e.g. "spectral radius ρ".
    pub label: &'static str,
    /// What it does, for tooltips and `--help`.
    pub help: &'static str,
    /// The value when the user sets none. For a parameter whose default follows another
    /// ([`Self::follows`]), the default for that one's default option; use
    /// [`ParamSpec::default_in`] or [`ParamValues::get`] for the value actually used.
    pub default: f64,
    pub min: f64,
    pub max: f64,
    pub scale: Scale,
    pub integer: bool,
    /// Names of a categorical parameter's options; its value is the index of the chosen one.
    /// Empty for numeric parameters. The command line takes the names (`--optimizer adam`) and
    /// the window shows a combo box.
    pub choices: &'static [&'static str],
    /// When set, the default depends on another (categorical) parameter's value.
    pub follows: Option<ChoiceDefault>,
}

impl ParamSpec {
    pub const fn real(
        name: &'static str,
        label: &'static str,
        help: &'static str,
        default: f64,
        min: f64,
        max: f64,
    ) -> Self {
        ParamSpec {
            name,
            label,
            help,
            default,
            min,
            max,
            scale: Scale::Linear,
            integer: false,
            choices: &[],
            follows: None,
        }
    }

    pub const fn integer(
        name: &'static str,
        label: &'static str,
        help: &'static str,
        default: f64,
        min: f64,
        max: f64,
    ) -> Self {
        ParamSpec {
            integer: true,
            ..Self::real(name, label, help, default, min, max)
        }
    }

    /// A categorical parameter: `choices[default]` unless set; the value is an index.
    pub const fn choice(
        name: &'static str,
        label: &'static str,
        help: &'static str,
        choices: &'static [&'static str],
        default: usize,
    ) -> Self {
        ParamSpec {
            choices,
            ..Self::integer(
                name,
                label,
                help,
                default as f64,
                0.0,
                (choices.len() - 1) as f64,
            )
        }
    }

    pub const fn is_choice(&self) -> bool {
        !self.choices.is_empty()
    }

    /// The index of the option called `name`, for the command line.
    pub fn choice_index(&self, name: &str) -> anyhow::Result<usize> {
        match self
            .choices
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
        {
            Some(index) => Ok(index),
            None => bail!(
                "--{} {name} is not one of: {}",
                self.name,
                self.choices.join(", ")
            ),
        }
    }

    pub const fn logarithmic(self) -> Self {
        ParamSpec {
            scale: Scale::Logarithmic,
            ..self
        }
    }

    /// A default that follows the option chosen for `choice`: `defaults[i]` when its option `i`
    /// is chosen. One default per option, each inside this parameter's range.
    pub const fn default_follows(
        self,
        choice: &'static ParamSpec,
        defaults: &'static [f64],
    ) -> Self {
        assert!(
            choice.is_choice(),
            "a default can only follow a categorical parameter"
        );
        assert!(
            defaults.len() == choice.choices.len(),
            "one default per option"
        );
        let mut i = 0;
        while i < defaults.len() {
            assert!(
                defaults[i] >= self.min && defaults[i] <= self.max,
                "default out of range"
            );
            i += 1;
        }
        ParamSpec {
            default: defaults[choice.default as usize],
            follows: Some(ChoiceDefault { choice, defaults }),
            ..self
        }
    }

    /// The default given the other values set: [`Self::default`], or for a parameter that
    /// follows another, the default for the option chosen there.
    pub fn default_in(&self, values: &ParamValues) -> f64 {
        match &self.follows {
            Some(follows) => {
                let last = follows.defaults.len().saturating_sub(1);
                follows.defaults[values.get_usize(follows.choice).min(last)]
            }
            None => self.default,
        }
    }

    /// Checks a value against the range; the message names the parameter and the range.
    pub fn check(&self, value: f64) -> anyhow::Result<()> {
        if !value.is_finite() || value < self.min || value > self.max {
            bail!(
                "--{} {value} is outside its range {}–{}",
                self.name,
                self.min,
                self.max
            );
        }
        if self.integer && value.fract() != 0.0 {
            bail!("--{} must be a whole number, not {value}", self.name);
        }
        Ok(())
    }
}

/// Values set by the user; anything not set takes its spec's default.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParamValues(BTreeMap<String, f64>);

impl ParamValues {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: &str, value: f64) {
        self.0.insert(name.to_owned(), value);
    }

    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    pub fn explicit(&self, name: &str) -> Option<f64> {
        self.0.get(name).copied()
    }

    /// The value of `spec`: the one set, or its default given the other values
    /// ([`ParamSpec::default_in`]). This is the value a method runs with.
    pub fn get(&self, spec: &ParamSpec) -> f64 {
        self.explicit(spec.name)
            .unwrap_or_else(|| spec.default_in(self))
    }

    /// The values set, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(name, &value)| (name.as_str(), value))
    }

    pub fn get_usize(&self, spec: &ParamSpec) -> usize {
        self.get(spec).round().max(0.0) as usize
    }

    /// The chosen option's name of a categorical parameter; an error when the value is not the
    /// index of one of its options.
    pub fn get_choice(&self, spec: &ParamSpec) -> anyhow::Result<&'static str> {
        let value = self.get(spec);
        if value.fract() == 0.0 && value >= 0.0 && value < spec.choices.len() as f64 {
            Ok(spec.choices[value as usize])
        } else if spec.is_choice() {
            bail!(
                "--{} {value} is not the index of one of: {}",
                spec.name,
                spec.choices.join(", ")
            )
        } else {
            bail!("--{} is not a categorical parameter", spec.name)
        }
    }

    /// The chosen option of a categorical parameter as its enum; an error when the value names
    /// no option or an option the enum lacks.
    pub fn get_option<T: ChoiceOption>(&self, spec: &ParamSpec) -> anyhow::Result<T> {
        let name = self.get_choice(spec)?;
        T::ALL
            .iter()
            .copied()
            .find(|option| option.name() == name)
            .ok_or_else(|| anyhow!("--{} {name} is not an option of this method", spec.name))
    }

    /// Every parameter must belong to the method and lie in its range.
    pub fn validate(&self, method: &str, specs: &[ParamSpec]) -> anyhow::Result<()> {
        for (name, &value) in &self.0 {
            match specs.iter().find(|s| s.name == name) {
                Some(spec) => spec.check(value)?,
                None => bail!("method '{method}' has no parameter --{name}"),
            }
        }
        Ok(())
    }

    /// All of a method's values, defaults included (as resolved by [`Self::get`]), for metrics
    /// files: numbers, and a categorical parameter's option by name.
    pub fn resolved(&self, specs: &[ParamSpec]) -> anyhow::Result<BTreeMap<String, Resolved>> {
        specs
            .iter()
            .map(|spec| {
                let value = if spec.is_choice() {
                    Resolved::Choice(self.get_choice(spec)?)
                } else {
                    Resolved::Number(self.get(spec))
                };
                Ok((spec.name.to_owned(), value))
            })
            .collect()
    }
}

/// A parameter's value as a metrics file records it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Resolved {
    Number(f64),
    /// The chosen option's name ("adam", "on").
    Choice(&'static str),
}

/// The options of a categorical parameter as a Rust enum, matched to the spec's option names
/// (so an option added to one and not the other is an error, never another option).
pub trait ChoiceOption: Copy + 'static {
    /// Every variant.
    const ALL: &'static [Self];
    /// Its option's name in the spec's `choices`.
    fn name(self) -> &'static str;
}

/// One method's parameters, by the method's name: what the rules below need of a registry
/// entry (`MethodInfo::param_list`), so that this module does not depend on the registry.
#[derive(Clone, Copy, Debug)]
pub struct MethodParams {
    pub method: &'static str,
    pub specs: &'static [ParamSpec],
}

impl MethodParams {
    fn find(&self, name: &str) -> Option<&'static ParamSpec> {
        self.specs.iter().find(|spec| spec.name == name)
    }
}

/// Two specs describe the same knob (same name, meaning and range), so one control may drive
/// both.
pub fn same_knob(a: &ParamSpec, b: &ParamSpec) -> bool {
    a.name == b.name
        && a.label == b.label
        && a.min == b.min
        && a.max == b.max
        && a.default == b.default
        && a.scale == b.scale
        && a.integer == b.integer
        && a.choices == b.choices
        && a.follows.map(|f| (f.choice.name, f.defaults))
            == b.follows.map(|f| (f.choice.name, f.defaults))
}

/// Parameters that two or more of `methods` share identically (every one that has the name has
/// the same knob), in first-seen order.
pub fn shared_specs(methods: &[MethodParams]) -> Vec<&'static ParamSpec> {
    let mut shared: Vec<&'static ParamSpec> = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        for spec in method.specs {
            if shared.iter().any(|s| s.name == spec.name) {
                continue;
            }
            let others: Vec<_> = methods[i + 1..]
                .iter()
                .filter_map(|other| other.find(spec.name))
                .collect();
            let all_same = others.iter().all(|s| same_knob(s, spec));
            let appears_before = methods[..i]
                .iter()
                .any(|other| other.find(spec.name).is_some());
            if !others.is_empty() && all_same && !appears_before {
                shared.push(spec);
            }
        }
    }
    shared
}

/// The methods among `methods` that have `spec`'s knob: those a shared control drives.
pub fn knob_owners(methods: &[MethodParams], spec: &ParamSpec) -> Vec<&'static str> {
    methods
        .iter()
        .filter(|method| method.specs.iter().any(|s| same_knob(s, spec)))
        .map(|method| method.method)
        .collect()
}

/// Sets a value, removing it when it is the default (given the other values: a learning rate
/// equal to the optimizer's usual one stays unset and keeps following the optimizer), so that
/// equal settings compare equal and a method restarts only when its effective value changes.
pub fn set_param(values: &mut ParamValues, spec: &ParamSpec, value: f64) {
    if value == spec.default_in(values) {
        values.remove(spec.name);
    } else {
        values.set(spec.name, value);
    }
}

/// What the user did to a parameter's control.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Edit {
    Set(f64),
    /// Forget the value set, so the default (which may follow another parameter) applies.
    Unset,
}

pub fn apply_edit(values: &mut ParamValues, spec: &ParamSpec, edit: Edit) {
    match edit {
        Edit::Set(value) => set_param(values, spec, value),
        Edit::Unset => values.remove(spec.name),
    }
}

/// For a parameter whose default follows another's option: that option's name, and whether a
/// value of its own is set (then the default is not in use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Following {
    pub option: &'static str,
    pub explicit: bool,
}

/// `None` for a parameter whose default follows nothing, or whose option value names no option.
pub fn following(spec: &ParamSpec, values: &ParamValues) -> Option<Following> {
    let follows = spec.follows?;
    Some(Following {
        option: values.get_choice(follows.choice).ok()?,
        explicit: values.explicit(spec.name).is_some(),
    })
}

/// Sets every value in `given` on each of `methods` that has the parameter, as given (a value
/// given counts as set by the user, even when it equals a default): `--steps 40` means training
/// steps for a trained method and reservoir steps for a reservoir one. An error when none of
/// `methods` has a parameter, or a value is outside an owner's range; `values_by_method` is
/// unchanged then.
pub fn set_on_every_owner(
    values_by_method: &mut BTreeMap<String, ParamValues>,
    methods: &[MethodParams],
    given: &ParamValues,
) -> anyhow::Result<()> {
    let mut updated = values_by_method.clone();
    for (name, value) in given.iter() {
        let mut owned = false;
        for method in methods {
            let Some(spec) = method.find(name) else {
                continue;
            };
            spec.check(value)?;
            updated
                .entry(method.method.to_owned())
                .or_default()
                .set(name, value);
            owned = true;
        }
        anyhow::ensure!(
            owned,
            "none of the selected methods has a parameter --{name}"
        );
    }
    *values_by_method = updated;
    Ok(())
}

/// Parameters that several methods share (the reservoir methods' knobs, the Fourier scale), so
/// every one spells and bounds them alike and one control may drive them all.
pub mod common {
    use super::ParamSpec;

    pub const FOURIER_SCALE: ParamSpec = ParamSpec::real(
        "sigma",
        "Fourier scale σ",
        "Standard deviation of the random frequencies. Small σ gives smooth, blurry fits; \
         large σ fits fine detail and, too large, noise.",
        10.0,
        0.1,
        100.0,
    )
    .logarithmic();

    pub const HIDDEN: ParamSpec = ParamSpec::integer(
        "hidden",
        "hidden size",
        "Reservoir units. More units fit finer detail; the Gram products grow with its square.",
        256.0,
        1.0,
        4096.0,
    );
    pub const SPECTRAL_RADIUS: ParamSpec = ParamSpec::real(
        "spectral-radius",
        "spectral radius ρ",
        "Largest |eigenvalue| of the recurrent matrix. Below 1 the state forgets its start; \
         near and above 1 it keeps mixing and grows more detailed, then chaotic.",
        0.95,
        0.0,
        1.5,
    );
    pub const LAMBDA: ParamSpec = ParamSpec::real(
        "lambda",
        "ridge λ",
        "Ridge regularisation of the linear readout. Smaller fits tighter; larger smooths.",
        1e-6,
        1e-12,
        1e2,
    )
    .logarithmic();
    pub const INPUT_SCALE: ParamSpec = ParamSpec::real(
        "input-scale",
        "input scale",
        "Standard deviation of the input weights W_in: how strongly coordinates drive the units.",
        0.5,
        0.0,
        20.0,
    );
    pub const BIAS_SCALE: ParamSpec = ParamSpec::real(
        "bias-scale",
        "bias scale",
        "Standard deviation of the unit biases.",
        0.1,
        0.0,
        5.0,
    );
    pub const SEED: ParamSpec = ParamSpec::integer(
        "seed",
        "seed",
        "Seed of the random weights (with --rng numpy, np.random.seed).",
        42.0,
        0.0,
        4_294_967_295.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODE: ParamSpec = ParamSpec::choice("mode", "mode", "", &["slow", "fast"], 0);
    const RATE: ParamSpec =
        ParamSpec::real("rate", "rate", "", 0.0, 0.0, 100.0).default_follows(&MODE, &[0.5, 20.0]);

    #[test]
    fn a_default_follows_the_option_chosen() {
        let mut values = ParamValues::new();
        assert_eq!(RATE.default, 0.5, "the default option's default");
        assert_eq!(values.get(&RATE), 0.5);
        values.set("mode", 1.0);
        assert_eq!(values.get(&RATE), 20.0);
        assert_eq!(
            values.resolved(&[MODE, RATE]).unwrap()["rate"],
            Resolved::Number(20.0)
        );
        // A value set by the user wins whatever the option.
        values.set("rate", 3.0);
        assert_eq!(values.get(&RATE), 3.0);
        values.remove("mode");
        assert_eq!(values.get(&RATE), 3.0);
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Mode {
        Slow,
        Fast,
    }

    impl ChoiceOption for Mode {
        const ALL: &'static [Self] = &[Mode::Slow, Mode::Fast];
        fn name(self) -> &'static str {
            match self {
                Mode::Slow => "slow",
                Mode::Fast => "fast",
            }
        }
    }

    #[test]
    fn options_are_typed_and_unknown_ones_are_errors() {
        let mut values = ParamValues::new();
        assert_eq!(values.get_option::<Mode>(&MODE).unwrap(), Mode::Slow);
        values.set("mode", 1.0);
        assert_eq!(values.get_choice(&MODE).unwrap(), "fast");
        assert_eq!(values.get_option::<Mode>(&MODE).unwrap(), Mode::Fast);
        for not_an_option in [2.0, -1.0, 0.5, f64::NAN] {
            values.set("mode", not_an_option);
            assert!(values.get_choice(&MODE).is_err(), "{not_an_option}");
            assert!(values.get_option::<Mode>(&MODE).is_err(), "{not_an_option}");
            assert!(values.resolved(&[MODE]).is_err(), "{not_an_option}");
        }
        // An option the enum does not know is an error, not another option.
        const MORE: ParamSpec = ParamSpec::choice("mode", "mode", "", &["slow", "fast", "warp"], 0);
        values.set("mode", 2.0);
        assert_eq!(values.get_choice(&MORE).unwrap(), "warp");
        assert!(values.get_option::<Mode>(&MORE).is_err());
        // Metrics name the option.
        values.set("mode", 1.0);
        let resolved = values.resolved(&[MODE, RATE]).unwrap();
        assert_eq!(resolved["mode"], Resolved::Choice("fast"));
        assert_eq!(
            serde_json::to_value(&resolved).unwrap(),
            serde_json::json!({"mode": "fast", "rate": 20.0})
        );
    }

    fn params_of(names: &[&str]) -> Vec<MethodParams> {
        names
            .iter()
            .map(|name| crate::methods::find(name).unwrap().param_list())
            .collect()
    }

    #[test]
    fn reservoir_methods_share_their_common_knobs() {
        let shared = |names: &[&str]| -> Vec<&str> {
            shared_specs(&params_of(names))
                .iter()
                .map(|s| s.name)
                .collect()
        };
        let names = shared(&["trajectory", "cumulative", "fourier-ridge"]);
        assert!(names.contains(&"spectral-radius"), "{names:?}");
        assert!(names.contains(&"seed"), "{names:?}");
        // A knob with the same name but another default or range keeps its own control.
        let names = shared(&["trajectory", "refine"]);
        assert!(!names.contains(&"spectral-radius"), "{names:?}");
        assert!(names.contains(&"hidden"), "{names:?}");
        // The Fourier methods share σ.
        let names = shared(&["fourier-ridge", "fourier-mlp"]);
        assert_eq!(names, ["sigma"]);
        assert_eq!(
            knob_owners(
                &params_of(&["trajectory", "refine", "fourier-ridge"]),
                &common::SEED
            ),
            ["trajectory", "refine", "fourier-ridge"]
        );
    }

    #[test]
    fn default_values_are_not_stored() {
        let spec = common::SPECTRAL_RADIUS;
        let mut values = ParamValues::new();
        set_param(&mut values, &spec, 0.5);
        assert_eq!(values.explicit(spec.name), Some(0.5));
        set_param(&mut values, &spec, spec.default);
        assert_eq!(values, ParamValues::new());
        apply_edit(&mut values, &spec, Edit::Set(0.7));
        assert_eq!(values.explicit(spec.name), Some(0.7));
        apply_edit(&mut values, &spec, Edit::Unset);
        assert_eq!(values, ParamValues::new());
    }

    #[test]
    fn a_rate_equal_to_another_optimizers_default_stays_set() {
        use crate::methods::training::{LEARNING_RATE, OPTIMIZER};
        let mut values = ParamValues::new();
        set_param(&mut values, &OPTIMIZER, 1.0); // sgd
        assert_eq!(
            following(&LEARNING_RATE, &values),
            Some(Following {
                option: "sgd",
                explicit: false
            })
        );
        // 1e-3 is Adam's usual rate, not SGD's: under SGD it is a choice of its own.
        set_param(&mut values, &LEARNING_RATE, 1e-3);
        assert_eq!(values.get(&LEARNING_RATE), 1e-3);
        assert_eq!(
            following(&LEARNING_RATE, &values).map(|f| f.explicit),
            Some(true)
        );
        // SGD's own default is not stored, so it keeps following the optimizer.
        set_param(&mut values, &LEARNING_RATE, 1.0);
        assert_eq!(values.explicit(LEARNING_RATE.name), None);
        assert_eq!(following(&OPTIMIZER, &values), None, "follows nothing");
    }

    #[test]
    fn given_values_are_set_on_every_owner_or_on_none() {
        use crate::methods::training::LEARNING_RATE;
        let methods = params_of(&["fourier-mlp", "learned-refine"]);
        let mut by_method = BTreeMap::new();
        let mut given = ParamValues::new();
        given.set("optimizer", 1.0);
        set_on_every_owner(&mut by_method, &methods, &given).unwrap();
        for method in ["fourier-mlp", "learned-refine"] {
            let values = &by_method[method];
            assert_eq!(values.explicit("optimizer"), Some(1.0), "{method}");
            assert_eq!(values.get(&LEARNING_RATE), 1.0, "{method} follows sgd");
        }
        // A value given counts as set, even when it is the default.
        let mut given = ParamValues::new();
        given.set("lr", 1.0);
        set_on_every_owner(&mut by_method, &methods, &given).unwrap();
        assert_eq!(by_method["fourier-mlp"].explicit("lr"), Some(1.0));
        // No owner, or out of range: an error, and nothing changes.
        let before = by_method.clone();
        for (name, value) in [("spectral-radius", 0.5), ("lr", 1e9)] {
            let mut given = ParamValues::new();
            given.set("steps", 7.0);
            given.set(name, value);
            assert!(
                set_on_every_owner(&mut by_method, &methods, &given).is_err(),
                "{name}"
            );
            assert_eq!(by_method, before, "{name}");
        }
    }
}
