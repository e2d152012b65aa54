//! Checkpoints: one trained method's [`TrainingState`] as a `.safetensors` file, so that a run
//! resumes exactly where it stopped (`inrlab run --resume`, the window's Load checkpoint…).
//!
//! The tensors are the method's own names (`network.0.weight`,
//! `adam.first_moment.network.0.weight`, F32, rows × cols); each random stream `s` is
//! `random.s.recent` (U32, its last 624 words), `random.s.position` (U64: seed, words drawn)
//! and `random.s.cached_gaussian` (F64, 0 or 1 value); a step cancelled after its update
//! leaves `pending_step` (F64). The header's `__metadata__` holds the run's provenance under
//! `inrlab` (the record every file inrlab writes carries, with this one method), the format
//! and inrlab versions, the method, the step, the optimizer's update count, and the step
//! reports so far (`history`), so that a resumed run's metrics list every step.
//!
//! Reading refuses, in one line each, what is not an inrlab checkpoint (a file cut short,
//! random bytes, another program's safetensors), another format or inrlab version, and
//! tensors of the wrong type or shape; restoring refuses another method and parameters whose
//! shapes differ ([`crate::methods::TrainingState::check`]). A checkpoint is used whole or not
//! at all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::compute::Backend;
use crate::methods::training_state::NamedTensor;
use crate::methods::{self, Method, MethodInfo, ParamValues, StepReport, TrainingState};
use crate::output::{Existing, write_atomic};
use crate::provenance::Provenance;
use crate::rng::NumpyStreamState;

/// The file extension, without the dot.
pub const EXTENSION: &str = "safetensors";
/// What the `format` metadata says of an inrlab checkpoint.
const FORMAT: &str = "inrlab-checkpoint";
/// The layout of the tensors and metadata; a reader refuses any other.
pub const FORMAT_VERSION: u32 = 1;
const STREAM_PREFIX: &str = "random.";
const PENDING_STEP: &str = "pending_step";

/// One step of the run so far, as the metrics files list it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryStep {
    pub report: StepReport,
    /// Compute seconds of the run up to and including this step.
    pub seconds: f64,
}

/// One method's run, resumable.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// How the run was made (image and its hash or the folder, working size, generator,
    /// backend and adapter, inrlab's version), with exactly this method and every parameter.
    pub provenance: Provenance,
    pub state: TrainingState,
    /// Steps 1…`state.step` (as far as the writer had them).
    pub history: Vec<HistoryStep>,
}

/// `checkpoint-step-000100.safetensors`, or with the method's name in it
/// (`checkpoint-fourier-mlp-step-000100.safetensors`) where several methods save into one
/// folder.
pub fn file_name(method: Option<&str>, step: usize) -> String {
    match method {
        Some(method) => format!("checkpoint-{method}-step-{step:06}.{EXTENSION}"),
        None => format!("checkpoint-step-{step:06}.{EXTENSION}"),
    }
}

/// `folder/name`, or with `-2`, `-3`, … before the extension where that file exists already.
pub fn free_path(folder: &Path, name: &str) -> PathBuf {
    let stem = name.strip_suffix(&format!(".{EXTENSION}")).unwrap_or(name);
    std::iter::once(folder.join(name))
        .chain((2..).map(|n| folder.join(format!("{stem}-{n}.{EXTENSION}"))))
        .find(|path| !path.exists())
        .expect("some number is free")
}

impl Checkpoint {
    /// A checkpoint of `state`; `provenance` must name exactly one method, the one that saved it.
    pub fn new(
        provenance: Provenance,
        mut state: TrainingState,
        history: Vec<HistoryStep>,
    ) -> anyhow::Result<Self> {
        // By name, as a file gives them back.
        state.tensors.sort_by(|a, b| a.name.cmp(&b.name));
        state.streams.sort_by(|a, b| a.0.cmp(&b.0));
        ensure!(
            provenance.methods.len() == 1,
            "a checkpoint is of one method, not {}",
            provenance.methods.len()
        );
        Ok(Checkpoint {
            provenance,
            state,
            history,
        })
    }

    /// The method's registry name.
    pub fn method(&self) -> &str {
        self.provenance
            .methods
            .keys()
            .next()
            .map_or("", String::as_str)
    }

    pub fn info(&self) -> anyhow::Result<&'static MethodInfo> {
        methods::find(self.method())
    }

    /// Every parameter of the run, as set explicitly.
    pub fn params(&self) -> anyhow::Result<ParamValues> {
        self.provenance.params_of(self.info()?)
    }

    /// Puts the state into `method`, a freshly built run of the checkpoint's method; another
    /// method or a state that does not fit is refused and `method` is left untouched.
    pub fn restore(&self, method: &mut dyn Method, backend: &dyn Backend) -> anyhow::Result<()> {
        ensure!(
            method.name() == self.method(),
            "the checkpoint is of {}, not {}",
            self.method(),
            method.name()
        );
        method.restore(backend, &self.state)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let state = &self.state;
        let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for tensor in &state.tensors {
            let shape = vec![tensor.rows, tensor.cols];
            buffers.push((
                tensor.name.clone(),
                Dtype::F32,
                shape,
                le_bytes(&tensor.values),
            ));
        }
        for (name, stream) in &state.streams {
            let prefix = format!("{STREAM_PREFIX}{name}");
            let recent = stream.recent.iter().flat_map(|w| w.to_le_bytes()).collect();
            buffers.push((
                format!("{prefix}.recent"),
                Dtype::U32,
                vec![stream.recent.len()],
                recent,
            ));
            let position = [stream.seed as u64, stream.drawn];
            buffers.push((
                format!("{prefix}.position"),
                Dtype::U64,
                vec![2],
                position.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
            let cached: Vec<f64> = stream.cached_gaussian.into_iter().collect();
            buffers.push((
                format!("{prefix}.cached_gaussian"),
                Dtype::F64,
                vec![cached.len()],
                cached.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
        }
        if let Some(values) = &state.pending_step {
            buffers.push((
                PENDING_STEP.to_owned(),
                Dtype::F64,
                vec![values.len()],
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
        }
        let views = buffers
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                Ok((
                    name.as_str(),
                    TensorView::new(*dtype, shape.clone(), bytes)?,
                ))
            })
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        let metadata: HashMap<String, String> = [
            ("format", FORMAT.to_owned()),
            ("format_version", FORMAT_VERSION.to_string()),
            ("inrlab_version", env!("CARGO_PKG_VERSION").to_owned()),
            ("method", self.method().to_owned()),
            ("step", state.step.to_string()),
            ("optimizer_updates", state.optimizer_updates.to_string()),
            (
                crate::provenance::PNG_KEYWORD,
                serde_json::to_string(&self.provenance)?,
            ),
            ("history", serde_json::to_string(&self.history)?),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        Ok(safetensors::serialize(views, Some(metadata))?)
    }

    /// Writes the checkpoint atomically (a temporary file, then a rename); an existing file
    /// is refused unless `existing` says to overwrite it. Returns the file's size in bytes.
    pub fn write(&self, path: &Path, existing: Existing) -> anyhow::Result<u64> {
        let bytes = self.to_bytes()?;
        write_atomic(path, &bytes, existing)?;
        Ok(bytes.len() as u64)
    }

    /// Reads a checkpoint this version of inrlab wrote.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
    }

    /// [`Self::read`] from the file's bytes; errors do not name the file.
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| anyhow::anyhow!("not an inrlab checkpoint ({e})"))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| anyhow::anyhow!("not an inrlab checkpoint ({e})"))?;
        let metadata = inrlab_metadata(header.metadata().as_ref())?;
        let text = |key: &str| -> anyhow::Result<&str> {
            metadata
                .get(key)
                .map(String::as_str)
                .with_context(|| format!("not an inrlab checkpoint (no {key} in its metadata)"))
        };
        let number = |key: &str| -> anyhow::Result<u64> {
            text(key)?
                .parse()
                .with_context(|| format!("not an inrlab checkpoint (its {key} is no number)"))
        };
        let ours = env!("CARGO_PKG_VERSION");
        let version = text("inrlab_version")?;
        ensure!(
            version == ours,
            "written by inrlab {version}; this is inrlab {ours}, which resumes only its own \
             checkpoints (--config <this file> trains that run again from scratch)"
        );
        let provenance: Provenance = serde_json::from_str(text(crate::provenance::PNG_KEYWORD)?)
            .context("not an inrlab checkpoint (its record does not read)")?;
        let history: Vec<HistoryStep> = serde_json::from_str(text("history")?)
            .context("not an inrlab checkpoint (its history does not read)")?;
        let method = text("method")?;
        ensure!(
            provenance.methods.len() == 1 && provenance.methods.contains_key(method),
            "not an inrlab checkpoint (its record is not of {method} alone)"
        );
        let mut state = TrainingState {
            step: usize::try_from(number("step")?)?,
            optimizer_updates: u32::try_from(number("optimizer_updates")?)?,
            tensors: Vec::new(),
            streams: Vec::new(),
            pending_step: None,
        };
        let mut streams: Vec<&str> = Vec::new();
        let mut tensors = file.tensors();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, view) in &tensors {
            if let Some(stream) = name.strip_prefix(STREAM_PREFIX) {
                if let Some(stream) = stream.strip_suffix(".position") {
                    streams.push(stream);
                }
            } else if name == PENDING_STEP {
                state.pending_step = Some(f64_values(name, view)?);
            } else {
                let &[rows, cols] = view.shape() else {
                    bail!("not an inrlab checkpoint ({name} is not a matrix)");
                };
                ensure!(
                    view.dtype() == Dtype::F32,
                    "not an inrlab checkpoint ({name} is {:?}, not F32)",
                    view.dtype()
                );
                state.tensors.push(NamedTensor {
                    name: name.clone(),
                    rows,
                    cols,
                    values: view
                        .data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                });
            }
        }
        for stream in streams {
            state
                .streams
                .push((stream.to_owned(), read_stream(&file, stream)?));
        }
        let extra = tensors.iter().map(|(name, _)| name).find(|name| {
            name.strip_prefix(STREAM_PREFIX).is_some_and(|rest| {
                !state.streams.iter().any(|(s, _)| {
                    rest.strip_prefix(s.as_str())
                        .is_some_and(|r| r.starts_with('.'))
                })
            })
        });
        if let Some(extra) = extra {
            bail!("not an inrlab checkpoint ({extra} belongs to no stream)");
        }
        Checkpoint::new(provenance, state, history)
    }
}

/// The record of the run a checkpoint's header holds, for `--config` and the window's Load
/// preset… (which make the run again from scratch, so another version's file is fine). `None`
/// when `bytes` do not start like a safetensors file.
pub fn provenance_from_header(bytes: &[u8]) -> Option<anyhow::Result<Provenance>> {
    let length = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let end = usize::try_from(length).ok()?.checked_add(8)?;
    if bytes.get(8) != Some(&b'{') || end > bytes.len() {
        return None;
    }
    Some((|| {
        #[derive(Deserialize)]
        struct Header {
            #[serde(rename = "__metadata__")]
            metadata: Option<HashMap<String, String>>,
        }
        let header: Header = serde_json::from_slice(&bytes[8..end])
            .map_err(|e| anyhow::anyhow!("not an inrlab checkpoint ({e})"))?;
        let metadata = inrlab_metadata(header.metadata.as_ref())?;
        let record = metadata
            .get(crate::provenance::PNG_KEYWORD)
            .context("not an inrlab checkpoint (no record in its metadata)")?;
        serde_json::from_str(record).context("not an inrlab checkpoint (its record does not read)")
    })())
}

/// The metadata if it is an inrlab checkpoint's of [`FORMAT_VERSION`].
fn inrlab_metadata(
    metadata: Option<&HashMap<String, String>>,
) -> anyhow::Result<&HashMap<String, String>> {
    let metadata = metadata.context("not an inrlab checkpoint (no metadata)")?;
    ensure!(
        metadata.get("format").map(String::as_str) == Some(FORMAT),
        "not an inrlab checkpoint (a safetensors file of something else)"
    );
    let format = metadata
        .get("format_version")
        .map_or("none", String::as_str);
    ensure!(
        format == FORMAT_VERSION.to_string(),
        "checkpoint format {format}; this inrlab reads format {FORMAT_VERSION}"
    );
    Ok(metadata)
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f64_values(name: &str, view: &TensorView) -> anyhow::Result<Vec<f64>> {
    ensure!(
        view.dtype() == Dtype::F64 && view.shape().len() == 1,
        "not an inrlab checkpoint ({name} is not a list of F64)"
    );
    Ok(view
        .data()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect())
}

/// The three tensors of random stream `name`.
fn read_stream(file: &SafeTensors, name: &str) -> anyhow::Result<NumpyStreamState> {
    let part = |what: &str, dtype: Dtype| -> anyhow::Result<TensorView<'_>> {
        let full = format!("{STREAM_PREFIX}{name}.{what}");
        let view = file
            .tensor(&full)
            .map_err(|_| anyhow::anyhow!("not an inrlab checkpoint (no {full})"))?;
        ensure!(
            view.dtype() == dtype && view.shape().len() == 1,
            "not an inrlab checkpoint ({full} is not a list of {dtype:?})"
        );
        Ok(view)
    };
    let position: Vec<u64> = (part("position", Dtype::U64)?.data().chunks_exact(8))
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let &[seed, drawn] = position.as_slice() else {
        bail!("not an inrlab checkpoint (stream {name}'s position is not seed and count)");
    };
    let recent = (part("recent", Dtype::U32)?.data().chunks_exact(4))
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    let full = format!("{STREAM_PREFIX}{name}.cached_gaussian");
    let cached = f64_values(&full, &part("cached_gaussian", Dtype::F64)?)?;
    ensure!(
        cached.len() <= 1,
        "not an inrlab checkpoint ({full} has {} values)",
        cached.len()
    );
    Ok(NumpyStreamState {
        seed: u32::try_from(seed)
            .map_err(|_| anyhow::anyhow!("not an inrlab checkpoint (stream {name}'s seed)"))?,
        drawn,
        recent,
        cached_gaussian: cached.first().copied(),
    })
}

/// `inrlab run --checkpoint-every n`: a checkpoint of the run's one method every `n` steps
/// and at its last, as `checkpoint-step-NNNNNN.safetensors` in the output folder. It keeps
/// the run's history (from the checkpoint it resumed, if any) for the files' metadata.
pub struct CheckpointSchedule {
    every: usize,
    last: usize,
    folder: PathBuf,
    existing: Existing,
    provenance: Provenance,
    history: Vec<HistoryStep>,
}

impl CheckpointSchedule {
    /// For a run of `provenance`'s one method from step `history.len()` to `last`.
    pub fn new(
        every: usize,
        last: usize,
        folder: &Path,
        existing: Existing,
        provenance: Provenance,
        history: Vec<HistoryStep>,
    ) -> Self {
        CheckpointSchedule {
            every: every.max(1),
            last,
            folder: folder.to_path_buf(),
            existing,
            provenance,
            history,
        }
    }

    fn is_due(&self, step: usize) -> bool {
        step.is_multiple_of(self.every) || step == self.last
    }

    /// Every file it will write, so that an existing one is refused before the run starts.
    pub fn paths(&self) -> Vec<PathBuf> {
        let first = self.history.last().map_or(0, |h| h.report.step) + 1;
        (first..=self.last)
            .filter(|&step| self.is_due(step))
            .map(|step| self.folder.join(file_name(None, step)))
            .collect()
    }

    /// Notes a finished step (`seconds`: the run's compute time so far) and, when it is due,
    /// writes the method's checkpoint: the path, or why it could not be written.
    pub fn after_step(
        &mut self,
        method: &dyn Method,
        backend: &dyn Backend,
        report: &StepReport,
        seconds: f64,
    ) -> Option<anyhow::Result<PathBuf>> {
        self.history.push(HistoryStep {
            report: report.clone(),
            seconds,
        });
        if !self.is_due(report.step) {
            return None;
        }
        let path = self.folder.join(file_name(None, report.step));
        Some((|| {
            let state = method
                .training_state(backend)
                .with_context(|| format!("{} has no state to save", method.name()))?;
            let checkpoint = Checkpoint::new(self.provenance.clone(), state, self.history.clone())?;
            checkpoint.write(&path, self.existing)?;
            Ok(path)
        })())
    }
}
