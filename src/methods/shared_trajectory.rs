//! One reservoir trajectory read by several methods.
//!
//! `trajectory` (approach 1) and `cumulative` (approach 2) unroll the same reservoir over the same
//! coordinates; with the same parameters their states `H_k`, diagonal Gram blocks `H_kᵀH_k` and
//! target products `H_kᵀY` are identical. Both attach to one [`SharedTrajectory`] (found by
//! backend, reservoir spec and target), so each is computed once, by whichever method gets there
//! first. The suite runs both; the window runs them side by side.
//!
//! Old states are kept only while a reader of the history (cumulative) is attached: the
//! trajectory alone needs only its latest state, and K can be large.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::reservoir::{Reservoir, ReservoirSpec};
use super::{Setup, Target};
use crate::compute::{Backend, Tensor};

/// One unrolled step: its state (dropped once no reader needs it) and its products.
struct Step {
    state: Option<Arc<Tensor>>,
    /// `H_kᵀH_k`, hidden × hidden, row-major.
    gram: Arc<Vec<f64>>,
    /// `H_kᵀY`, hidden × 3, row-major.
    target_product: Arc<Vec<f64>>,
}

pub struct SharedTrajectory {
    reservoir: Reservoir,
    coords: Tensor,
    target: Tensor,
    steps: Vec<Step>,
    history_readers: usize,
}

#[derive(Clone, Copy, PartialEq, Debug)]
struct Key {
    backend: u64,
    spec: ReservoirSpec,
    target: u64,
}

static REGISTRY: Mutex<Vec<(Key, Weak<Mutex<SharedTrajectory>>)>> = Mutex::new(Vec::new());

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
    hasher.finish()
}

/// A method's attachment to a shared trajectory; detaches on drop.
pub struct TrajectoryHandle {
    shared: Arc<Mutex<SharedTrajectory>>,
    reads_history: bool,
}

impl Drop for TrajectoryHandle {
    fn drop(&mut self) {
        if self.reads_history {
            lock(&self.shared).history_readers -= 1;
        }
    }
}

impl TrajectoryHandle {
    /// Attaches to the trajectory of `spec` over `setup`'s target on `setup`'s backend, making
    /// it if no attached method has. `reads_history`: the method reads states older than the
    /// latest.
    pub fn attach(setup: &Setup, spec: &ReservoirSpec, reads_history: bool) -> Self {
        let key = Key {
            backend: setup.backend.instance_id(),
            spec: *spec,
            target: fingerprint(setup.target),
        };
        let mut registry = lock(&REGISTRY);
        registry.retain(|(_, weak)| weak.strong_count() > 0);
        let shared = match registry
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, weak)| weak.upgrade())
        {
            Some(shared) => shared,
            None => {
                let backend = setup.backend;
                let n = setup.target.pixel_count();
                let shared = Arc::new(Mutex::new(SharedTrajectory {
                    reservoir: Reservoir::new(backend, spec),
                    coords: backend.upload(n, 2, &setup.target.coords()),
                    target: backend.upload(n, 3, &setup.target.pixels),
                    steps: Vec::new(),
                    history_readers: 0,
                }));
                registry.push((key, Arc::downgrade(&shared)));
                shared
            }
        };
        if reads_history {
            lock(&shared).history_readers += 1;
        }
        TrajectoryHandle {
            shared,
            reads_history,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, SharedTrajectory> {
        lock(&self.shared)
    }
}

impl SharedTrajectory {
    pub fn target(&self) -> &Tensor {
        &self.target
    }

    /// Unrolls the reservoir until step `k` (1-based) exists, with its products.
    pub fn extend_to(&mut self, backend: &dyn Backend, k: usize) {
        if self.history_readers > 0 && self.steps.iter().any(|s| s.state.is_none()) {
            self.restore_history(backend);
        }
        while self.steps.len() < k {
            let previous = self
                .steps
                .last()
                .map(|s| s.state.as_deref().expect("the latest state is always kept"));
            let mut next = backend.zeros(self.coords.rows(), self.reservoir.hidden);
            self.reservoir
                .step(backend, &self.coords, previous, &mut next);
            let gram = backend.gram(&[&next], &next);
            let target_product = backend.gram(&[&next], &self.target);
            if self.history_readers == 0
                && let Some(last) = self.steps.last_mut()
            {
                last.state = None;
            }
            self.steps.push(Step {
                state: Some(Arc::new(next)),
                gram: Arc::new(gram),
                target_product: Arc::new(target_product),
            });
        }
    }

    /// Recomputes dropped states (a history reader attached after the trajectory ran ahead
    /// alone). Products are kept; only states are redone.
    fn restore_history(&mut self, backend: &dyn Backend) {
        let mut previous: Option<Arc<Tensor>> = None;
        for step in &mut self.steps {
            if step.state.is_none() {
                let mut next = backend.zeros(self.coords.rows(), self.reservoir.hidden);
                self.reservoir
                    .step(backend, &self.coords, previous.as_deref(), &mut next);
                step.state = Some(Arc::new(next));
            }
            previous = step.state.clone();
        }
    }

    /// State `H_k` (1-based); [`Self::extend_to`] must have reached k.
    pub fn state(&self, k: usize) -> Arc<Tensor> {
        self.steps[k - 1]
            .state
            .clone()
            .expect("state kept for an attached reader")
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
