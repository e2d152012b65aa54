//! Hyperparameters as data: each method lists [`ParamSpec`]s, and the command line, the window's
//! sliders and the metrics file are all generated from those lists.

use std::collections::BTreeMap;

use anyhow::bail;

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

    /// The chosen option's name of a categorical parameter.
    pub fn get_choice(&self, spec: &ParamSpec) -> &'static str {
        let last = spec.choices.len().saturating_sub(1);
        spec.choices[self.get_usize(spec).min(last)]
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
    /// files.
    pub fn resolved(&self, specs: &[ParamSpec]) -> BTreeMap<String, f64> {
        specs
            .iter()
            .map(|spec| (spec.name.to_owned(), self.get(spec)))
            .collect()
    }
}

/// Parameters shared by the reservoir methods, so every one spells and bounds them alike.
pub mod common {
    use super::ParamSpec;

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
        assert_eq!(values.resolved(&[MODE, RATE])["rate"], 20.0);
        // A value set by the user wins whatever the option.
        values.set("rate", 3.0);
        assert_eq!(values.get(&RATE), 3.0);
        values.remove("mode");
        assert_eq!(values.get(&RATE), 3.0);
    }
}
