//! Running several methods side by side on one backend: the code the window's worker,
//! `inrlab run` and `inrlab bench` share.
//!
//! A [`Session`] owns the backend, the methods' shared [`MethodCache`] (so trajectory and
//! cumulative share one unrolled reservoir wherever they run together), the target and one
//! [`Slot`] per selected method. [`Session::pick`] asks the time-fair [`Scheduler`] who steps
//! next; [`Session::advance`] builds (when needed) and steps that method under `catch_unwind`,
//! so an error or a panic becomes that method's [`StopReason::Failed`] and never anyone
//! else's. A build that waits for a background eigen-solve leaves its slot waiting while the
//! others go on.

pub mod scheduler;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::checkpoint::Checkpoint;
use crate::compute::cancel::is_cancelled_error;
use crate::compute::{Backend, CancelToken};
use crate::methods::cache::not_ready;
use crate::methods::{Method, MethodCache, MethodInfo, ParamValues, Setup, StepReport};
use crate::rng::RngKind;
use crate::runner::DivergenceMonitor;
use crate::sparse::{BestTracker, Refit, SetScores};
use crate::target::Target;
pub use scheduler::Scheduler;

/// Why a method stopped before its last step.
#[derive(Clone, Debug, PartialEq)]
pub enum StopReason {
    /// Its PSNR or loss stopped being a number, or its loss ran away, at this step.
    Diverged { step: usize, why: String },
    /// Its build or a step returned an error or panicked (one line).
    Failed(String),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Diverged { step, why } => {
                write!(
                    f,
                    "diverged at step {step} ({why}) — lower the learning rate"
                )
            }
            StopReason::Failed(error) => write!(f, "failed: {error}"),
        }
    }
}

pub enum SlotState {
    /// Will be built (from its current parameters) when its turn comes.
    NeedsBuild,
    /// Its build waits for a background computation (the text says which).
    Waiting(String),
    Running(Box<dyn Method>),
    /// All steps done; kept for its images and features.
    Finished(Box<dyn Method>),
    Stopped(StopReason),
}

/// One selected method and its current run.
pub struct Slot {
    pub info: &'static MethodInfo,
    pub params: ParamValues,
    /// Distinct for every (re)start in this session, so stale results can be told apart.
    pub run_id: u64,
    pub state: SlotState,
    /// Set by whoever no longer wants this run's current step; see [`crate::compute::cancel`].
    pub cancel: CancelToken,
    divergence: DivergenceMonitor,
    /// Compute seconds of this run so far (cancelled work included).
    pub compute_secs: f64,
    /// Seen through a mask with validation: the step with the best validation PSNR so far.
    pub best: BestTracker,
    /// Seen through a mask that refits ([`crate::sparse::ObservationSpec::refit`]): the
    /// second fit on every observed pixel, once this run has finished.
    pub refit: Option<RefitState>,
    /// Seen through a mask: the latest step's image, downloaded to score it, kept for whoever
    /// shows it so it is not downloaded twice.
    scored_image: Option<(usize, Vec<f32>)>,
}

/// Where a slot's refit on every observed pixel stands.
pub enum RefitState {
    /// Its run finished; the refit is built on its next turn and fitted to `to_step`.
    Wanted {
        to_step: usize,
    },
    Running {
        method: Box<dyn Method>,
        to_step: usize,
    },
    Done(Refit),
    /// Its build or a step failed (one line); the validated run's results stand.
    Failed(String),
}

impl RefitState {
    fn pending(&self) -> bool {
        matches!(self, RefitState::Wanted { .. } | RefitState::Running { .. })
    }
}

/// One turn of a refit: the step it reached, of how many, and its result once it is done.
#[derive(Clone, Debug)]
pub struct RefitProgress {
    pub step: usize,
    pub of: usize,
    pub outcome: Option<Result<Refit, String>>,
}

impl Slot {
    pub fn method(&self) -> Option<&dyn Method> {
        match &self.state {
            SlotState::Running(m) | SlotState::Finished(m) => Some(m.as_ref()),
            _ => None,
        }
    }

    pub fn steps_done(&self) -> usize {
        self.method().map_or(0, |m| m.steps_done())
    }

    /// Whether it has a step to take (below `step_limit`, if any), its refit's included.
    pub fn is_runnable(&self, step_limit: Option<usize>) -> bool {
        match &self.state {
            SlotState::NeedsBuild => true,
            SlotState::Running(method) => {
                !method.is_done() && step_limit.is_none_or(|l| method.steps_done() < l)
            }
            SlotState::Finished(_) => self.refit_pending(),
            SlotState::Waiting(_) | SlotState::Stopped(_) => false,
        }
    }

    /// Seen through a mask: the image of step `step` if it is the one last scored (downloaded
    /// then), taken out of the slot so nobody downloads it again.
    pub fn take_scored_image(&mut self, step: usize) -> Option<Vec<f32>> {
        match self.scored_image.take() {
            Some((scored, image)) if scored == step => Some(image),
            _ => None,
        }
    }

    fn refit_pending(&self) -> bool {
        self.refit.as_ref().is_some_and(RefitState::pending)
    }

    /// Finished (its refit too, when it has one) or stopped: nothing more will happen.
    pub fn is_settled(&self) -> bool {
        match &self.state {
            SlotState::Finished(_) => !self.refit_pending(),
            SlotState::Stopped(_) => true,
            _ => false,
        }
    }

    /// The refit on every observed pixel once it has finished (or why it failed).
    pub fn refit_outcome(&self) -> Option<Result<Refit, String>> {
        match self.refit.as_ref()? {
            RefitState::Done(refit) => Some(Ok(refit.clone())),
            RefitState::Failed(why) => Some(Err(why.clone())),
            RefitState::Wanted { .. } | RefitState::Running { .. } => None,
        }
    }
}

/// What one [`Session::advance`] did.
pub struct Advance {
    pub index: usize,
    /// The method was built in this turn and will take this many steps.
    pub built: Option<usize>,
    pub result: AdvanceResult,
    /// Wall time of the turn (build included).
    pub secs: f64,
}

pub enum AdvanceResult {
    /// A step finished; the method is in the slot (running or finished) for read-backs.
    Stepped(StepReport),
    /// The build waits for a background computation.
    Waiting(String),
    /// A step of the finished run's refit on every observed pixel.
    Refit(RefitProgress),
    /// The run's token was set: nothing was committed; the same step can be taken again.
    Cancelled,
    Stopped(StopReason),
}

/// A run restarted: its old results are stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restarted {
    pub method: &'static str,
    pub run_id: u64,
}

/// The backend a session computes on: its own (the window's worker) or one it borrows (tests
/// and benches that share a backend across runs).
enum BackendHandle<'b> {
    Owned(Box<dyn Backend>),
    Borrowed(&'b dyn Backend),
}

impl BackendHandle<'_> {
    fn get(&self) -> &dyn Backend {
        match self {
            BackendHandle::Owned(backend) => backend.as_ref(),
            BackendHandle::Borrowed(backend) => *backend,
        }
    }
}

pub struct Session<'b> {
    backend: BackendHandle<'b>,
    cache: MethodCache,
    rng: RngKind,
    target: Option<Target>,
    /// The target seen through its mask with nothing held out, for refits; made when the
    /// first one is wanted.
    refit_target: Option<Target>,
    /// A folder the methods that can train on one train on instead of the target.
    folder: Option<std::path::PathBuf>,
    slots: Vec<Slot>,
    scheduler: Scheduler,
    next_run_id: u64,
}

impl Session<'static> {
    pub fn new(backend: Box<dyn Backend>, cache: MethodCache, rng: RngKind) -> Self {
        Self::with_backend(BackendHandle::Owned(backend), cache, rng)
    }

    /// A new backend (the GPU was lost): a new cache, and every method restarts there.
    pub fn replace_backend(&mut self, backend: Box<dyn Backend>) -> Vec<Restarted> {
        // The methods' tensors belong to the old backend: they go before it does.
        for slot in &mut self.slots {
            slot.cancel.cancel();
            slot.state = SlotState::NeedsBuild;
        }
        self.backend = BackendHandle::Owned(backend);
        self.cache = MethodCache::new(self.cache.background_from_hidden());
        self.restart_all()
    }
}

impl<'b> Session<'b> {
    /// A session on a backend owned elsewhere.
    pub fn borrowing(backend: &'b dyn Backend, cache: MethodCache, rng: RngKind) -> Self {
        Self::with_backend(BackendHandle::Borrowed(backend), cache, rng)
    }

    fn with_backend(backend: BackendHandle<'b>, cache: MethodCache, rng: RngKind) -> Self {
        Session {
            backend,
            cache,
            rng,
            target: None,
            refit_target: None,
            folder: None,
            slots: Vec::new(),
            scheduler: Scheduler::new(),
            next_run_id: 1,
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.get()
    }

    pub fn cache(&self) -> &MethodCache {
        &self.cache
    }

    pub fn rng(&self) -> RngKind {
        self.rng
    }

    pub fn target(&self) -> Option<&Target> {
        self.target.as_ref()
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub fn slot(&self, index: usize) -> &Slot {
        &self.slots[index]
    }

    pub fn position(&self, method: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.info.name == method)
    }

    /// A new target: every method restarts on it.
    pub fn set_target(&mut self, target: Target) -> Vec<Restarted> {
        self.target = Some(target);
        self.refit_target = None;
        self.restart_all()
    }

    pub fn folder(&self) -> Option<&std::path::Path> {
        self.folder.as_deref()
    }

    /// Trains the methods that can train on a folder on this one (`None`: on the target
    /// again); they restart, the others keep going.
    pub fn set_folder(&mut self, folder: Option<std::path::PathBuf>) -> Vec<Restarted> {
        if self.folder == folder {
            return Vec::new();
        }
        self.folder = folder;
        (0..self.slots.len())
            .filter(|&i| self.slots[i].info.trains_on_folder)
            .collect::<Vec<_>>()
            .into_iter()
            .map(|i| self.restart(i))
            .collect()
    }

    /// Converges to the wanted methods (in this order) with these values: new methods start,
    /// methods no longer wanted go, methods whose values changed restart; the others keep
    /// their progress and their share.
    pub fn set_selection(
        &mut self,
        wanted: &[(&'static MethodInfo, ParamValues)],
    ) -> Vec<Restarted> {
        let mut slots = Vec::with_capacity(wanted.len());
        let mut restarted = Vec::new();
        for (info, params) in wanted {
            match self.slots.iter().position(|s| s.info.name == info.name) {
                Some(index) => {
                    let slot = self.slots.swap_remove(index);
                    let changed = slot.params != *params;
                    slots.push(slot);
                    if changed {
                        let last = slots.len() - 1;
                        slots[last].params = params.clone();
                        restarted.push(last);
                    }
                }
                None => {
                    slots.push(Slot {
                        info,
                        params: params.clone(),
                        run_id: 0,
                        state: SlotState::NeedsBuild,
                        cancel: CancelToken::new(),
                        divergence: DivergenceMonitor::default(),
                        compute_secs: 0.0,
                        best: BestTracker::default(),
                        refit: None,
                        scored_image: None,
                    });
                    restarted.push(slots.len() - 1);
                }
            }
        }
        for gone in self.slots.drain(..) {
            gone.cancel.cancel();
            self.scheduler.remove(gone.info.name);
        }
        self.slots = slots;
        restarted
            .into_iter()
            .map(|index| self.restart(index))
            .collect()
    }

    /// Abandons the slot's run; the next one gets a new id and steps before anyone's next.
    pub fn restart(&mut self, index: usize) -> Restarted {
        let run_id = self.next_run_id;
        self.next_run_id += 1;
        let slot = &mut self.slots[index];
        slot.cancel.cancel();
        slot.cancel = CancelToken::new();
        slot.run_id = run_id;
        slot.state = SlotState::NeedsBuild;
        slot.divergence = DivergenceMonitor::default();
        slot.compute_secs = 0.0;
        slot.best = BestTracker::default();
        slot.refit = None;
        slot.scored_image = None;
        self.scheduler.restart(slot.info.name);
        Restarted {
            method: slot.info.name,
            run_id,
        }
    }

    pub fn restart_all(&mut self) -> Vec<Restarted> {
        (0..self.slots.len()).map(|i| self.restart(i)).collect()
    }

    /// Whether some build waits for a background computation.
    pub fn has_waiting(&self) -> bool {
        self.slots
            .iter()
            .any(|s| matches!(s.state, SlotState::Waiting(_)))
    }

    /// Waiting builds are tried again once nothing is computing in the background.
    pub fn refresh_waiting(&mut self) {
        if !self.has_waiting() || self.cache.has_pending() {
            return;
        }
        for slot in &mut self.slots {
            if matches!(slot.state, SlotState::Waiting(_)) {
                slot.state = SlotState::NeedsBuild;
            }
        }
    }

    /// The slot to advance next among the runnable ones that `allowed` admits.
    pub fn pick(
        &mut self,
        step_limit: Option<usize>,
        allowed: impl Fn(&Slot) -> bool,
    ) -> Option<usize> {
        let slots = &self.slots;
        let name = self.scheduler.pick(|name| {
            slots
                .iter()
                .find(|s| s.info.name == name)
                .is_some_and(|s| s.is_runnable(step_limit) && allowed(s))
        })?;
        self.position(name)
    }

    /// Builds the slot's method if needed, then takes one step; charges the time to it.
    pub fn advance(&mut self, index: usize, focused: bool) -> Advance {
        let started = Instant::now();
        let (built, result) = self.build_and_step(index);
        // A GPU step is only queued when its call returns; its time is when it is done.
        self.backend.get().finish();
        let secs = started.elapsed().as_secs_f64();
        let slot = &mut self.slots[index];
        slot.compute_secs += secs;
        self.scheduler.charge(slot.info.name, secs, focused);
        Advance {
            index,
            built,
            result,
            secs,
        }
    }

    /// [`Slot::take_scored_image`] of slot `index`.
    pub fn take_scored_image(&mut self, index: usize, step: usize) -> Option<Vec<f32>> {
        self.slots[index].take_scored_image(step)
    }

    /// Charges work done for the slot's method outside [`Self::advance`] (a scratch copy
    /// stepped to show an old step's features) to its share.
    pub fn charge(&mut self, index: usize, secs: f64) {
        let slot = &mut self.slots[index];
        slot.compute_secs += secs;
        self.scheduler.charge(slot.info.name, secs, false);
    }

    /// Builds `info` with `params` on the session's target (or folder), under `catch_unwind`.
    fn build(
        &self,
        info: &'static MethodInfo,
        params: &ParamValues,
        cancel: &CancelToken,
    ) -> std::thread::Result<anyhow::Result<Box<dyn Method>>> {
        let Some(target) = &self.target else {
            return Ok(Err(anyhow::anyhow!("no image is loaded yet")));
        };
        self.build_on(target, info, params, cancel)
    }

    fn build_on(
        &self,
        target: &Target,
        info: &'static MethodInfo,
        params: &ParamValues,
        cancel: &CancelToken,
    ) -> std::thread::Result<anyhow::Result<Box<dyn Method>>> {
        let setup = Setup {
            target,
            backend: self.backend.get(),
            rng: self.rng,
            params,
            cache: &self.cache,
            cancel,
            folder: self.folder.as_deref().filter(|_| info.trains_on_folder),
        };
        catch_unwind(AssertUnwindSafe(|| info.build(&setup)))
    }

    /// Replaces the slot's run by the checkpoint's: a fresh build with `params` (the
    /// checkpoint's, with any changes that keep the shapes), the checkpoint's state restored
    /// into it, its history counted as this run's (compute time, divergence watch). The slot
    /// is left as it was when the build or the restore fails.
    pub fn resume(
        &mut self,
        index: usize,
        params: ParamValues,
        checkpoint: &Checkpoint,
    ) -> anyhow::Result<Restarted> {
        let info = self.slots[index].info;
        let cancel = CancelToken::new();
        let method = loop {
            match self.build(info, &params, &cancel) {
                Ok(Err(error)) if not_ready(&error).is_some() && self.cache.has_pending() => {
                    // A folder still being decoded, a large eigen-solve: wait for it here.
                    self.cache.wait_for_pending(Duration::from_secs(1));
                }
                Ok(built) => break built,
                Err(panic) => anyhow::bail!("{}", one_line(&crate::panic_message(panic.as_ref()))),
            }
        };
        let mut method = method?;
        checkpoint.restore(method.as_mut(), self.backend.get())?;
        let restarted = self.restart(index);
        let slot = &mut self.slots[index];
        slot.params = params;
        slot.cancel = cancel;
        slot.compute_secs = checkpoint.history.last().map_or(0.0, |h| h.seconds);
        for step in &checkpoint.history {
            slot.divergence.observe(&step.report);
        }
        slot.state = if method.is_done() {
            SlotState::Finished(method)
        } else {
            SlotState::Running(method)
        };
        Ok(restarted)
    }

    fn build_and_step(&mut self, index: usize) -> (Option<usize>, AdvanceResult) {
        if matches!(self.slots[index].state, SlotState::Finished(_))
            && self.slots[index].refit_pending()
        {
            return (None, self.refit_turn(index));
        }
        let mut built = None;
        if matches!(self.slots[index].state, SlotState::NeedsBuild) {
            if self.target.is_none() {
                return (None, AdvanceResult::Waiting("an image".into()));
            }
            let slot = &self.slots[index];
            let info = slot.info;
            let outcome = self.build(info, &slot.params, &slot.cancel);
            let slot = &mut self.slots[index];
            match sort_outcome(info.name, outcome, true) {
                Ok(method) => {
                    built = Some(method.total_steps());
                    slot.state = SlotState::Running(method);
                }
                Err(Setback::Waiting(what)) => {
                    slot.state = SlotState::Waiting(what.clone());
                    return (None, AdvanceResult::Waiting(what));
                }
                Err(Setback::Cancelled) => return (None, AdvanceResult::Cancelled),
                Err(Setback::Failed(why)) => {
                    return (None, self.stop(index, StopReason::Failed(why)));
                }
            }
        }
        let backend = self.backend.get();
        let slot = &mut self.slots[index];
        let SlotState::Running(method) = &mut slot.state else {
            return (built, AdvanceResult::Cancelled);
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| method.step(backend)));
        let mut report = match sort_outcome(slot.info.name, outcome, false) {
            Ok(report) => report,
            Err(Setback::Cancelled | Setback::Waiting(_)) => {
                return (built, AdvanceResult::Cancelled);
            }
            Err(Setback::Failed(why)) => {
                return (built, self.stop(index, StopReason::Failed(why)));
            }
        };
        if let Some(why) = slot.divergence.observe(&report) {
            let step = report.step;
            return (built, self.stop(index, StopReason::Diverged { step, why }));
        }
        let mut stop_early = false;
        if let Some(target) = &self.target
            && let Some(observation) = &target.observation
        {
            // The truth stays here: methods never see the pixels they may not fit on.
            let image = method.image(backend);
            let scores = observation.score(&image, &target.pixels);
            report.sparse = Some(scores);
            slot.best.observe(report.step, scores, &image);
            slot.scored_image = Some((report.step, image));
            stop_early = slot.best.exhausted(observation.spec.patience);
        }
        if method.is_done() || stop_early {
            let SlotState::Running(method) =
                std::mem::replace(&mut slot.state, SlotState::NeedsBuild)
            else {
                unreachable!("matched above")
            };
            slot.state = SlotState::Finished(method);
            let refits = (self.target.as_ref())
                .and_then(|t| t.observation.as_ref())
                .is_some_and(|o| o.spec.refits());
            if let (true, Some(best)) = (refits, &slot.best.best) {
                slot.refit = Some(RefitState::Wanted { to_step: best.step });
            }
        }
        (built, AdvanceResult::Stepped(report))
    }

    /// One turn of a finished run's refit: built on the target with nothing held out (in the
    /// first turn), then one step; scored once it reaches the best-validation step. A failure
    /// is the refit's alone: the validated run's results stay.
    fn refit_turn(&mut self, index: usize) -> AdvanceResult {
        let Some(target) = &self.target else {
            return AdvanceResult::Waiting("an image".into());
        };
        if self.refit_target.is_none() {
            let Some(observation) = &target.observation else {
                return AdvanceResult::Waiting("a mask".into());
            };
            let mut refit_target = target.clone();
            refit_target.observation = Some(std::sync::Arc::new(observation.without_validation()));
            self.refit_target = Some(refit_target);
        }
        let refit_target = self.refit_target.as_ref().expect("made above");
        let slot = &self.slots[index];
        let (info, params, cancel) = (slot.info, slot.params.clone(), slot.cancel.clone());
        let failed = |slot: &mut Slot, to_step: usize, why: String| {
            slot.refit = Some(RefitState::Failed(why.clone()));
            AdvanceResult::Refit(RefitProgress {
                step: 0,
                of: to_step,
                outcome: Some(Err(why)),
            })
        };
        let (mut method, to_step) = match self.slots[index].refit.take() {
            Some(RefitState::Wanted { to_step }) => {
                let built = self.build_on(refit_target, info, &params, &cancel);
                let slot = &mut self.slots[index];
                match sort_outcome(info.name, built, true) {
                    Ok(method) => (method, to_step),
                    Err(Setback::Waiting(what)) => {
                        slot.refit = Some(RefitState::Wanted { to_step });
                        return AdvanceResult::Waiting(what);
                    }
                    Err(Setback::Cancelled) => {
                        slot.refit = Some(RefitState::Wanted { to_step });
                        return AdvanceResult::Cancelled;
                    }
                    Err(Setback::Failed(why)) => return failed(slot, to_step, why),
                }
            }
            Some(RefitState::Running { method, to_step }) => (method, to_step),
            other => {
                self.slots[index].refit = other;
                return AdvanceResult::Cancelled;
            }
        };
        let backend = self.backend.get();
        let outcome = catch_unwind(AssertUnwindSafe(|| method.step(backend)));
        let slot = &mut self.slots[index];
        let report = match sort_outcome(info.name, outcome, false) {
            Ok(report) => report,
            Err(Setback::Cancelled | Setback::Waiting(_)) => {
                slot.refit = Some(RefitState::Running { method, to_step });
                return AdvanceResult::Cancelled;
            }
            Err(Setback::Failed(why)) => return failed(slot, to_step, why),
        };
        if !report.psnr_db.is_finite() {
            let why = format!("its PSNR is not a number at step {}", report.step);
            return failed(slot, to_step, why);
        }
        // A report's step is the method's own count (cumulative's k), as the best step is.
        let step = report.step;
        if step < to_step && !method.is_done() {
            slot.refit = Some(RefitState::Running { method, to_step });
            return AdvanceResult::Refit(RefitProgress {
                step,
                of: to_step,
                outcome: None,
            });
        }
        let image = method.image(backend);
        let observation = refit_target.observation.as_ref().expect("made with one");
        let scores: SetScores = observation.score(&image, &refit_target.pixels);
        let refit = Refit {
            step,
            scores,
            image,
        };
        slot.refit = Some(RefitState::Done(refit.clone()));
        AdvanceResult::Refit(RefitProgress {
            step,
            of: to_step,
            outcome: Some(Ok(refit)),
        })
    }

    fn stop(&mut self, index: usize, reason: StopReason) -> AdvanceResult {
        self.slots[index].state = SlotState::Stopped(reason.clone());
        AdvanceResult::Stopped(reason)
    }

    /// Advances every method until each has finished or stopped (the command line's loop),
    /// calling `on_advance` after every turn. Builds waiting for the background wait here.
    pub fn run_until_settled(&mut self, mut on_advance: impl FnMut(&Session<'b>, &Advance)) {
        loop {
            self.refresh_waiting();
            match self.pick(None, |_| true) {
                Some(index) => {
                    let advance = self.advance(index, false);
                    on_advance(self, &advance);
                }
                None if self.has_waiting() => {
                    self.cache.wait_for_pending(Duration::from_secs(1));
                }
                None => return,
            }
        }
    }
}

fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).trim().to_owned()
}

/// The error's first line, without the method's name in front (the reason is shown beside it).
fn failure(method: &str, error: &anyhow::Error) -> String {
    let text = one_line(&format!("{error:#}"));
    text.strip_prefix(method)
        .and_then(|rest| rest.strip_prefix(": "))
        .map_or(text.clone(), str::to_owned)
}

/// What kept a build or a step from giving its value.
enum Setback {
    /// The build waits for a background computation (what).
    Waiting(String),
    /// The run's token was set: nothing was committed.
    Cancelled,
    /// An error or a panic, in one line without the method's name.
    Failed(String),
}

/// Sorts the outcome of a build or a step taken under `catch_unwind`. Only a build waits for
/// the background (`waits`); any other error is the method's failure.
fn sort_outcome<T>(
    method: &str,
    outcome: std::thread::Result<anyhow::Result<T>>,
    waits: bool,
) -> Result<T, Setback> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(match not_ready(&error) {
            Some(waiting) if waits => Setback::Waiting(waiting.what.clone()),
            _ if is_cancelled_error(&error) => Setback::Cancelled,
            _ => Setback::Failed(failure(method, &error)),
        }),
        Err(panic) => Err(Setback::Failed(one_line(&crate::panic_message(
            panic.as_ref(),
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::cpu::CpuBackend;
    use crate::methods;
    use crate::target::Fit;

    fn session(size: usize) -> Session<'static> {
        let mut session = Session::new(
            Box::new(CpuBackend::new()),
            MethodCache::blocking(),
            RngKind::Numpy,
        );
        session.set_target(Target::sample(size, Fit::Stretch).unwrap());
        session
    }

    fn wanted(names: &[&str]) -> Vec<(&'static MethodInfo, ParamValues)> {
        names
            .iter()
            .map(|n| (methods::find(n).unwrap(), ParamValues::new()))
            .collect()
    }

    #[test]
    fn a_changed_parameter_restarts_only_its_method() {
        let mut session = session(16);
        let first = session.set_selection(&wanted(&["trajectory", "fourier-ridge"]));
        assert_eq!(first.len(), 2);
        session.run_until_settled(|_, _| {});
        let mut changed = wanted(&["trajectory", "fourier-ridge"]);
        changed[0].1.set("spectral-radius", 0.5);
        let restarted = session.set_selection(&changed);
        assert_eq!(restarted.len(), 1);
        assert_eq!(restarted[0].method, "trajectory");
        assert!(matches!(session.slot(1).state, SlotState::Finished(_)));
        // The restarted method steps first.
        assert_eq!(session.pick(None, |_| true), Some(0));
    }

    #[test]
    fn a_failing_build_is_that_methods_failure_only() {
        let mut session = session(16);
        let mut selection = wanted(&["trajectory", "fourier-ridge"]);
        // Out of range: the build refuses it with a message.
        selection[0].1.set("hidden", 1e9);
        session.set_selection(&selection);
        let mut stopped = Vec::new();
        let mut stepped = Vec::new();
        session.run_until_settled(|session, advance| {
            let name = session.slot(advance.index).info.name;
            match &advance.result {
                AdvanceResult::Stopped(reason) => stopped.push((name, reason.to_string())),
                AdvanceResult::Stepped(_) => stepped.push(name),
                _ => {}
            }
        });
        assert_eq!(stopped.len(), 1, "{stopped:?}");
        assert_eq!(stopped[0].0, "trajectory");
        assert!(stopped[0].1.starts_with("failed: "), "{}", stopped[0].1);
        assert!(stepped.contains(&"fourier-ridge"));
    }

    #[test]
    fn a_cancelled_step_commits_nothing_and_can_be_taken_again() {
        let mut session = session(16);
        session.set_selection(&wanted(&["trajectory"]));
        let first = session.advance(0, false);
        assert!(matches!(first.result, AdvanceResult::Stepped(_)));
        session.slot(0).cancel.cancel();
        let cancelled = session.advance(0, false);
        assert!(matches!(cancelled.result, AdvanceResult::Cancelled));
        assert_eq!(session.slot(0).steps_done(), 1);
        session.slot(0).cancel.reset();
        let AdvanceResult::Stepped(report) = session.advance(0, false).result else {
            panic!("the step goes through once the token is clear");
        };
        assert_eq!(report.step, 2);
    }
}
