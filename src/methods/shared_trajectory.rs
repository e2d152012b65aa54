//! One reservoir trajectory read by several methods.
//!
//! `trajectory` (approach 1) and `cumulative` (approach 2) unroll the same reservoir over the same
//! coordinates; with the same parameters their states `H_k`, diagonal Gram blocks `H_kᵀH_k` and
//! target products `H_kᵀY` are identical. Both attach to one [`SharedTrajectory`] (found in the
//! caller's [`super::MethodCache`] by backend, reservoir spec and target), so each is computed
//! once, by whichever method gets there first. The suite, `inrlab run` and the window run them
//! side by side.
//!
//! Old states are kept only as deep as an attached reader of the history (cumulative, up to its
//! largest k) needs them: the trajectory alone needs only its latest state, and K can be large.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use super::reservoir::{Reservoir, ReservoirSpec};
use super::{Setup, Target};
use crate::compute::{Backend, CancelToken, Tensor};

/// One unrolled step: its state (dropped once no reader needs it) and its products.
struct Step {
    state: Option<Arc<Tensor>>,
    /// `H_kᵀH_k`, hidden × hidden, row-major.
    gram: Arc<Vec<f64>>,
    /// `H_kᵀY`, hidden × 3, row-major.
    target_product: Arc<Vec<f64>>,
    /// Seen through a mask: `H_k` on the training pixels alone. Every one is kept (a tenth of
    /// the rows or so): cumulative's cross-step products are taken on them.
    training_state: Option<Arc<Tensor>>,
}

pub struct SharedTrajectory {
    reservoir: Reservoir,
    coords: Tensor,
    target: Tensor,
    /// Seen through a mask: the reservoir unrolled again on the training pixels alone, whose
    /// products the readouts are solved from (the states above, on every pixel, render them).
    training: Option<TrainingRows>,
    steps: Vec<Step>,
    /// How many leading states each attached history reader reads.
    history_depths: Vec<usize>,
}

/// What makes two trajectories the same one.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct TrajectoryKey {
    backend: u64,
    spec: ReservoirSpec,
    target: u64,
}

/// The training pixels' coordinates and values.
struct TrainingRows {
    coords: Tensor,
    target: Tensor,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (steps are pushed whole).
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn fingerprint(target: &Target) -> u64 {
    let mut hasher = DefaultHasher::new();
    target.size.hash(&mut hasher);
    for value in &target.pixels {
        value.to_bits().hash(&mut hasher);
    }
    // Another mask is another trajectory: its products are over other rows.
    target.training_pixels().hash(&mut hasher);
    hasher.finish()
}

/// A method's attachment to a shared trajectory; detaches on drop.
pub struct TrajectoryHandle {
    shared: Arc<Mutex<SharedTrajectory>>,
    history_depth: usize,
}

impl Drop for TrajectoryHandle {
    fn drop(&mut self) {
        if self.history_depth > 0 {
            let mut shared = lock(&self.shared);
            if let Some(at) = shared
                .history_depths
                .iter()
                .position(|&d| d == self.history_depth)
            {
                shared.history_depths.swap_remove(at);
            }
        }
    }
}

impl TrajectoryHandle {
    /// Attaches to the trajectory of `spec` over `setup`'s target on `setup`'s backend, making
    /// it if no attached method has. `history_depth`: how many leading states the method reads
    /// besides the latest (0 for none).
    /// Fails with [`super::NotReady`] while the reservoir's eigen-solve runs in the background.
    pub fn attach(
        setup: &Setup,
        spec: &ReservoirSpec,
        history_depth: usize,
    ) -> anyhow::Result<Self> {
        let key = TrajectoryKey {
            backend: setup.backend.instance_id(),
            spec: *spec,
            target: fingerprint(setup.target),
        };
        let shared = setup.cache.trajectory(key, || {
            let backend = setup.backend;
            let n = setup.target.pixel_count();
            Ok(SharedTrajectory {
                reservoir: Reservoir::new(setup.cache, backend, spec)?,
                coords: backend.upload(n, 2, &setup.target.coords())?,
                target: backend.upload(n, 3, &setup.target.pixels)?,
                training: (setup.masked_training_set()?)
                    .map(|(coords, target)| TrainingRows { coords, target }),
                steps: Vec::new(),
                history_depths: Vec::new(),
            })
        })?;
        if history_depth > 0 {
            lock(&shared).history_depths.push(history_depth);
        }
        Ok(TrajectoryHandle {
            shared,
            history_depth,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, SharedTrajectory> {
        lock(&self.shared)
    }
}

impl SharedTrajectory {
    pub fn target(&self) -> &Tensor {
        &self.target
    }

    pub fn reservoir(&self) -> &Reservoir {
        &self.reservoir
    }

    fn history_depth(&self) -> usize {
        self.history_depths.iter().copied().max().unwrap_or(0)
    }

    /// Unrolls the reservoir until step `k` (1-based) exists, with its products. Cancelled, it
    /// keeps the steps it completed (each is pushed whole), so a later call goes on from there.
    pub fn extend_to(
        &mut self,
        backend: &dyn Backend,
        k: usize,
        cancel: &CancelToken,
    ) -> anyhow::Result<()> {
        let depth = self.history_depth();
        // States a reader needs that were dropped: those of a history reader that attached after
        // the trajectory ran ahead alone, or state k itself for a method restarted while its
        // predecessor was still attached.
        let needed = depth.max(k).min(self.steps.len());
        if self.steps.iter().take(needed).any(|s| s.state.is_none()) {
            self.restore_history(backend, needed, cancel)?;
        }
        while self.steps.len() < k {
            let previous = self
                .steps
                .last()
                .map(|s| s.state.as_deref().expect("the latest state is always kept"));
            let mut next = backend.zeros(self.coords.rows(), self.reservoir.hidden)?;
            self.reservoir
                .step(backend, &self.coords, previous, &mut next, cancel)?;
            let (gram, target_product, training_state) = match &self.training {
                None => (
                    backend.gram_until(&[&next], &next, cancel)?,
                    backend.gram_until(&[&next], &self.target, cancel)?,
                    None,
                ),
                Some(training) => {
                    let mut state = backend.zeros(training.coords.rows(), self.reservoir.hidden)?;
                    let previous = (self.steps.last()).and_then(|s| s.training_state.as_deref());
                    (self.reservoir).step(
                        backend,
                        &training.coords,
                        previous,
                        &mut state,
                        cancel,
                    )?;
                    (
                        backend.gram_until(&[&state], &state, cancel)?,
                        backend.gram_until(&[&state], &training.target, cancel)?,
                        Some(state),
                    )
                }
            };
            // Nothing below fails: the step is committed whole.
            // The state before the new one is dropped unless a reader needs that deep.
            let previous_index = self.steps.len();
            if previous_index > depth
                && let Some(last) = self.steps.last_mut()
            {
                last.state = None;
            }
            self.steps.push(Step {
                state: Some(Arc::new(next)),
                gram: Arc::new(gram),
                target_product: Arc::new(target_product),
                training_state: training_state.map(Arc::new),
            });
        }
        Ok(())
    }

    /// Recomputes the dropped states among the first `depth`. Products are kept; only states
    /// are redone.
    fn restore_history(
        &mut self,
        backend: &dyn Backend,
        depth: usize,
        cancel: &CancelToken,
    ) -> anyhow::Result<()> {
        let mut previous: Option<Arc<Tensor>> = None;
        for step in self.steps.iter_mut().take(depth) {
            if step.state.is_none() {
                let mut next = backend.zeros(self.coords.rows(), self.reservoir.hidden)?;
                self.reservoir.step(
                    backend,
                    &self.coords,
                    previous.as_deref(),
                    &mut next,
                    cancel,
                )?;
                step.state = Some(Arc::new(next));
            }
            previous = step.state.clone();
        }
        Ok(())
    }

    /// State `H_k` (1-based); [`Self::extend_to`] must have reached k.
    pub fn state(&self, k: usize) -> Arc<Tensor> {
        self.steps[k - 1]
            .state
            .clone()
            .expect("state kept for an attached reader")
    }

    /// Seen through a mask: `H_k` on the training pixels (1-based).
    pub fn training_state(&self, k: usize) -> Option<Arc<Tensor>> {
        self.steps[k - 1].training_state.clone()
    }

    /// `H_kᵀH_k` (hidden × hidden, row-major).
    pub fn gram(&self, k: usize) -> Arc<Vec<f64>> {
        self.steps[k - 1].gram.clone()
    }

    /// `H_kᵀY` (hidden × 3, row-major).
    pub fn target_product(&self, k: usize) -> Arc<Vec<f64>> {
        self.steps[k - 1].target_product.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::cpu::CpuBackend;
    use crate::methods::{MethodCache, ParamValues};
    use crate::rng::RngKind;
    use crate::target::{Fit, Target};

    fn spec() -> ReservoirSpec {
        ReservoirSpec {
            input_dim: 2,
            hidden: 16,
            spectral_radius: 0.9,
            input_scale: 0.5,
            bias_scale: 0.1,
            seed: 3,
            rng: RngKind::Numpy,
        }
    }

    #[test]
    fn readers_share_one_trajectory_and_get_the_states_they_need() {
        let backend = CpuBackend::new();
        let target = Target::sample(8, Fit::Stretch).unwrap();
        let params = ParamValues::new();
        let cache = MethodCache::blocking();
        let cancel = CancelToken::new();
        let setup = Setup {
            target: &target,
            backend: &backend,
            rng: RngKind::Numpy,
            params: &params,
            cache: &cache,
            cancel: &cancel,
            folder: None,
        };
        // A trajectory alone keeps only its latest state.
        let alone = TrajectoryHandle::attach(&setup, &spec(), 0).unwrap();
        alone.lock().extend_to(&backend, 6, &cancel).unwrap();
        let kept = alone
            .lock()
            .steps
            .iter()
            .filter(|s| s.state.is_some())
            .count();
        assert_eq!(kept, 1);
        let latest = backend.download(&alone.lock().state(6));
        // A history reader attaching later finds the same trajectory and gets its old states
        // back, identical to a fresh unroll.
        let reader = TrajectoryHandle::attach(&setup, &spec(), 4).unwrap();
        assert!(Arc::ptr_eq(&alone.shared, &reader.shared));
        reader.lock().extend_to(&backend, 4, &cancel).unwrap();
        let restored = backend.download(&reader.lock().state(3));
        let other_backend = CpuBackend::new();
        let other_setup = Setup {
            backend: &other_backend,
            ..setup
        };
        let fresh = TrajectoryHandle::attach(&other_setup, &spec(), 0).unwrap();
        assert!(!Arc::ptr_eq(&alone.shared, &fresh.shared));
        fresh.lock().extend_to(&other_backend, 3, &cancel).unwrap();
        assert_eq!(restored, other_backend.download(&fresh.lock().state(3)));
        // A method restarted while its predecessor is attached reads from step 1 again.
        let restarted = TrajectoryHandle::attach(&setup, &spec(), 0).unwrap();
        drop(reader);
        for k in 1..=7 {
            restarted.lock().extend_to(&backend, k, &cancel).unwrap();
            let state = restarted.lock().state(k);
            if k == 6 {
                assert_eq!(backend.download(&state), latest);
            }
        }
        drop((alone, restarted));
        // Everything detached: the cache forgets the trajectory.
        let again = TrajectoryHandle::attach(&setup, &spec(), 0).unwrap();
        assert!(again.lock().steps.is_empty());
    }

    #[test]
    fn a_cancelled_extension_keeps_what_it_completed_and_goes_on_from_there() {
        let backend = CpuBackend::new();
        let target = Target::sample(8, Fit::Stretch).unwrap();
        let params = ParamValues::new();
        let cache = MethodCache::blocking();
        let cancel = CancelToken::new();
        let setup = Setup {
            target: &target,
            backend: &backend,
            rng: RngKind::Numpy,
            params: &params,
            cache: &cache,
            cancel: &cancel,
            folder: None,
        };
        let handle = TrajectoryHandle::attach(&setup, &spec(), 0).unwrap();
        handle.lock().extend_to(&backend, 2, &cancel).unwrap();
        cancel.cancel();
        let error = handle.lock().extend_to(&backend, 5, &cancel).unwrap_err();
        assert!(
            crate::compute::cancel::is_cancelled_error(&error),
            "{error:#}"
        );
        assert_eq!(handle.lock().steps.len(), 2);
        cancel.reset();
        handle.lock().extend_to(&backend, 5, &cancel).unwrap();
        let resumed = backend.download(&handle.lock().state(5));
        let fresh_cache = MethodCache::blocking();
        let fresh = TrajectoryHandle::attach(
            &Setup {
                cache: &fresh_cache,
                ..setup
            },
            &spec(),
            0,
        )
        .unwrap();
        fresh.lock().extend_to(&backend, 5, &cancel).unwrap();
        assert_eq!(resumed, backend.download(&fresh.lock().state(5)));
    }
}
