//! UI frame time while the compute thread is busy: drives the real app headless at 60 Hz for
//! a few hundred frames, cycling through every view, and prints frame-time percentiles.
//! `cargo bench --bench ui_frame_time` (INRLAB_BENCH_FRAMES, INRLAB_BENCH_SIZE to change).

use inrlab::app::bench::{FrameBenchOptions, measure_ui_frame_times};

fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let options = FrameBenchOptions {
        frames: env("INRLAB_BENCH_FRAMES", 600),
        working_size: env("INRLAB_BENCH_SIZE", 128),
        ..FrameBenchOptions::default()
    };
    let times = measure_ui_frame_times(&options);
    println!(
        "ui frame time over {} frames at {}² while computing ({} step frames arrived): \
         p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        times.frames,
        options.working_size,
        times.step_frames,
        times.p50_ms,
        times.p95_ms,
        times.p99_ms,
        times.max_ms
    );
    if times.p95_ms > 16.0 {
        println!("WARNING: p95 frame time is above 16 ms");
    }
}
