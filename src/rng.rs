//! Seeded Gaussian draws for every random weight.
//!
//! [`RngKind::Numpy`] reproduces `np.random.seed(s); np.random.randn(...)` draw for draw:
//! MT19937 seeded with `init_genrand(s)`, 53-bit doubles from two 32-bit words, and numpy's
//! legacy polar (Marsaglia) Gaussian that caches the second value of each pair. The seed
//! notebooks draw with it, so the reference numbers can be reproduced exactly.
//! [`RngKind::Default`] is rand's StdRng with a ziggurat normal: faster, different numbers.

use rand::SeedableRng;
use rand_distr::Distribution;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RngKind {
    /// numpy's legacy RandomState (MT19937, polar Gaussian).
    #[default]
    Numpy,
    /// rand's StdRng with a ziggurat Gaussian.
    Default,
}

/// A stream of standard normal draws.
pub trait NormalSource {
    fn standard_normal(&mut self) -> f64;

    /// `count` draws in order, as `np.random.randn(count)` would give them.
    fn standard_normals(&mut self, count: usize) -> Vec<f64> {
        (0..count).map(|_| self.standard_normal()).collect()
    }
}

/// MT19937's state is 624 words: any 624 consecutive outputs determine every later one.
const TWISTER_WORDS: usize = 624;

/// numpy's legacy `RandomState`.
///
/// It also keeps the last 624 words it drew, so that its exact position can be saved and
/// restored ([`NumpyStreamState`]): rand_mt keeps the twister's state private but rebuilds a
/// generator from 624 consecutive outputs (`Mt::recover`). That costs one store per word drawn
/// and makes restoring O(1), where counting words and fast-forwarding a fresh generator would
/// cost as many words again as the run drew (billions for a long jittered run).
#[derive(Clone)]
pub struct NumpyRandomState {
    twister: rand_mt::Mt,
    cached_gaussian: Option<f64>,
    seed: u32,
    /// Words drawn since seeding.
    drawn: u64,
    /// The last [`TWISTER_WORDS`] words drawn, a ring written at `ring_at`.
    recent: Box<[u32; TWISTER_WORDS]>,
    ring_at: usize,
}

/// The exact position of a [`NumpyRandomState`] (a checkpoint's random stream).
#[derive(Clone, Debug, PartialEq)]
pub struct NumpyStreamState {
    pub seed: u32,
    /// Words drawn since seeding.
    pub drawn: u64,
    /// The last min(drawn, 624) words drawn, oldest first.
    pub recent: Vec<u32>,
    /// The second Gaussian of the last polar pair, not handed out yet.
    pub cached_gaussian: Option<f64>,
}

impl NumpyRandomState {
    /// `np.random.seed(seed)` for a seed below 2³².
    pub fn new(seed: u32) -> Self {
        NumpyRandomState {
            twister: rand_mt::Mt::new(seed),
            cached_gaussian: None,
            seed,
            drawn: 0,
            recent: Box::new([0; TWISTER_WORDS]),
            ring_at: 0,
        }
    }

    fn next_word(&mut self) -> u32 {
        let word = self.twister.next_u32();
        self.recent[self.ring_at] = word;
        self.ring_at = if self.ring_at + 1 == TWISTER_WORDS {
            0
        } else {
            self.ring_at + 1
        };
        self.drawn += 1;
        word
    }

    /// numpy's `random_standard_uniform`: 53 random bits from two words, in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        let high = (self.next_word() >> 5) as f64;
        let low = (self.next_word() >> 6) as f64;
        (high * 67_108_864.0 + low) / 9_007_199_254_740_992.0
    }

    /// Where the stream is, exactly.
    pub fn state(&self) -> NumpyStreamState {
        let kept = (self.drawn as usize).min(TWISTER_WORDS);
        let recent = if kept < TWISTER_WORDS {
            self.recent[..kept].to_vec()
        } else {
            let (newer, older) = self.recent.split_at(self.ring_at);
            older.iter().chain(newer).copied().collect()
        };
        NumpyStreamState {
            seed: self.seed,
            drawn: self.drawn,
            recent,
            cached_gaussian: self.cached_gaussian,
        }
    }

    /// The stream at `state`: from its last 624 words once it has drawn that many, else its
    /// seed replayed (and checked against the words recorded).
    pub fn from_state(state: &NumpyStreamState) -> anyhow::Result<Self> {
        let kept = usize::try_from(state.drawn).map_or(TWISTER_WORDS, |d| d.min(TWISTER_WORDS));
        anyhow::ensure!(
            state.recent.len() == kept,
            "the stream has drawn {} words but {} are recorded ({kept} expected)",
            state.drawn,
            state.recent.len()
        );
        if kept < TWISTER_WORDS {
            let mut replayed = NumpyRandomState::new(state.seed);
            for &word in &state.recent {
                anyhow::ensure!(
                    replayed.next_word() == word,
                    "the stream's recorded words are not those of seed {}",
                    state.seed
                );
            }
            replayed.cached_gaussian = state.cached_gaussian;
            return Ok(replayed);
        }
        let twister = rand_mt::Mt::recover(state.recent.iter().copied())
            .map_err(|e| anyhow::anyhow!("the stream's words do not make a generator: {e}"))?;
        let mut recent = Box::new([0; TWISTER_WORDS]);
        recent.copy_from_slice(&state.recent);
        Ok(NumpyRandomState {
            twister,
            cached_gaussian: state.cached_gaussian,
            seed: state.seed,
            drawn: state.drawn,
            recent,
            // The oldest word sits where the next one goes, as in a stream that drew them.
            ring_at: 0,
        })
    }
}

impl NormalSource for NumpyRandomState {
    fn standard_normal(&mut self) -> f64 {
        if let Some(cached) = self.cached_gaussian.take() {
            return cached;
        }
        loop {
            let x1 = 2.0 * self.uniform() - 1.0;
            let x2 = 2.0 * self.uniform() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let factor = (-2.0 * r2.ln() / r2).sqrt();
                self.cached_gaussian = Some(factor * x1);
                return factor * x2;
            }
        }
    }
}

/// rand's StdRng with rand_distr's ziggurat normal.
pub struct DefaultNormals(rand::rngs::StdRng);

impl NormalSource for DefaultNormals {
    fn standard_normal(&mut self) -> f64 {
        rand_distr::StandardNormal.sample(&mut self.0)
    }
}

/// A Gaussian stream of the given kind and seed. numpy only takes seeds below 2³²; larger
/// seeds keep their low 32 bits there.
pub fn normal_source(kind: RngKind, seed: u64) -> Box<dyn NormalSource> {
    match kind {
        RngKind::Numpy => Box::new(NumpyRandomState::new(seed as u32)),
        RngKind::Default => Box::new(DefaultNormals(rand::rngs::StdRng::seed_from_u64(seed))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_seed_zero_first_uniforms() {
        // np.random.seed(0); np.random.random_sample(3)
        let mut state = NumpyRandomState::new(0);
        let expected = [0.5488135039273248, 0.7151893663724195, 0.6027633760716439];
        for e in expected {
            assert_eq!(state.uniform(), e);
        }
    }

    /// A stream restored from its state draws exactly what the original draws next: before
    /// and after it has drawn a whole twister state, with a Gaussian cached or not.
    #[test]
    fn a_restored_stream_continues_word_for_word() {
        for words in [0usize, 1, 5, 623, 624, 625, 1248, 5001] {
            for cache in [false, true] {
                let mut original = NumpyRandomState::new(42);
                for _ in 0..words {
                    original.next_word();
                }
                if cache {
                    original.standard_normal();
                }
                let state = original.state();
                let mut restored = NumpyRandomState::from_state(&state).unwrap();
                assert_eq!(restored.state(), state);
                for _ in 0..700 {
                    assert_eq!(restored.standard_normal(), original.standard_normal());
                    assert_eq!(restored.uniform(), original.uniform());
                }
                assert_eq!(restored.state(), original.state(), "{words} words");
            }
        }
        // A state whose words do not belong to its seed is refused.
        let mut state = NumpyRandomState::new(1).state();
        state.drawn = 3;
        state.recent = vec![1, 2, 3];
        assert!(NumpyRandomState::from_state(&state).is_err());
        state.recent = vec![1];
        assert!(NumpyRandomState::from_state(&state).is_err());
    }

    #[test]
    fn default_kind_is_deterministic_per_seed() {
        let a = normal_source(RngKind::Default, 7).standard_normals(5);
        let b = normal_source(RngKind::Default, 7).standard_normals(5);
        let c = normal_source(RngKind::Default, 8).standard_normals(5);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
