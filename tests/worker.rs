//! The window's compute worker, driven through its handle as the window drives it: parameter
//! changes restart only their method, long steps give way to commands, a failure stays one
//! method's, a build waiting for a background eigen-solve does not hold the others up, and a
//! dead compute thread says so. Every wait is on an event with a deadline.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use inrlab::app::protocol::{Command, Desired, Frame, ImageSource, Message, StopReason};
use inrlab::app::worker::{SendError, WorkerHandle, spawn};
use inrlab::compute::BackendChoice;
use inrlab::methods::ParamValues;

/// The heavy tests run one at a time, so their timings are not each other's load.
static HEAVY: Mutex<()> = Mutex::new(());

fn desired(selected: &[&'static str], working_size: usize) -> Desired {
    let mut desired = Desired::empty(working_size);
    desired.selected = selected.to_vec();
    desired
}

fn with_params(mut desired: Desired, method: &'static str, values: &[(&str, f64)]) -> Desired {
    let mut params = ParamValues::new();
    for (name, value) in values {
        params.set(name, *value);
    }
    desired.params.insert(method, params);
    desired
}

fn start(desired: Desired) -> WorkerHandle {
    let handle = spawn(BackendChoice::Cpu, desired, egui::Context::default());
    handle
        .send(Command::LoadImage(ImageSource::Sample))
        .unwrap();
    handle.send(Command::Play).unwrap();
    handle
}

/// Everything that arrives until `done` says so, or the deadline passes (then it panics).
struct Watch<'a> {
    handle: &'a WorkerHandle,
    messages: Vec<Message>,
    frames: Vec<Frame>,
}

impl<'a> Watch<'a> {
    fn new(handle: &'a WorkerHandle) -> Self {
        Watch {
            handle,
            messages: Vec::new(),
            frames: Vec::new(),
        }
    }

    fn until(&mut self, what: &str, seconds: u64, done: impl Fn(&Self) -> bool) -> Duration {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            if let Some(message) = self.handle.message_timeout(Duration::from_millis(5)) {
                self.messages.push(message);
            }
            self.frames.extend(self.handle.take_frames());
        }
        started.elapsed()
    }

    fn frames_of(&self, method: &str) -> Vec<&Frame> {
        self.frames.iter().filter(|f| f.method == method).collect()
    }

    fn started(&self, method: &str) -> Vec<u64> {
        self.messages
            .iter()
            .filter_map(|m| match m {
                Message::Started { method: m, run_id } if *m == method => Some(*run_id),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_parameter_change_restarts_only_that_method() {
    let mut wanted = desired(&["trajectory", "fourier-ridge"], 16);
    wanted.step_limit = Some(1);
    let handle = start(wanted.clone());
    let mut watch = Watch::new(&handle);
    watch.until("both methods' first step", 60, |w| {
        !w.frames_of("trajectory").is_empty() && !w.frames_of("fourier-ridge").is_empty()
    });
    let first_run = watch.frames_of("trajectory")[0].run_id;
    let ridge_starts = watch.started("fourier-ridge").len();
    handle.set_desired(with_params(
        wanted,
        "trajectory",
        &[("spectral-radius", 0.5)],
    ));
    watch.until("trajectory's new run", 60, |w| {
        w.frames_of("trajectory")
            .iter()
            .any(|f| f.run_id > first_run)
    });
    // The worker announces every restart before stepping the restarted run, so by now a
    // restart of fourier-ridge would have been announced.
    assert_eq!(watch.started("fourier-ridge").len(), ridge_starts);
    assert_eq!(watch.frames_of("fourier-ridge").len(), 1);
}

#[test]
fn bad_bytes_become_a_notice() {
    let handle = spawn(
        BackendChoice::Cpu,
        desired(&[], 16),
        egui::Context::default(),
    );
    handle
        .send(Command::LoadImage(ImageSource::Bytes {
            name: "junk.png".into(),
            bytes: b"junk".as_slice().into(),
        }))
        .unwrap();
    let mut watch = Watch::new(&handle);
    watch.until("a notice", 30, |w| {
        w.messages
            .iter()
            .any(|m| matches!(m, Message::Notice(text) if text.contains("junk.png")))
    });
}

/// A trajectory step of several seconds on two cores (a 1000-unit reservoir at 256²).
fn long_step() -> Desired {
    with_params(
        desired(&["trajectory", "fourier-ridge"], 256),
        "trajectory",
        &[("hidden", 1000.0), ("steps", 3.0)],
    )
}

#[test]
fn a_long_step_gives_way_to_a_pause_and_is_taken_again_on_play() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let handle = start(long_step());
    let mut watch = Watch::new(&handle);
    // Wait until trajectory's second step (a reservoir step and a Gram product, no build)
    // has been running for a while.
    watch.until("trajectory's first step", 120, |w| {
        !w.frames_of("trajectory").is_empty()
    });
    watch.until("trajectory's second step in flight", 60, |_| {
        handle.in_flight().is_some_and(|f| {
            f.method == "trajectory"
                && f.step == 2
                && f.started.elapsed() > Duration::from_millis(300)
        })
    });
    handle.send(Command::Pause).unwrap();
    let gave_way = watch.until("the pause to take effect", 30, |w| {
        w.messages
            .iter()
            .any(|m| matches!(m, Message::Playing(false)))
    });
    // Without cancellation the pause would wait for the rest of a multi-second step.
    assert!(
        gave_way < Duration::from_millis(1500),
        "pause took {gave_way:?}"
    );
    assert!(handle.in_flight().is_none());
    assert_eq!(
        watch.frames_of("trajectory").len(),
        1,
        "the step was not finished"
    );
    handle.send(Command::Play).unwrap();
    watch.until("the second step after play", 120, |w| {
        w.frames_of("trajectory").len() >= 2
    });
    let steps: Vec<usize> = watch
        .frames_of("trajectory")
        .iter()
        .map(|f| f.report.step)
        .collect();
    assert_eq!(steps, vec![1, 2], "the cancelled step is taken again, once");
}

#[test]
fn changing_a_long_running_methods_parameter_restarts_it_at_once() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let wanted = long_step();
    let handle = start(wanted.clone());
    let mut watch = Watch::new(&handle);
    watch.until("trajectory's step in flight", 120, |_| {
        handle.in_flight().is_some_and(|f| {
            f.method == "trajectory" && f.started.elapsed() > Duration::from_millis(300)
        })
    });
    let first_run = handle.in_flight().map(|f| f.run_id).unwrap_or_default();
    handle.set_desired(with_params(
        wanted,
        "trajectory",
        &[("hidden", 8.0), ("steps", 3.0)],
    ));
    let restarted = watch.until("the restart", 30, |w| {
        w.started("trajectory").iter().any(|&run| run > first_run)
    });
    assert!(
        restarted < Duration::from_millis(1500),
        "restart took {restarted:?}"
    );
    watch.until("the new run's first frame", 60, |w| {
        w.frames_of("trajectory")
            .iter()
            .any(|f| f.run_id > first_run)
    });
}

#[test]
fn a_failing_method_fails_alone() {
    // Out of its range, as a corrupted settings file might have it: the build refuses it.
    let wanted = with_params(
        desired(&["trajectory", "fourier-ridge"], 16),
        "trajectory",
        &[("hidden", 1e9)],
    );
    let handle = start(wanted);
    let mut watch = Watch::new(&handle);
    watch.until("trajectory's failure and fourier-ridge's frame", 60, |w| {
        let failed = w.messages.iter().any(|m| {
            matches!(m, Message::Stopped { method: "trajectory", reason: StopReason::Failed(why), .. } if why.contains("hidden"))
        });
        failed && !w.frames_of("fourier-ridge").is_empty()
    });
}

#[test]
fn a_build_waiting_for_its_eigenvalues_does_not_hold_up_the_others() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    // 1100 units: the eigen-solve (about a second) runs in the background.
    let wanted = with_params(
        desired(&["trajectory", "fourier-ridge"], 32),
        "trajectory",
        &[("hidden", 1100.0), ("steps", 2.0)],
    );
    let handle = start(wanted);
    let mut watch = Watch::new(&handle);
    watch.until("trajectory's first frame", 120, |w| {
        !w.frames_of("trajectory").is_empty()
    });
    let waited = watch.messages.iter().any(|m| {
        matches!(m, Message::Waiting { method: "trajectory", what, .. } if what.contains("1100×1100"))
    });
    assert!(waited, "the build said what it waits for");
    let order: Vec<&str> = watch.frames.iter().map(|f| f.method).collect();
    assert_eq!(order.first(), Some(&"fourier-ridge"), "{order:?}");
}

#[cfg(feature = "testing")]
#[test]
fn a_dead_compute_thread_says_so_and_is_never_busy() {
    let handle = start(desired(&["fourier-ridge"], 16));
    handle.send(Command::CrashForTest).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.stopped().is_none() {
        assert!(Instant::now() < deadline, "the crash was not reported");
        std::thread::sleep(Duration::from_millis(5));
    }
    let reason = handle.stopped().unwrap();
    assert!(reason.contains("crash requested by a test"), "{reason}");
    assert!(matches!(
        handle.send(Command::Play),
        Err(SendError::Stopped(why)) if why == reason
    ));
}

#[test]
fn methods_share_time_not_steps() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    // learned-refine's steps are about ten times fourier-mlp's: round-robin would give them
    // equal steps, the scheduler gives them equal seconds.
    let wanted = desired(&["fourier-mlp", "learned-refine"], 64);
    let handle = start(wanted);
    let mut watch = Watch::new(&handle);
    watch.until("a few seconds of both", 120, |w| {
        w.frames_of("learned-refine").len() >= 8
    });
    let seconds: BTreeMap<&str, f64> = ["fourier-mlp", "learned-refine"]
        .into_iter()
        .map(|m| (m, watch.frames_of(m).iter().map(|f| f.step_secs).sum()))
        .collect();
    let ratio = seconds["fourier-mlp"] / seconds["learned-refine"];
    assert!(
        (0.6..1.6).contains(&ratio),
        "compute seconds {seconds:?} (ratio {ratio:.2})"
    );
    assert!(
        watch.frames_of("fourier-mlp").len() > 2 * watch.frames_of("learned-refine").len(),
        "the faster method takes more steps"
    );
}

#[cfg(feature = "testing")]
#[test]
fn a_lost_gpu_hands_every_method_to_the_cpu() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let Some(_) = inrlab::compute::gpu::test_backend() else {
        return; // skipped loudly by test_backend (fails under INRLAB_REQUIRE_GPU=1)
    };
    let mut wanted = desired(&["trajectory", "fourier-ridge"], 16);
    wanted.step_limit = Some(2);
    let handle = spawn(BackendChoice::Gpu, wanted, egui::Context::default());
    handle
        .send(Command::LoadImage(ImageSource::Sample))
        .unwrap();
    handle.send(Command::Play).unwrap();
    let mut watch = Watch::new(&handle);
    watch.until("the first steps on the GPU", 120, |w| {
        !w.frames_of("fourier-ridge").is_empty()
    });
    let gpu_run = watch.frames_of("fourier-ridge")[0].run_id;
    handle.send(Command::LoseDeviceForTest).unwrap();
    watch.until("the fallback", 120, |w| {
        let warned = w
            .messages
            .iter()
            .any(|m| matches!(m, Message::Warning(text) if text.contains("GPU device was lost")));
        let on_cpu = w.messages.iter().any(|m| {
            matches!(
                m,
                Message::Backend {
                    kind: inrlab::compute::BackendKind::Cpu,
                    ..
                }
            )
        });
        let rerun = w
            .frames_of("fourier-ridge")
            .iter()
            .any(|f| f.run_id > gpu_run);
        warned && on_cpu && rerun
    });
    assert!(handle.stopped().is_none(), "the compute thread survives");
}

/// On a device shared with the window, a trained method's steps between kept ones are shown
/// from the device and nothing is downloaded; once the window wants images on the host (the
/// Inspect view, an export), a run stopped at the step limit sends the image of its last step,
/// and it is the picture the window was showing.
#[cfg(feature = "testing")]
#[test]
fn an_idle_run_shown_from_the_device_sends_its_image_when_the_host_wants_it() {
    use inrlab::compute::gpu::{self, GpuBackend};
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let Some(shared) = gpu::test_shared_device() else {
        return; // skipped loudly by test_backend (fails under INRLAB_REQUIRE_GPU=1)
    };
    // Reads the window's texture back, as the window's renderer would sample it.
    let reader =
        GpuBackend::from_device(&shared.adapter, shared.device.clone(), shared.queue.clone())
            .unwrap();
    // Steps 21–29 lie between kept steps (…, 10, 20, 50, …), and 30 is the last.
    let mut wanted = with_params(
        desired(&["fourier-mlp"], 32),
        "fourier-mlp",
        &[("width-1", 16.0), ("width-2", 16.0)],
    );
    wanted.step_limit = Some(30);
    let handle = spawn(
        inrlab::compute::BackendSource::Shared(shared),
        wanted.clone(),
        egui::Context::default(),
    );
    handle
        .send(Command::LoadImage(ImageSource::Sample))
        .unwrap();
    handle.send(Command::Play).unwrap();
    let mut watch = Watch::new(&handle);
    watch.until("step 30", 300, |w| {
        w.frames_of("fourier-mlp")
            .iter()
            .any(|f| f.report.step == 30)
    });
    let frames = watch.frames_of("fourier-mlp");
    let last = frames.iter().find(|f| f.report.step == 30).unwrap();
    let kept = frames.iter().find(|f| f.report.step == 20).unwrap();
    assert!(kept.image.is_some(), "a kept step is downloaded");
    assert!(
        last.image.is_none() && last.live.is_some(),
        "step 30 is shown from the device, not downloaded"
    );
    let on_screen = reader.read_display_texture(last.live.as_ref().unwrap());
    let run_id = last.run_id;
    assert!(
        handle.take_downloads().is_empty(),
        "nothing is downloaded while no view asks"
    );

    wanted.host_images = true;
    handle.set_desired(wanted);
    let started = Instant::now();
    let downloads = loop {
        let downloads = handle.take_downloads();
        if !downloads.is_empty() {
            break downloads;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for the idle run's image"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let (method, download_run, picture) = &downloads[0];
    assert_eq!(
        (*method, *download_run, picture.step),
        ("fourier-mlp", run_id, 30)
    );
    let downloaded: Vec<u8> = inrlab::imaging::color_image_from_rgb(&picture.pixels, 32)
        .pixels
        .iter()
        .flat_map(|color| color.to_array())
        .collect();
    assert_eq!(
        downloaded, on_screen,
        "the download is the picture on screen"
    );
    // Once sent, it is not sent again.
    std::thread::sleep(Duration::from_millis(200));
    assert!(handle.take_downloads().is_empty());
    assert!(handle.stopped().is_none());
}

/// The newest picture the window has of `method` (from a step's frame or an idle download).
fn newest_picture_step(
    watch: &Watch,
    downloads: &[(&'static str, u64, usize)],
    method: &str,
) -> Option<usize> {
    let from_frames = watch
        .frames_of(method)
        .iter()
        .filter(|f| f.image.is_some() || f.live.is_some())
        .map(|f| f.report.step)
        .max();
    let downloaded = downloads
        .iter()
        .filter(|(name, _, _)| *name == method)
        .map(|&(_, _, step)| step)
        .max();
    from_frames.max(downloaded)
}

/// Steps far faster than the window's frame clock (a tiny MLP on the CPU) are reported without
/// pictures; where the run comes to rest — at its step limit, or paused — the picture on screen
/// is still of the step it rests at.
#[test]
fn a_run_at_rest_shows_the_step_it_rests_at() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let tiny = &[("width-1", 8.0), ("width-2", 8.0), ("frequencies", 4.0)];
    // At a step limit that is not a kept step (…, 20, 50, …).
    let mut wanted = with_params(desired(&["fourier-mlp"], 16), "fourier-mlp", tiny);
    wanted.step_limit = Some(37);
    let handle = start(wanted);
    let mut watch = Watch::new(&handle);
    let mut downloads = Vec::new();
    watch.until("step 37", 120, |w| {
        w.frames_of("fourier-mlp")
            .iter()
            .any(|f| f.report.step == 37)
    });
    let resting = Instant::now();
    watch.until("the frames so far", 5, |_| {
        resting.elapsed() > Duration::from_millis(300)
    });
    downloads.extend(
        handle
            .take_downloads()
            .into_iter()
            .map(|(m, r, p)| (m, r, p.step)),
    );
    let unshown = watch
        .frames_of("fourier-mlp")
        .iter()
        .filter(|f| f.image.is_none() && f.live.is_none())
        .count();
    assert!(unshown > 0, "some steps came faster than the frame clock");
    assert_eq!(
        newest_picture_step(&watch, &downloads, "fourier-mlp"),
        Some(37),
        "the picture at the step limit"
    );

    // Paused in full flight: the picture catches up with the last step reported.
    let handle = start(with_params(
        desired(&["fourier-mlp"], 16),
        "fourier-mlp",
        tiny,
    ));
    let mut watch = Watch::new(&handle);
    watch.until("step 60", 120, |w| {
        w.frames_of("fourier-mlp")
            .iter()
            .any(|f| f.report.step >= 60)
    });
    handle.send(Command::Pause).unwrap();
    let resting = Instant::now();
    watch.until("the frames so far", 5, |_| {
        resting.elapsed() > Duration::from_millis(300)
    });
    let last = watch
        .frames_of("fourier-mlp")
        .iter()
        .map(|f| f.report.step)
        .max()
        .unwrap();
    let mut downloads = Vec::new();
    let started = Instant::now();
    while newest_picture_step(&watch, &downloads, "fourier-mlp") != Some(last) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the paused run's picture stays at step {:?}, its last step is {last}",
            newest_picture_step(&watch, &downloads, "fourier-mlp")
        );
        downloads.extend(
            handle
                .take_downloads()
                .into_iter()
                .map(|(m, r, p)| (m, r, p.step)),
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
