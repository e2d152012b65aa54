//! What methods share between runs and with each other, owned by whoever runs them (the
//! window's worker, `inrlab run`, the bench) and handed to every method in its
//! [`super::Setup`]: no process-wide state.
//!
//! - Reservoir draws: the raw Gaussian draws of a seed and the spectral radius of the raw
//!   recurrent matrix do not depend on ρ or the scales, so moving the ρ slider re-scales a
//!   cached matrix instead of re-running the eigen solver. The exact eigen-solve of a large
//!   recurrent matrix is one faer call that cannot be interrupted (tens of seconds at 4096
//!   units), so from [`MethodCache::background_from_hidden`] units on it runs on a thread of
//!   its own: the build that asked gets [`NotReady`], the caller goes on with other work and
//!   builds again once [`MethodCache::has_pending`] is false. A result whose method was
//!   cancelled meanwhile stays cached for the same draw.
//! - Unrolled reservoirs ([`super::shared_trajectory`]) that several methods attach to.
//! - Folders of images decoded for training ([`super::wavelet_dataset::Dataset`]): decoding a
//!   folder of photographs takes seconds to minutes, so where eigen-solves run in the
//!   background, so does this, with the same [`NotReady`] to the build meanwhile.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use super::reservoir::RawDraws;
use super::shared_trajectory::{SharedTrajectory, TrajectoryKey};
use super::wavelet_dataset::Dataset;
use crate::linalg::spectral_radius;
use crate::rng::{RngKind, normal_source};
use crate::target::Fit;

/// Ready draws kept (pending ones are never dropped).
const CACHED_DRAWS: usize = 8;
/// Ready folders kept: the one in use and the one before (a working size toggled back).
const CACHED_DATASETS: usize = 2;
/// Hidden sizes from which the eigen-solve runs in the background by default: at 1024 units it
/// takes about a second on two cores, below that a few tens of milliseconds.
pub const DEFAULT_BACKGROUND_FROM_HIDDEN: usize = 1024;

/// A build could not finish because something it needs is still being computed in the
/// background; build again when [`MethodCache::has_pending`] turns false.
#[derive(Clone, Debug)]
pub struct NotReady {
    /// What is being computed, for the window ("eigenvalues of the 4096×4096 recurrent matrix").
    pub what: String,
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "waiting for {}", self.what)
    }
}

impl std::error::Error for NotReady {}

/// The [`NotReady`] inside a build error, if that is what it is.
pub fn not_ready(error: &anyhow::Error) -> Option<&NotReady> {
    error.downcast_ref::<NotReady>()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DrawKey {
    pub rng: RngKind,
    pub seed: u64,
    pub input_dim: usize,
    pub hidden: usize,
}

enum DrawState<T> {
    Ready(Arc<T>),
    Pending,
    Failed(String),
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct DatasetKey {
    folder: PathBuf,
    size: usize,
    fit: Fit,
}

struct Inner {
    /// Most recently used first.
    draws: Mutex<Vec<(DrawKey, DrawState<RawDraws>)>>,
    datasets: Mutex<Vec<(DatasetKey, DrawState<Dataset>)>>,
    /// Signalled when a background computation ends (its lock is `draws`'s).
    draws_changed: Condvar,
    trajectories: Mutex<Vec<(TrajectoryKey, Weak<Mutex<SharedTrajectory>>)>>,
    background_from_hidden: usize,
}

/// Shared, cheaply cloned handle to one cache.
#[derive(Clone)]
pub struct MethodCache {
    inner: Arc<Inner>,
}

impl Default for MethodCache {
    fn default() -> Self {
        Self::new(DEFAULT_BACKGROUND_FROM_HIDDEN)
    }
}

impl fmt::Debug for MethodCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MethodCache")
            .field("background_from_hidden", &self.inner.background_from_hidden)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Entries are replaced whole, so a panic elsewhere leaves them consistent.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn make_draws(key: DrawKey) -> RawDraws {
    let mut source = normal_source(key.rng, key.seed);
    let input = source.standard_normals(key.input_dim * key.hidden);
    let recurrent = source.standard_normals(key.hidden * key.hidden);
    let bias = source.standard_normals(key.hidden);
    let raw_radius = spectral_radius(&recurrent, key.hidden);
    RawDraws {
        input,
        recurrent,
        bias,
        raw_radius,
    }
}

impl MethodCache {
    /// A cache whose eigen-solves for `background_from_hidden` units or more run in the
    /// background (`usize::MAX`: never, as the command line wants).
    pub fn new(background_from_hidden: usize) -> Self {
        MethodCache {
            inner: Arc::new(Inner {
                draws: Mutex::new(Vec::new()),
                datasets: Mutex::new(Vec::new()),
                draws_changed: Condvar::new(),
                trajectories: Mutex::new(Vec::new()),
                background_from_hidden,
            }),
        }
    }

    /// Eigen-solves inline whatever the size: for callers with nothing else to do meanwhile.
    pub fn blocking() -> Self {
        Self::new(usize::MAX)
    }

    pub fn background_from_hidden(&self) -> usize {
        self.inner.background_from_hidden
    }

    /// The raw draws of `key`: cached, computed now, or (large ones) [`NotReady`] while a
    /// background thread computes them.
    pub fn draws(&self, key: DrawKey) -> anyhow::Result<Arc<RawDraws>> {
        let mut draws = lock(&self.inner.draws);
        if let Some(at) = draws.iter().position(|(k, _)| *k == key) {
            let entry = draws.remove(at);
            let result = match &entry.1 {
                DrawState::Ready(ready) => Ok(Arc::clone(ready)),
                DrawState::Pending => Err(anyhow::Error::from(NotReady {
                    what: describe(key),
                })),
                DrawState::Failed(why) => Err(anyhow::anyhow!("{}: {why}", describe(key))),
            };
            if !matches!(entry.1, DrawState::Failed(_)) {
                draws.insert(0, entry);
            }
            return result;
        }
        if key.hidden >= self.inner.background_from_hidden {
            draws.insert(0, (key, DrawState::Pending));
            drop(draws);
            let inner = Arc::clone(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("inrlab-eigen".into())
                .spawn(move || {
                    let made = std::panic::catch_unwind(|| make_draws(key));
                    let state = match made {
                        Ok(made) => DrawState::Ready(Arc::new(made)),
                        Err(panic) => DrawState::Failed(crate::panic_message(panic.as_ref())),
                    };
                    let mut draws = lock(&inner.draws);
                    if let Some(entry) = draws.iter_mut().find(|(k, _)| *k == key) {
                        entry.1 = state;
                    }
                    drop(draws);
                    inner.draws_changed.notify_all();
                });
            if let Err(error) = spawned {
                lock(&self.inner.draws).retain(|(k, _)| *k != key);
                anyhow::bail!("cannot start the eigen-solver thread: {error}");
            }
            return Err(NotReady {
                what: describe(key),
            }
            .into());
        }
        drop(draws);
        // Small draws are computed here, outside the lock, so parallel builds do not queue.
        let made = Arc::new(make_draws(key));
        let mut draws = lock(&self.inner.draws);
        draws.retain(|(k, _)| *k != key);
        draws.insert(0, (key, DrawState::Ready(Arc::clone(&made))));
        let mut ready = 0;
        draws.retain(|(_, state)| match state {
            DrawState::Ready(_) => {
                ready += 1;
                ready <= CACHED_DRAWS
            }
            _ => true,
        });
        Ok(made)
    }

    /// The folder's images at `size` (see [`Dataset::load`]): cached, loaded now, or, where
    /// eigen-solves run in the background, [`NotReady`] while a thread decodes them. A folder
    /// that fails to load fails every build that asks until it is asked for afresh (the
    /// failed entry is dropped once reported).
    pub fn dataset(&self, folder: &Path, size: usize, fit: Fit) -> anyhow::Result<Arc<Dataset>> {
        let key = DatasetKey {
            folder: folder.to_path_buf(),
            size,
            fit,
        };
        let describe = || format!("the images of {}", folder.display());
        let mut datasets = lock(&self.inner.datasets);
        if let Some(at) = datasets.iter().position(|(k, _)| *k == key) {
            let entry = datasets.remove(at);
            let result = match &entry.1 {
                DrawState::Ready(ready) => Ok(Arc::clone(ready)),
                DrawState::Pending => Err(anyhow::Error::from(NotReady { what: describe() })),
                DrawState::Failed(why) => Err(anyhow::anyhow!("{why}")),
            };
            if !matches!(entry.1, DrawState::Failed(_)) {
                datasets.insert(0, entry);
            }
            return result;
        }
        if self.inner.background_from_hidden == usize::MAX {
            drop(datasets);
            let loaded = Arc::new(Dataset::load(folder, size, fit)?);
            self.keep_dataset(key, DrawState::Ready(Arc::clone(&loaded)));
            return Ok(loaded);
        }
        datasets.insert(0, (key.clone(), DrawState::Pending));
        drop(datasets);
        let inner = Arc::clone(&self.inner);
        let thread_key = key.clone();
        let spawned = std::thread::Builder::new()
            .name("inrlab-folder".into())
            .spawn(move || {
                let key = thread_key;
                let loaded =
                    std::panic::catch_unwind(|| Dataset::load(&key.folder, key.size, key.fit));
                let state = match loaded {
                    Ok(Ok(dataset)) => DrawState::Ready(Arc::new(dataset)),
                    Ok(Err(error)) => DrawState::Failed(format!("{error:#}")),
                    Err(panic) => DrawState::Failed(crate::panic_message(panic.as_ref())),
                };
                let mut datasets = lock(&inner.datasets);
                if let Some(entry) = datasets.iter_mut().find(|(k, _)| *k == key) {
                    entry.1 = state;
                }
                drop(datasets);
                // Waiters hold the draws' lock while they look; take it so none misses this.
                let _draws = lock(&inner.draws);
                inner.draws_changed.notify_all();
            });
        if let Err(error) = spawned {
            lock(&self.inner.datasets).retain(|(k, _)| *k != key);
            anyhow::bail!("cannot start the thread that reads the folder: {error}");
        }
        Err(NotReady { what: describe() }.into())
    }

    fn keep_dataset(&self, key: DatasetKey, state: DrawState<Dataset>) {
        let mut datasets = lock(&self.inner.datasets);
        datasets.retain(|(k, _)| *k != key);
        datasets.insert(0, (key, state));
        let mut ready = 0;
        datasets.retain(|(_, state)| match state {
            DrawState::Ready(_) => {
                ready += 1;
                ready <= CACHED_DATASETS
            }
            _ => true,
        });
    }

    /// Whether a background computation is still running.
    pub fn has_pending(&self) -> bool {
        let draws = lock(&self.inner.draws);
        self.pending_with(&draws)
    }

    fn pending_with(&self, draws: &[(DrawKey, DrawState<RawDraws>)]) -> bool {
        draws.iter().any(|(_, s)| matches!(s, DrawState::Pending))
            || lock(&self.inner.datasets)
                .iter()
                .any(|(_, s)| matches!(s, DrawState::Pending))
    }

    /// Waits until no background computation is running, or `timeout` passes; returns
    /// whether none is.
    pub fn wait_for_pending(&self, timeout: Duration) -> bool {
        let draws = lock(&self.inner.draws);
        let (draws, _) = self
            .inner
            .draws_changed
            .wait_timeout_while(draws, timeout, |draws| self.pending_with(draws))
            .unwrap_or_else(|e| e.into_inner());
        !self.pending_with(&draws)
    }

    /// Forgets every ready draw (so a benchmark times the eigen-solves as numpy pays them).
    pub fn clear_draws(&self) {
        lock(&self.inner.draws).retain(|(_, state)| matches!(state, DrawState::Pending));
    }

    /// The live shared trajectory of `key`, or the one `make` makes (registered for others).
    pub(crate) fn trajectory(
        &self,
        key: TrajectoryKey,
        make: impl FnOnce() -> anyhow::Result<SharedTrajectory>,
    ) -> anyhow::Result<Arc<Mutex<SharedTrajectory>>> {
        let mut trajectories = lock(&self.inner.trajectories);
        trajectories.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(shared) = trajectories
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, weak)| weak.upgrade())
        {
            return Ok(shared);
        }
        let shared = Arc::new(Mutex::new(make()?));
        trajectories.push((key, Arc::downgrade(&shared)));
        Ok(shared)
    }
}

fn describe(key: DrawKey) -> String {
    format!(
        "the eigenvalues of the {0}×{0} recurrent matrix (seed {1})",
        key.hidden, key.seed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u64, input_dim: usize, hidden: usize) -> DrawKey {
        DrawKey {
            rng: RngKind::Numpy,
            seed,
            input_dim,
            hidden,
        }
    }

    #[test]
    fn cached_draws_are_shared_and_keyed_by_shape() {
        let cache = MethodCache::blocking();
        let a = cache.draws(key(7, 2, 8)).unwrap();
        let b = cache.draws(key(7, 2, 8)).unwrap();
        let c = cache.draws(key(7, 5, 8)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_ne!(a.recurrent, c.recurrent);
        assert!(a.raw_radius > 0.0);
        // Another cache shares nothing.
        let other = MethodCache::blocking().draws(key(7, 2, 8)).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(a.recurrent, other.recurrent);
    }

    #[test]
    fn large_draws_are_made_in_the_background_and_then_served() {
        let cache = MethodCache::new(32);
        let wanted = key(3, 2, 48);
        let first = cache.draws(wanted).unwrap_err();
        assert!(not_ready(&first).is_some(), "{first:#}");
        assert!(format!("{first}").contains("48×48"), "{first}");
        assert!(cache.wait_for_pending(Duration::from_secs(60)));
        assert!(!cache.has_pending());
        let ready = cache.draws(wanted).unwrap();
        let inline = MethodCache::blocking().draws(wanted).unwrap();
        assert_eq!(ready.recurrent, inline.recurrent);
        assert_eq!(ready.raw_radius, inline.raw_radius);
        // Small ones are still made inline.
        assert!(cache.draws(key(3, 2, 8)).is_ok());
    }
}
