//! Which pixels of a square image are observed, and how the observed ones are split into
//! training and validation pixels.
//!
//! Random and centre masks draw one numpy `random_sample` per pixel in row-major order, so
//! `np.random.RandomState(seed).rand(side * side) < p` gives the same mask in Python.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, anyhow, bail, ensure};

use crate::rng::NumpyRandomState;

/// How to choose the observed pixels; the CLI spelling is `random:0.1`, `grid:3`, `center:0.1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaskSpec {
    /// Each pixel independently with probability `density`.
    Random { density: f64 },
    /// Pixels whose row and column are both multiples of `stride`.
    Grid { stride: usize },
    /// Denser towards the centre: probability `min(1, c·g)` with `g` a Gaussian of σ = side/4
    /// about the centre, `c` chosen so the mean probability is `density`.
    Center { density: f64 },
}

impl MaskSpec {
    /// Checks the ranges `FromStr` enforces, for specs built in code: a density in (0, 1],
    /// a stride of at least 1.
    pub fn validate(&self) -> anyhow::Result<()> {
        match *self {
            MaskSpec::Random { density } | MaskSpec::Center { density } => ensure!(
                density > 0.0 && density <= 1.0,
                "mask density must be in (0, 1], got {density}"
            ),
            MaskSpec::Grid { stride } => ensure!(stride >= 1, "grid stride must be at least 1"),
        }
        Ok(())
    }
}

impl FromStr for MaskSpec {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        let (kind, value) = text.trim().split_once(':').ok_or_else(|| {
            anyhow!("mask {text:?} should be KIND:VALUE, e.g. random:0.1, grid:3 or center:0.1")
        })?;
        let value = value.trim();
        let spec = match kind.trim().to_ascii_lowercase().as_str() {
            "random" | "center" => {
                let density: f64 = value
                    .parse()
                    .with_context(|| format!("mask density {value:?} is not a number"))?;
                if kind.trim().eq_ignore_ascii_case("random") {
                    MaskSpec::Random { density }
                } else {
                    MaskSpec::Center { density }
                }
            }
            "grid" => MaskSpec::Grid {
                stride: value.parse().with_context(|| {
                    format!("grid stride {value:?} is not a whole number of pixels")
                })?,
            },
            other => bail!("unknown mask kind {other:?}: expected random, grid or center"),
        };
        spec.validate()?;
        Ok(spec)
    }
}

impl fmt::Display for MaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaskSpec::Random { density } => write!(f, "random:{density}"),
            MaskSpec::Grid { stride } => write!(f, "grid:{stride}"),
            MaskSpec::Center { density } => write!(f, "center:{density}"),
        }
    }
}

/// The observed pixels of a `side × side` image, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    pub side: usize,
    pub observed: Vec<bool>,
}

/// The pixels a run trains on, holds out for validation, and never sees; each ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<u32>,
    pub validation: Vec<u32>,
    pub unobserved: Vec<u32>,
}

/// The mask `spec` gives for a `side × side` image and `seed`. Out-of-range specs are not
/// refused here (see [`MaskSpec::validate`]): a density above 1 observes every pixel.
pub fn build(spec: MaskSpec, side: usize, seed: u32) -> Mask {
    let n = side * side;
    let observed = match spec {
        MaskSpec::Random { density } => {
            let mut rng = NumpyRandomState::new(seed);
            (0..n).map(|_| rng.uniform() < density).collect()
        }
        MaskSpec::Grid { stride } => {
            let stride = stride.max(1);
            (0..n)
                .map(|i| (i / side).is_multiple_of(stride) && (i % side).is_multiple_of(stride))
                .collect()
        }
        MaskSpec::Center { density } => {
            let p = center_probabilities(side, density);
            let mut rng = NumpyRandomState::new(seed);
            p.iter().map(|&p| rng.uniform() < p).collect()
        }
    };
    Mask { side, observed }
}

/// Per-pixel sampling probabilities of the centre mask: `min(1, c·g_i)`, where
/// `g_i = exp(-((row-c0)² + (col-c0)²) / (2σ²))`, σ = side/4, c0 = (side-1)/2, and `c` is found by
/// 100 bisection steps on [0, 1/min g] (where every probability is 1) so that the mean is
/// `density`. reference.py's `center_probabilities` does the same steps. A density of 1 or more
/// gives exactly 1 everywhere (bisection would stop a rounding error short of it at the corners).
pub fn center_probabilities(side: usize, density: f64) -> Vec<f64> {
    if density >= 1.0 {
        return vec![1.0; side * side];
    }
    let c0 = (side as f64 - 1.0) / 2.0;
    let sigma = side as f64 / 4.0;
    let g: Vec<f64> = (0..side * side)
        .map(|i| {
            let (r, c) = ((i / side) as f64, (i % side) as f64);
            (-((r - c0).powi(2) + (c - c0).powi(2)) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let mean_at =
        |scale: f64| g.iter().map(|&g| (scale * g).min(1.0)).sum::<f64>() / g.len() as f64;
    let (mut lo, mut hi) = (0.0, 1.0 / g.iter().copied().fold(f64::INFINITY, f64::min));
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if mean_at(mid) < density {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let scale = 0.5 * (lo + hi);
    g.iter().map(|&g| (scale * g).min(1.0)).collect()
}

impl Mask {
    /// Number of observed pixels.
    pub fn count(&self) -> usize {
        self.observed.iter().filter(|&&o| o).count()
    }

    /// Share of pixels observed.
    pub fn density(&self) -> f64 {
        self.count() as f64 / self.observed.len().max(1) as f64
    }

    /// Observed pixel indices, ascending.
    pub fn observed_indices(&self) -> Vec<u32> {
        indices_where(&self.observed, true)
    }

    /// Unobserved pixel indices, ascending.
    pub fn unobserved_indices(&self) -> Vec<u32> {
        indices_where(&self.observed, false)
    }

    /// Holds out about `validation_share` of the observed pixels for validation: one numpy
    /// uniform per observed pixel, in ascending order, from `RandomState(seed + 1)` (wrapping),
    /// a pixel held out when its draw is below the share. A separate stream from the mask's own
    /// seed, so the same seed does not correlate mask and split. A share of 0 draws nothing.
    pub fn split(&self, validation_share: f64, seed: u32) -> anyhow::Result<Split> {
        ensure!(
            (0.0..1.0).contains(&validation_share),
            "validation share must be in [0, 1), got {validation_share}"
        );
        let observed = self.observed_indices();
        let (mut train, mut validation) = (Vec::new(), Vec::new());
        if validation_share == 0.0 {
            train = observed;
        } else {
            let mut rng = NumpyRandomState::new(seed.wrapping_add(1));
            for i in observed {
                if rng.uniform() < validation_share {
                    validation.push(i);
                } else {
                    train.push(i);
                }
            }
        }
        Ok(Split {
            train,
            validation,
            unobserved: self.unobserved_indices(),
        })
    }
}

fn indices_where(flags: &[bool], wanted: bool) -> Vec<u32> {
    flags
        .iter()
        .enumerate()
        .filter(|&(_, &f)| f == wanted)
        .map(|(i, _)| i as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_cli_spelling() {
        for text in ["random:0.1", "grid:3", "center:0.25", "random:1"] {
            let spec: MaskSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
        }
        assert_eq!(
            " Random: 0.5 ".parse::<MaskSpec>().unwrap(),
            MaskSpec::Random { density: 0.5 }
        );
        for bad in [
            "random",
            "random:0",
            "random:1.5",
            "random:-0.1",
            "random:abc",
            "grid:0",
            "grid:2.5",
            "grid:-1",
            "blob:0.1",
            "center:NaN",
            "",
        ] {
            let err = bad.parse::<MaskSpec>().unwrap_err();
            assert!(!format!("{err:#}").is_empty(), "{bad}");
        }
        let err = format!("{:#}", "random:2".parse::<MaskSpec>().unwrap_err());
        assert!(err.contains("(0, 1]"), "{err}");
        let err = format!("{:#}", "blob:1".parse::<MaskSpec>().unwrap_err());
        assert!(err.contains("random, grid or center"), "{err}");
    }

    #[test]
    fn random_mask_matches_numpy() {
        // (np.random.RandomState(0).rand(128*128) < 0.1).sum()
        let mask = build(MaskSpec::Random { density: 0.1 }, 128, 0);
        assert_eq!(mask.count(), 1710);
        assert!((mask.density() - 0.1).abs() < 0.01);
        // np.flatnonzero(np.random.RandomState(7).rand(256) < 0.25)[:10], .sum() == 62
        let mask = build(MaskSpec::Random { density: 0.25 }, 16, 7);
        assert_eq!(mask.count(), 62);
        assert_eq!(
            mask.observed_indices()[..10],
            [0, 7, 13, 16, 19, 22, 25, 30, 48, 55]
        );
        assert_eq!(mask, build(MaskSpec::Random { density: 0.25 }, 16, 7));
        assert_ne!(mask, build(MaskSpec::Random { density: 0.25 }, 16, 8));
    }

    #[test]
    fn grid_mask_takes_every_stride_th_row_and_column() {
        let mask = build(MaskSpec::Grid { stride: 3 }, 10, 0);
        assert_eq!(mask.count(), 16);
        assert_eq!(mask.observed_indices()[..5], [0, 3, 6, 9, 30]);
        assert_eq!(build(MaskSpec::Grid { stride: 1 }, 4, 0).count(), 16);
    }

    #[test]
    fn center_mask_matches_numpy() {
        // reference.py center_probabilities(64, 0.1) / center_mask(64, 0.1, 0)
        let p = center_probabilities(64, 0.1);
        assert!((p.iter().sum::<f64>() / p.len() as f64 - 0.1).abs() < 1e-12);
        assert!((p[0] - 0.005794837655042483).abs() < 1e-12);
        assert!((p[32 * 64 + 32] - 0.2792109143788105).abs() < 1e-12);
        let mask = build(MaskSpec::Center { density: 0.1 }, 64, 0);
        assert_eq!(mask.count(), 400);
        assert_eq!(
            mask.observed_indices()[..8],
            [16, 34, 97, 99, 166, 173, 204, 214]
        );
        // center_mask(32, 0.3, 5): probabilities saturate at 1 in the middle.
        let p = center_probabilities(32, 0.3);
        assert!((p[0] - 0.019637269265608867).abs() < 1e-12);
        assert!((p[16 * 32 + 16] - 0.8349979367002673).abs() < 1e-12);
        let mask = build(MaskSpec::Center { density: 0.3 }, 32, 5);
        assert_eq!(mask.count(), 320);
        assert_eq!(
            mask.observed_indices()[..8],
            [10, 30, 34, 36, 44, 52, 53, 54]
        );
        assert_eq!(center_probabilities(8, 1.0), vec![1.0; 64]);
    }

    #[test]
    fn split_matches_numpy_and_partitions() {
        // reference.py split(random_mask(16, 0.25, 7), 0.3, 7): RandomState(8).rand(62) < 0.3
        let mask = build(MaskSpec::Random { density: 0.25 }, 16, 7);
        let split = mask.split(0.3, 7).unwrap();
        assert_eq!(
            split.validation,
            [
                19, 22, 92, 108, 111, 117, 120, 122, 141, 154, 168, 175, 190, 201, 214, 219, 223
            ]
        );
        assert_eq!(split.train.len(), 45);
        assert_eq!(split.unobserved.len(), 256 - 62);
        let mut all: Vec<u32> = [&split.train, &split.validation, &split.unobserved]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..256).collect::<Vec<u32>>());
        for v in [&split.train, &split.validation, &split.unobserved] {
            assert!(v.windows(2).all(|w| w[0] < w[1]));
        }
        let none = mask.split(0.0, 7).unwrap();
        assert!(none.validation.is_empty());
        assert_eq!(none.train, mask.observed_indices());
        assert!(mask.split(1.0, 7).is_err());
        assert!(mask.split(-0.1, 7).is_err());
        // seed u32::MAX wraps to RandomState(0).
        assert_eq!(
            mask.split(0.5, u32::MAX).unwrap(),
            mask.split(0.5, u32::MAX).unwrap()
        );
    }
}
