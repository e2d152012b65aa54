//! Runs the real binary's `--screenshot` under the X server named by DISPLAY (Xvfb in CI):
//! the window opens, computes, saves a PNG of itself atomically and exits; the picture must
//! not be blank. Without DISPLAY the test says loudly that it skipped, or fails when
//! INRLAB_REQUIRE_DISPLAY=1.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn screenshot_of_the_window_is_not_blank() {
    if std::env::var_os("DISPLAY").is_none() {
        if std::env::var("INRLAB_REQUIRE_DISPLAY").as_deref() == Ok("1") {
            panic!("DISPLAY is not set but INRLAB_REQUIRE_DISPLAY=1: start Xvfb and set DISPLAY");
        }
        // Written to the real stderr, past libtest's capture, so the skip is seen.
        let banner = "\n\
**************************************************************************\n\
** SKIPPED screenshot_of_the_window_is_not_blank: DISPLAY is not set.   **\n\
** Run `Xvfb :99 -screen 0 1600x1000x24 &` and DISPLAY=:99 to test it. **\n\
**************************************************************************\n";
        let _ = writeln!(std::io::stderr(), "{banner}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("inrlab-screenshot-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("window.png");
    let mut child = Command::new(env!("CARGO_BIN_EXE_inrlab"))
        .arg("--screenshot")
        .arg(&path)
        .args(["--after", "2", "--backend", "cpu"])
        .spawn()
        .expect("starting inrlab");
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
    assert!(status.success(), "inrlab --screenshot failed: {status}");

    let picture = image::open(&path)
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
    let again = Command::new(env!("CARGO_BIN_EXE_inrlab"))
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
