//! The spectral-bias demonstration: the same trained MLP as [`super::fourier_mlp`]
//! ([`super::coordinate_mlp`]), fed the raw coordinates (x, y). However long it trains it stays
//! blurry: a ReLU network on two inputs learns low frequencies first and the fine ones hardly at
//! all.

use super::coordinate_mlp::{BATCH, CoordinateMlp, Encoding, JITTER, WIDTH_1, WIDTH_2, WIDTH_3};
use super::training::{LEARNING_RATE, OPTIMIZER, SEED, TRAINING_STEPS};
use super::{MethodInfo, ParamSpec};

const PARAMS: &[ParamSpec] = &[
    WIDTH_1,
    WIDTH_2,
    WIDTH_3,
    OPTIMIZER,
    LEARNING_RATE,
    TRAINING_STEPS,
    BATCH,
    JITTER,
    SEED,
];

pub const INFO: MethodInfo = MethodInfo {
    name: "coord-mlp",
    title: "Raw-coordinate MLP",
    summary: "The same trained MLP on raw (x, y): spectral bias keeps it blurry.",
    estimate: |p, size| super::coordinate_mlp::estimate(p, size, None),
    params: PARAMS,
    default_on: true,
    steps_are_scales: false,
    has_levels: false,
    trains_on_folder: false,
    resumable: true,
    fits_observed_pixels: true,
    create: |setup| {
        Ok(Box::new(CoordinateMlp::new(
            setup,
            INFO.name,
            Encoding::Raw,
        )?))
    },
};
