//! Runs the real binary's `--screenshot` under the X server named by DISPLAY (Xvfb in CI):
//! the window opens, computes, saves a PNG of itself atomically and exits; the picture must
//! not be blank. On the GPU backend it must also say that the picture it showed came from the
//! device without a download. Without DISPLAY the tests say loudly that they skipped, or fail
//! when INRLAB_REQUIRE_DISPLAY=1.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(300);

/// Whether an X server is there; without one the test says loudly that it skipped, or fails
/// when INRLAB_REQUIRE_DISPLAY=1.
fn display_is_there(test: &str) -> bool {
    if std::env::var_os("DISPLAY").is_some() {
        return true;
    }
    if std::env::var("INRLAB_REQUIRE_DISPLAY").as_deref() == Ok("1") {
        panic!("DISPLAY is not set but INRLAB_REQUIRE_DISPLAY=1: start Xvfb and set DISPLAY");
    }
    // Written to the real stderr, past libtest's capture, so the skip is seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n********\n* SKIPPED {test}: DISPLAY is not set. Run `Xvfb :99 -screen 0 \
         1600x1000x24 &` and DISPLAY=:99 to test it.\n********\n"
    );
    false
}

/// An empty folder of its own for one test's files.
fn fresh_folder(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inrlab-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The inrlab binary as a command, through cargo's target runner when one is set (as
/// scripts/cooperative_lavapipe.sh sets one, so the window meets the same Vulkan driver as the
/// tests do).
fn inrlab_command() -> Command {
    let binary = env!("CARGO_BIN_EXE_inrlab");
    match std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER") {
        Some(runner) if cfg!(all(target_arch = "x86_64", target_os = "linux")) => {
            let mut command = Command::new(runner);
            command.arg(binary);
            command
        }
        _ => Command::new(binary),
    }
}

/// Runs `inrlab --screenshot path` with `args` to its end; its standard output.
fn take_screenshot(path: &std::path::Path, args: &[&str], view: Option<&str>) -> String {
    let mut command = inrlab_command();
    if let Some(view) = view {
        command.env("INRLAB_VIEW", view);
    }
    let mut child = command
        .arg("--screenshot")
        .arg(path)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting inrlab");
    // Read on a thread, so a full pipe cannot stall the window.
    let mut stdout = child.stdout.take().expect("piped above");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!(
                "inrlab --screenshot did not finish in {} s",
                TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = reader.join().expect("the reader thread");
    assert!(
        status.success(),
        "inrlab --screenshot failed: {status}\n{stdout}"
    );
    stdout
}

/// Fails unless the picture at `path` is a window-sized screenshot with content.
fn assert_not_blank(path: &std::path::Path) {
    let picture = image::open(path)
        .expect("the screenshot is a PNG")
        .to_rgb8();
    let (width, height) = picture.dimensions();
    assert!(
        width >= 600 && height >= 400,
        "{width}×{height} is too small for the window"
    );
    // Blank (one colour, or nothing drawn) has almost no variance; the window has images.
    let luma: Vec<f64> = picture
        .pixels()
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect();
    let mean = luma.iter().sum::<f64>() / luma.len() as f64;
    let variance = luma.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / luma.len() as f64;
    assert!(
        variance > 100.0,
        "the screenshot looks blank (luma variance {variance:.1})"
    );
}

#[test]
fn screenshot_of_the_window_is_not_blank() {
    if !display_is_there("screenshot_of_the_window_is_not_blank") {
        return;
    }
    let dir = fresh_folder("screenshot-test");
    let path: PathBuf = dir.join("window.png");
    take_screenshot(&path, &["--after", "2", "--backend", "cpu"], None);
    assert_not_blank(&path);
    // Written atomically: nothing but the picture is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name != "window.png")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    // It says how it was made.
    let record = inrlab::provenance::Provenance::read(&path).expect("the picture has its record");
    assert!(record.image.is_sample() && !record.methods.is_empty());
    // Taken again, it refuses to replace the picture (before a window opens) unless told to.
    let again = inrlab_command()
        .arg("--screenshot")
        .arg(&path)
        .args(["--after", "2", "--backend", "cpu"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `inrlab --screenshot` of a 64-wide Fourier MLP on the GPU backend after 30 steps, with
/// `extra` arguments: its folder (the picture is window.png there) and standard output, after
/// checking that the picture is not blank and that the method's picture on screen was the
/// device's texture (steps 21–49 are between kept steps, …, 20, 50, …, so it must be). `None`
/// where the test is skipped (no display, or no adapter outside CI).
fn mlp_screenshot_on_the_gpu(
    test: &str,
    extra: &[&str],
    view: Option<&str>,
) -> Option<(PathBuf, String)> {
    if !display_is_there(test) {
        return None;
    }
    // Skips loudly without an adapter, or fails where INRLAB_REQUIRE_GPU=1 (CI).
    inrlab::compute::gpu::test_backend()?;
    let dir = fresh_folder(test);
    let path = dir.join("window.png");
    let mut args = vec![
        "--after",
        "30",
        "--backend",
        "gpu",
        "--methods",
        "fourier-mlp",
        "--width-1",
        "64",
        "--width-2",
        "64",
    ];
    args.extend_from_slice(extra);
    let stdout = take_screenshot(&path, &args, view);
    assert_not_blank(&path);
    let line = stdout
        .lines()
        .find(|line| {
            line.trim_start()
                .starts_with("fourier-mlp: newest picture step 30")
        })
        .unwrap_or_else(|| panic!("no line on what the picture was:\n{stdout}"));
    assert!(
        line.ends_with("from the device's texture (not downloaded)"),
        "{line}"
    );
    Some((dir, stdout))
}

/// With the GPU backend the window's compute runs on the window's own device, and a trained
/// method's picture between kept steps is the texture written there, never downloaded.
#[test]
fn on_the_gpu_backend_the_window_shows_frames_from_the_device() {
    // The view that shows every method's newest picture.
    let Some((dir, _)) = mlp_screenshot_on_the_gpu("shared-device-test", &[], Some("compare"))
    else {
        return;
    };
    let record = inrlab::provenance::Provenance::read(&dir.join("window.png"))
        .expect("the picture has its record");
    assert_eq!(record.backend, "gpu");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every resize configures the window's surface, and wgpu's configure fails if another thread
/// submits to the device while it waits for the device to go idle: on a device shared with the
/// compute, resizing the window crashed inrlab. Resized every frame while the GPU trains, the
/// window still gets to its screenshot, its picture still straight from the device.
#[test]
fn the_window_resizes_while_the_gpu_computes_on_its_device() {
    let Some((dir, stdout)) =
        mlp_screenshot_on_the_gpu("resize-test", &["--resize-every-frame"], None)
    else {
        return;
    };
    let resized: u64 = stdout
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("resized "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no line on the resizes:\n{stdout}"));
    assert!(resized >= 4, "resized only {resized} times:\n{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A GPU device lost under the window (a driver reset; here the device the window shares with
/// the compute is destroyed after the first steps) takes eframe's renderer with it: inrlab
/// starts again in the same process's place with the compute on the CPU, on the same image and
/// settings, and the new window says what happened. The command still succeeds.
#[test]
fn a_gpu_lost_under_the_window_reopens_it_on_the_cpu() {
    if !display_is_there("a_gpu_lost_under_the_window_reopens_it_on_the_cpu") {
        return;
    }
    if inrlab::compute::gpu::test_backend().is_none() {
        return;
    }
    let dir = fresh_folder("device-loss-test");
    let image_path = dir.join("gradient.png");
    let gradient = image::RgbImage::from_fn(48, 40, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 6) as u8, ((x + y) * 3) as u8])
    });
    gradient.save(&image_path).unwrap();
    let path = dir.join("window.png");
    let image_arg = image_path.to_str().unwrap();
    let stdout = take_screenshot(
        &path,
        &[
            "--after",
            "3",
            "--backend",
            "gpu",
            "--image",
            image_arg,
            "--methods",
            "fourier-ridge,trajectory",
            "--lambda",
            "0.003",
            "--lose-window-device-after",
            "1",
        ],
        None,
    );
    assert_not_blank(&path);
    let record = inrlab::provenance::Provenance::read(&path).expect("the picture has its record");
    assert_eq!(
        record.backend, "cpu",
        "the reopened window computes on the CPU"
    );
    assert_eq!(record.image.path.as_deref(), Some(image_path.as_path()));
    let methods: Vec<&str> = record.methods.keys().map(String::as_str).collect();
    assert_eq!(methods, ["fourier-ridge", "trajectory"]);
    assert_eq!(
        record.methods["fourier-ridge"]["lambda"].as_f64(),
        Some(0.003),
        "the settings were carried over"
    );
    assert!(
        stdout.lines().any(|line| line
            .trim_start()
            .starts_with("warning shown: The GPU device was lost")),
        "the window does not say what happened:\n{stdout}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name != "window.png" && name != "gradient.png")
        .collect();
    assert!(leftovers.is_empty(), "files left: {leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
