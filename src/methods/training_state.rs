//! Everything a trained method's next step depends on, as plain host data: what a checkpoint
//! holds ([`crate::checkpoint`] writes it as safetensors) and what
//! [`super::Method::restore`] puts back into a freshly built method of the same parameters.
//!
//! A method restores in two phases: [`TrainingState::check`] compares the state with what the
//! method holds (tensor names and shapes, random streams, counts), then the method assigns.
//! Nothing is assigned before every check has passed, so a state that does not fit leaves the
//! method exactly as it was built.

use anyhow::{bail, ensure};

use crate::rng::{NumpyRandomState, NumpyStreamState};

/// One f32 tensor, rows × cols, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

/// A trained method's state between two steps (or inside one that was cancelled after its
/// update).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingState {
    /// Steps done (reported).
    pub step: usize,
    /// Updates the optimizer has applied (Adam's bias correction counts them).
    pub optimizer_updates: u32,
    /// Weights and optimizer moments, by name (`network.0.weight`,
    /// `adam.first_moment.network.0.weight`, …).
    pub tensors: Vec<NamedTensor>,
    /// Every random stream that persists across steps, by name, at the start of the next step.
    pub streams: Vec<(String, NumpyStreamState)>,
    /// A step whose update is applied but whose report is not made yet (it was cancelled in
    /// between): the numbers that report needs. `None` between steps.
    pub pending_step: Option<Vec<f64>>,
}

/// What a method holds, for checking a state against it.
pub struct StateLayout<'a> {
    /// The method's registry name, for messages.
    pub method: &'a str,
    pub total_steps: usize,
    /// (name, rows, cols) of every tensor, as [`TrainingState::tensors`] must have them.
    pub tensors: Vec<(String, usize, usize)>,
    pub streams: &'a [&'a str],
    /// How many numbers a pending step of this method carries; `None` for a method whose
    /// steps commit and report at once.
    pub pending_len: Option<usize>,
}

impl TrainingState {
    /// Refuses, in one line, a state that does not fit `layout`.
    pub fn check(&self, layout: &StateLayout) -> anyhow::Result<()> {
        let method = layout.method;
        ensure!(
            self.step <= layout.total_steps,
            "{method}: the checkpoint is at step {}, past this run's {} steps (give --steps)",
            self.step,
            layout.total_steps
        );
        let pending = self.pending_step.is_some() as u64;
        ensure!(
            self.optimizer_updates as u64 == self.step as u64 + pending,
            "{method}: the checkpoint's optimizer has {} updates at step {}",
            self.optimizer_updates,
            self.step
        );
        match (&self.pending_step, layout.pending_len) {
            (None, _) => {}
            (Some(values), Some(len)) if values.len() == len => {}
            (Some(values), _) => bail!(
                "{method}: the checkpoint's unfinished step has {} numbers",
                values.len()
            ),
        }
        for (name, rows, cols) in &layout.tensors {
            let Some(tensor) = self.tensors.iter().find(|t| &t.name == name) else {
                bail!(
                    "{method}: the checkpoint has no {name} (another optimizer or architecture?)"
                );
            };
            ensure!(
                (tensor.rows, tensor.cols) == (*rows, *cols),
                "{method}: the checkpoint's {name} is {}×{}, this run's is {rows}×{cols} (its \
                 parameters differ from the checkpoint's)",
                tensor.rows,
                tensor.cols
            );
            ensure!(
                tensor.values.len() == rows * cols,
                "{method}: the checkpoint's {name} has {} values for {rows}×{cols}",
                tensor.values.len()
            );
        }
        if let Some(extra) = (self.tensors.iter())
            .find(|t| !layout.tensors.iter().any(|(name, _, _)| *name == t.name))
        {
            bail!(
                "{method}: the checkpoint has a tensor {} this run does not (another \
                 architecture?)",
                extra.name
            );
        }
        let mut names: Vec<&str> = self.streams.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        let mut expected = layout.streams.to_vec();
        expected.sort_unstable();
        ensure!(
            names == expected,
            "{method}: the checkpoint has the random streams [{}], this run draws from [{}]",
            names.join(", "),
            expected.join(", ")
        );
        for (name, stream) in &self.streams {
            NumpyRandomState::from_state(stream)
                .map_err(|e| anyhow::anyhow!("{method}: random stream {name}: {e}"))?;
        }
        Ok(())
    }

    /// The values of tensor `name` (checked to be there by [`Self::check`]).
    pub fn tensor(&self, name: &str) -> &[f32] {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .map_or(&[], |t| &t.values)
    }

    /// Random stream `name` (checked by [`Self::check`]).
    pub fn stream(&self, name: &str) -> anyhow::Result<NumpyRandomState> {
        let Some((_, state)) = self.streams.iter().find(|(n, _)| n == name) else {
            bail!("no random stream {name}");
        };
        NumpyRandomState::from_state(state)
    }
}
