//! What a method will hold, estimated from its parameters before it is built, and the check
//! against what the backend can give ([`crate::compute::MemoryBudget`]).
//!
//! Each method's `estimate` counts what its `new` and first steps allocate: tensors on the
//! backend, the f64 copies the CPU backend keeps of Gram inputs, and host memory (Gram blocks,
//! ridge systems and their factors, reservoir draws). Counts are upper bounds: transient
//! buffers are added as if they all lived at once.

use crate::compute::{MemoryBudget, format_gb};

/// What one method will hold at its peak.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemoryEstimate {
    /// Host memory besides tensors: Gram blocks, ridge systems and factors, reservoir draws and
    /// eigenvalue workspaces, host copies of training data.
    pub host_bytes: u64,
    /// The f32 tensors on the backend.
    pub device_bytes: u64,
    /// f64 copies of the tensors that enter Gram products: the CPU backend keeps one per
    /// tensor, a software adapter makes them while multiplying on the host.
    pub gram_copy_bytes: u64,
    /// The largest single tensor or temporary buffer on the backend.
    pub largest_tensor_bytes: u64,
    /// Rough floating-point operations of building the method and running its first step.
    pub first_step_flops: f64,
}

impl MemoryEstimate {
    /// Host memory needed on a backend with this budget.
    pub fn host_need(&self, budget: &MemoryBudget) -> u64 {
        let mut need = self.host_bytes;
        if budget.tensors_in_host_memory {
            need = need.saturating_add(self.device_bytes);
        }
        if budget.keeps_f64_gram_copies {
            need = need.saturating_add(self.gram_copy_bytes);
        }
        need
    }

    /// Why this estimate does not fit the budget, or `None` when it fits. `what` names the
    /// method and its configuration ("cumulative: hidden 4096 at 512²").
    pub fn refusal(&self, budget: &MemoryBudget, what: &str) -> Option<String> {
        let need = self.host_need(budget);
        if let Some(free) = budget.host_free_bytes
            && need > free
        {
            return Some(format!(
                "{what} needs ≈ {}, {} are free",
                format_gb(need),
                format_gb(free)
            ));
        }
        if self.largest_tensor_bytes > budget.largest_tensor_bytes {
            return Some(format!(
                "{what} needs a {} buffer, more than the backend's {} of {}; use a smaller size \
                 or the CPU backend",
                format_gb(self.largest_tensor_bytes),
                budget.largest_tensor_limit,
                format_gb(budget.largest_tensor_bytes)
            ));
        }
        None
    }
}

/// Adds up an estimate allocation by allocation.
#[derive(Default)]
pub(crate) struct Tally {
    estimate: MemoryEstimate,
}

/// `count` elements of `bytes` each, saturating (the parameters bound every product, but an
/// estimate must not wrap even for absurd ones).
fn bytes(count: usize, each: u64) -> u64 {
    (count as u64).saturating_mul(each)
}

/// Bytes of the largest temporary of the GPU Gram kernel for an `rows × total` by `rows × q`
/// product: its per-split partial sums (it splits the row sum until ~1024 workgroups of 16×16
/// tiles are busy, so the partials exceed the result by at most that many tiles).
fn gram_partials_bytes(total: usize, q: usize) -> u64 {
    bytes(
        (total + 16)
            .saturating_mul(q + 16)
            .saturating_add(1024 * 256),
        8,
    )
}

impl Tally {
    pub fn new() -> Self {
        Self::default()
    }

    /// A `rows × cols` f32 tensor on the backend.
    pub fn tensor(&mut self, rows: usize, cols: usize) -> &mut Self {
        let size = bytes(rows.saturating_mul(cols), 4);
        self.estimate.device_bytes = self.estimate.device_bytes.saturating_add(size);
        self.buffer(size)
    }

    /// `count` tensors of `rows × cols`.
    pub fn tensors(&mut self, count: usize, rows: usize, cols: usize) -> &mut Self {
        let size = bytes(rows.saturating_mul(cols), 4);
        self.estimate.device_bytes = self
            .estimate
            .device_bytes
            .saturating_add(size.saturating_mul(count as u64));
        if count > 0 {
            self.buffer(size);
        }
        self
    }

    /// A temporary buffer on the backend (it only matters against the buffer limit).
    pub fn buffer(&mut self, size: u64) -> &mut Self {
        self.estimate.largest_tensor_bytes = self.estimate.largest_tensor_bytes.max(size);
        self
    }

    /// A `rows × cols` tensor that enters Gram products, of which an f64 copy is kept.
    pub fn gram_input(&mut self, rows: usize, cols: usize) -> &mut Self {
        let size = bytes(rows.saturating_mul(cols), 8);
        self.estimate.gram_copy_bytes = self.estimate.gram_copy_bytes.saturating_add(size);
        self
    }

    /// A Gram product `[blocks]ᵀB` with `total` columns in the blocks and `q` in B: its f64
    /// result on the host and the GPU kernel's partials.
    pub fn gram(&mut self, total: usize, q: usize) -> &mut Self {
        self.host_f64(total.saturating_mul(q));
        self.buffer(gram_partials_bytes(total, q))
    }

    /// A readout `[blocks]·W` into `rows × outs`: the GPU splits W into two f32 halves and
    /// carries an f64 accumulator per output element.
    pub fn readout(&mut self, rows: usize, features: usize, outs: usize) -> &mut Self {
        self.buffer(bytes(features.saturating_mul(outs), 4))
            .buffer(bytes(rows.saturating_mul(outs), 8))
    }

    /// A ridge solve of `features` unknowns for `outs` right-hand sides (the Gram matrix is
    /// counted by [`Self::gram`]): a Cholesky factor, or on its failure a copy of the system
    /// and its symmetric-indefinite factor, and the solution.
    pub fn ridge_solve(&mut self, features: usize, outs: usize) -> &mut Self {
        let square = features.saturating_mul(features);
        self.host_f64(square.saturating_mul(2))
            .host_f64(features.saturating_mul(outs).saturating_mul(2))
    }

    /// `count` f64 values on the host.
    pub fn host_f64(&mut self, count: usize) -> &mut Self {
        self.host_bytes(bytes(count, 8))
    }

    /// `count` f32 values on the host.
    pub fn host_f32(&mut self, count: usize) -> &mut Self {
        self.host_bytes(bytes(count, 4))
    }

    pub fn host_bytes(&mut self, size: u64) -> &mut Self {
        self.estimate.host_bytes = self.estimate.host_bytes.saturating_add(size);
        self
    }

    pub fn flops(&mut self, flops: f64) -> &mut Self {
        self.estimate.first_step_flops += flops;
        self
    }

    pub fn finish(&self) -> MemoryEstimate {
        self.estimate
    }
}

/// A reservoir of `hidden` units on `inputs` inputs: its weights on the backend, its raw f64
/// draws (cached on the host), the eigenvalue solve for its spectral radius (a Hessenberg copy
/// and the QR workspace) and the f32 copies made while uploading.
pub(crate) fn reservoir(tally: &mut Tally, inputs: usize, hidden: usize) {
    let weights = hidden
        .saturating_mul(hidden)
        .saturating_add(hidden.saturating_mul(inputs + 1));
    tally
        .tensor(inputs, hidden)
        .tensor(hidden, hidden)
        .tensor(1, hidden)
        .host_f64(weights)
        .host_f64(hidden.saturating_mul(hidden).saturating_mul(2))
        .host_f32(weights)
        .flops(10.0 * (hidden as f64).powi(3));
}

/// The flops of one reservoir step over `rows` pixels (with the recurrent product).
pub(crate) fn reservoir_step_flops(rows: usize, inputs: usize, hidden: usize) -> f64 {
    2.0 * rows as f64 * hidden as f64 * (hidden + inputs) as f64
}

/// A ridge fit of `rows × features` to `rows × outs`: two Gram products, the solve and the
/// readout, with their flops.
pub(crate) fn ridge_fit(tally: &mut Tally, rows: usize, features: usize, outs: usize) {
    let (r, f) = (rows as f64, features as f64);
    tally
        .gram(features, features)
        .gram(features, outs)
        .ridge_solve(features, outs)
        .readout(rows, features, outs)
        .flops(r * f * f + 2.0 * r * f * outs as f64 * 2.0 + f * f * f / 3.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(free: Option<u64>, largest: u64) -> MemoryBudget {
        MemoryBudget {
            host_free_bytes: free,
            tensors_in_host_memory: true,
            keeps_f64_gram_copies: true,
            largest_tensor_bytes: largest,
            largest_tensor_limit: "max_storage_buffer_binding_size",
        }
    }

    #[test]
    fn refusals_say_what_is_needed_against_what_is_there() {
        let estimate = MemoryEstimate {
            host_bytes: 1_000_000_000,
            device_bytes: 8_000_000_000,
            gram_copy_bytes: 700_000_000,
            largest_tensor_bytes: 4_300_000_000,
            first_step_flops: 0.0,
        };
        let what = "cumulative: hidden 4096 at 512²";
        assert_eq!(
            estimate.refusal(&budget(Some(21_300_000_000), u64::MAX), what),
            None
        );
        assert_eq!(
            estimate
                .refusal(&budget(Some(5_000_000_000), u64::MAX), what)
                .unwrap(),
            "cumulative: hidden 4096 at 512² needs ≈ 9.7 GB, 5.0 GB are free"
        );
        // Unknown free memory: only the buffer limit is checked.
        assert_eq!(estimate.refusal(&budget(None, u64::MAX), what), None);
        let gpu = MemoryBudget {
            tensors_in_host_memory: false,
            keeps_f64_gram_copies: false,
            ..budget(Some(2_000_000_000), 2_147_483_648)
        };
        let message = estimate.refusal(&gpu, what).unwrap();
        assert!(
            message.contains("4.3 GB") && message.contains("2.1 GB"),
            "{message}"
        );
    }

    /// What the CPU backend really allocates (tensors and f64 copies, at their peak over the
    /// build and the first steps) lies under the estimate, and not far under it.
    #[test]
    fn estimates_bound_what_the_cpu_backend_allocates() {
        use crate::compute::cpu::CpuBackend;
        use crate::methods::{ParamValues, Setup, find};
        use crate::rng::RngKind;
        use crate::target::{Fit, Target};
        // (method, its values, working size)
        type Case<'a> = (&'a str, &'a [(&'a str, f64)], usize);
        let cases: &[Case] = &[
            ("trajectory", &[("hidden", 96.0), ("steps", 4.0)], 64),
            ("cumulative", &[("hidden", 48.0), ("steps", 3.0)], 64),
            ("refine", &[("hidden", 96.0), ("steps", 3.0)], 64),
            ("fourier-ridge", &[("features", 128.0)], 64),
            ("fourier-mlp", &[("steps", 3.0)], 48),
            ("learned-refine", &[("width", 32.0), ("steps", 2.0)], 48),
        ];
        for &(name, pairs, size) in cases {
            let mut params = ParamValues::new();
            for &(key, value) in pairs {
                params.set(key, value);
            }
            let info = find(name).unwrap();
            let target = Target::sample(size, Fit::Stretch).unwrap();
            let backend = CpuBackend::new();
            let mut method = info
                .build(&Setup {
                    target: &target,
                    backend: &backend,
                    rng: RngKind::Numpy,
                    params: &params,
                    cache: &crate::methods::MethodCache::blocking(),
                    cancel: &crate::compute::CancelToken::new(),
                    folder: None,
                })
                .unwrap();
            while !method.is_done() {
                method.step(&backend).unwrap();
            }
            let truth = backend.peak_bytes_allocated();
            let estimate = (info.estimate)(&params, size);
            let estimated = estimate.device_bytes + estimate.gram_copy_bytes;
            assert!(
                truth <= estimated && estimated <= 2 * truth,
                "{name}: allocated {truth} bytes at the peak, estimated {estimated}"
            );
        }
    }
}
