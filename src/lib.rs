//! inrlab: watch images being generated, step by step, by iterative coordinate-based models.
//!
//! Data flows one way: a command picks a method from [`methods::registry`], the method advances
//! one step at a time on a [`compute::Backend`], and each step's report (and, when somebody looks,
//! its image) goes to whoever drives it: the headless runner ([`runner`]) or the window.
//! See ARCHITECTURE.md for the map.

pub mod app;
pub mod bench;
pub mod bench_baseline;
pub mod bench_training;
pub mod bench_wavelet;
pub mod checkpoint;
pub mod cli;
pub mod compute;
pub mod figures;
pub mod imaging;
pub mod linalg;
pub mod methods;
pub mod output;
pub mod plot;
pub mod provenance;
pub mod recording;
pub mod rng;
pub mod runner;
pub mod session;
pub mod sheet;
pub mod sparse;
pub mod target;
pub mod ui;

/// The message of a caught panic (`catch_unwind`'s payload), for one-line failure states.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panicked".to_owned()
    }
}
