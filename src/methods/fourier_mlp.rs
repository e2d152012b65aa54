//! A coordinate MLP trained live on random Fourier features γ(x) = [sin 2πxB, cos 2πxB] of the
//! coordinates (seed 002's network): the network of [`super::coordinate_mlp`] with a Fourier
//! encoding. One optimizer step per refinement step.

use super::coordinate_mlp::{BATCH, CoordinateMlp, Encoding, JITTER, WIDTH_1, WIDTH_2, WIDTH_3};
use super::params::common::FOURIER_SCALE;
use super::training::{LEARNING_RATE, OPTIMIZER, SEED, TRAINING_STEPS};
use super::{MethodInfo, ParamSpec};

pub const FREQUENCIES: ParamSpec = ParamSpec::integer(
    "frequencies",
    "frequencies m",
    "Random frequencies of the encoding; the network's input is 2m wide (a sine and a cosine each).",
    128.0,
    1.0,
    2048.0,
);
pub const ENCODING: ParamSpec = ParamSpec::choice(
    "encoding",
    "encoding",
    "gaussian: m random frequencies of scale σ; basic: [sin 2πv, cos 2πv] of the coordinates \
     themselves (Tancik et al.'s basic mapping; m and σ are then unused).",
    &["gaussian", "basic"],
    0,
);
const PARAMS: &[ParamSpec] = &[
    FREQUENCIES,
    FOURIER_SCALE,
    WIDTH_1,
    WIDTH_2,
    WIDTH_3,
    OPTIMIZER,
    LEARNING_RATE,
    TRAINING_STEPS,
    BATCH,
    JITTER,
    ENCODING,
    SEED,
];

pub const INFO: MethodInfo = MethodInfo {
    name: "fourier-mlp",
    title: "Fourier-feature MLP",
    summary: "An MLP on random Fourier features of the coordinates, trained live: each step is \
              one optimizer update.",
    estimate: |p, size| super::coordinate_mlp::estimate(p, size, Some(p.get_usize(&FREQUENCIES))),
    params: PARAMS,
    default_on: true,
    steps_are_scales: false,
    has_levels: false,
    trains_on_folder: false,
    resumable: true,
    fits_observed_pixels: true,
    create: |setup| {
        let encoding = match setup.params.get_usize(&ENCODING) {
            1 => Encoding::Basic,
            _ => Encoding::Fourier {
                frequencies: setup.params.get_usize(&FREQUENCIES),
                scale: setup.params.get(&FOURIER_SCALE),
            },
        };
        Ok(Box::new(CoordinateMlp::new(setup, INFO.name, encoding)?))
    },
};
