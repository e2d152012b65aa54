//! Feature maps for the inspect view: what a method sees (reservoir units, Fourier channels)
//! at a step of its run, as colour maps.
//!
//! The running method's own features are read when it is at the asked step. An older step's
//! are recomputed by a scratch copy of the method with the same parameters (deterministic),
//! stepped by the worker one piece at a time between the other methods' steps and charged to
//! that method's share, so asking never stalls the window's compute. The downloaded tensor of
//! the latest (method, run, step) is kept, so paging through channels downloads nothing.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use super::protocol::{FeatureMaps, FeatureRequest, Message};
use crate::compute::CancelToken;
use crate::compute::cancel::is_cancelled_error;
use crate::imaging::diverging_map;
use crate::methods::cache::not_ready;
use crate::methods::{Method, Setup};
use crate::session::Session;

/// The downloaded features of one (method, run, step).
struct Downloaded {
    key: (&'static str, u64, usize),
    rows: usize,
    cols: usize,
    data: Vec<f32>,
    labels: Vec<String>,
}

/// A scratch copy being stepped to an older step.
struct Job {
    request: FeatureRequest,
    scratch: Option<Box<dyn Method>>,
    cancel: CancelToken,
}

#[derive(Default)]
pub struct FeatureWork {
    downloaded: Option<Downloaded>,
    job: Option<Job>,
}

fn download(
    method: &dyn Method,
    session: &Session,
) -> Option<(usize, usize, Vec<f32>, Vec<String>)> {
    let tensor = method.features()?;
    let labels = (0..tensor.cols())
        .map(|i| method.feature_label(i))
        .collect();
    Some((
        tensor.rows(),
        tensor.cols(),
        session.backend().download(tensor),
        labels,
    ))
}

impl FeatureWork {
    /// Forgets everything (new image, new backend).
    pub fn clear(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel.cancel();
        }
        self.downloaded = None;
    }

    /// Whether a scratch copy is being stepped.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    pub fn cancel_token(&self) -> CancelToken {
        self.job
            .as_ref()
            .map_or_else(CancelToken::new, |job| job.cancel.clone())
    }

    /// Answers a request at once when it can (the kept download, or the running method at that
    /// step); otherwise starts a scratch copy, replacing any earlier one.
    pub fn request(&mut self, session: &Session, request: FeatureRequest) -> Vec<Message> {
        let Some(index) = session
            .slots()
            .iter()
            .position(|s| s.info.name == request.method && s.run_id == request.run_id)
        else {
            return Vec::new(); // stale request: the method restarted or was deselected
        };
        let key = (request.method, request.run_id, request.step);
        if self.downloaded.as_ref().is_some_and(|d| d.key == key) {
            return vec![self.maps(request)];
        }
        if let Some(method) = session
            .slot(index)
            .method()
            .filter(|m| m.steps_done() == request.step)
        {
            self.keep(key, download(method, session));
            return vec![self.maps(request)];
        }
        if let Some(old) = self.job.take() {
            old.cancel.cancel();
        }
        self.job = Some(Job {
            request,
            scratch: None,
            cancel: CancelToken::new(),
        });
        Vec::new()
    }

    /// The slot and step the next [`Self::advance`] works on, to show it as in flight.
    pub fn next_piece(&self, session: &Session) -> Option<(usize, usize)> {
        let job = self.job.as_ref()?;
        let index = session.position(job.request.method)?;
        let step = job.scratch.as_ref().map_or(1, |s| s.steps_done() + 1);
        Some((index, step))
    }

    /// One piece of the scratch copy's work: its build or one step; the maps once it is there.
    pub fn advance(&mut self, session: &mut Session) -> Vec<Message> {
        let Some(job) = self.job.as_mut() else {
            return Vec::new();
        };
        let Some(index) = session
            .slots()
            .iter()
            .position(|s| s.info.name == job.request.method && s.run_id == job.request.run_id)
        else {
            self.job = None;
            return Vec::new();
        };
        let started = Instant::now();
        let outcome = {
            let session: &Session = session;
            let Some(target) = session.target() else {
                self.job = None;
                return Vec::new();
            };
            catch_unwind(AssertUnwindSafe(|| -> anyhow::Result<bool> {
                match &mut job.scratch {
                    None => {
                        let slot = session.slot(index);
                        job.scratch = Some(slot.info.build(&Setup {
                            target,
                            backend: session.backend(),
                            rng: session.rng(),
                            params: &slot.params,
                            cache: session.cache(),
                            cancel: &job.cancel,
                            folder: None,
                        })?);
                        Ok(false)
                    }
                    Some(scratch)
                        if scratch.steps_done() < job.request.step && !scratch.is_done() =>
                    {
                        scratch.step(session.backend())?;
                        Ok(false)
                    }
                    Some(_) => Ok(true),
                }
            }))
        };
        session.charge(index, started.elapsed().as_secs_f64());
        let job = self.job.as_mut().expect("checked above");
        match outcome {
            Ok(Ok(false)) => Vec::new(),
            Ok(Ok(true)) => {
                let job = self.job.take().expect("checked above");
                let request = job.request;
                let key = (request.method, request.run_id, request.step);
                let scratch = job.scratch.expect("built");
                self.keep(key, download(scratch.as_ref(), session));
                vec![self.maps(request)]
            }
            Ok(Err(error)) if not_ready(&error).is_some() => Vec::new(),
            Ok(Err(error)) if is_cancelled_error(&error) => {
                // Paused or the run changed: the worker drops the job if the run is gone.
                job.cancel.reset();
                Vec::new()
            }
            Ok(Err(error)) => {
                let job = self.job.take().expect("checked above");
                vec![
                    Message::Notice(format!(
                        "Could not recompute the features of {} at step {}: {error:#}",
                        job.request.method, job.request.step
                    )),
                    empty(job.request),
                ]
            }
            Err(panic) => {
                let job = self.job.take().expect("checked above");
                vec![
                    Message::Notice(format!(
                        "Recomputing the features of {} failed: {}",
                        job.request.method,
                        crate::panic_message(panic.as_ref())
                    )),
                    empty(job.request),
                ]
            }
        }
    }

    fn keep(
        &mut self,
        key: (&'static str, u64, usize),
        read: Option<(usize, usize, Vec<f32>, Vec<String>)>,
    ) {
        self.downloaded = read.map(|(rows, cols, data, labels)| Downloaded {
            key,
            rows,
            cols,
            data,
            labels,
        });
    }

    fn maps(&self, request: FeatureRequest) -> Message {
        let key = (request.method, request.run_id, request.step);
        let Some(kept) = self.downloaded.as_ref().filter(|d| d.key == key) else {
            return empty(request);
        };
        let side = (kept.rows as f64).sqrt().round() as usize;
        let end = (request.first_channel + request.count).min(kept.cols);
        let maps = (request.first_channel.min(end)..end)
            .map(|channel| {
                let image = diverging_map(&kept.data, kept.cols, channel, side);
                (kept.labels[channel].clone(), Arc::new(image))
            })
            .collect();
        Message::Features(FeatureMaps {
            request,
            total_channels: kept.cols,
            maps,
        })
    }
}

/// "This method has no features at that step."
fn empty(request: FeatureRequest) -> Message {
    Message::Features(FeatureMaps {
        request,
        total_channels: 0,
        maps: Vec::new(),
    })
}
