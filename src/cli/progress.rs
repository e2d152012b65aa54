//! Progress bars for `inrlab run`.

use std::io::IsTerminal;

use crate::session::{AdvanceResult, Session};

/// Progress bars on stderr, one per method, when stderr is a terminal; nothing otherwise.
pub(super) struct Progress {
    bars: Vec<indicatif::ProgressBar>,
    multi: Option<indicatif::MultiProgress>,
}

impl Progress {
    pub(super) fn new(names: &[&str]) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress {
                bars: Vec::new(),
                multi: None,
            };
        }
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template(
            "{prefix:>14} [{bar:30}] {pos:>4}/{len:4} {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bars = names
            .iter()
            .map(|name| {
                let bar = multi.add(indicatif::ProgressBar::new(1));
                bar.set_style(style.clone());
                bar.set_prefix(name.to_string());
                bar.set_message("building");
                bar
            })
            .collect();
        Progress {
            bars,
            multi: Some(multi),
        }
    }

    /// A line on standard output, the bars hidden while it is written.
    pub(super) fn println(&self, line: String) {
        match &self.multi {
            Some(multi) => multi.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    /// A line on standard error, the bars hidden while it is written.
    pub(super) fn eprintln(&self, line: String) {
        match &self.multi {
            Some(multi) => multi.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    pub(super) fn update(&self, session: &Session, advance: &crate::session::Advance) {
        let Some(bar) = self.bars.get(advance.index) else {
            return;
        };
        if let Some(total) = advance.built {
            bar.set_length(total as u64);
        }
        match &advance.result {
            AdvanceResult::Stepped(report) => {
                bar.set_position(report.step.min(bar.length().unwrap_or(0) as usize) as u64);
                bar.set_message(format!("{:.2} dB", report.psnr_db));
                if session.slot(advance.index).is_settled() {
                    bar.finish();
                }
            }
            AdvanceResult::Waiting(what) => bar.set_message(format!("waiting for {what}")),
            AdvanceResult::Stopped(reason) => bar.abandon_with_message(reason.to_string()),
            AdvanceResult::Refit(progress) => match &progress.outcome {
                None => bar.set_message(format!(
                    "refit on every observed pixel: step {} of {}",
                    progress.step, progress.of
                )),
                Some(Ok(refit)) => bar.finish_with_message(format!(
                    "refit to step {}: {:.2} dB unobserved",
                    refit.step, refit.scores.unobserved_db
                )),
                Some(Err(why)) => bar.abandon_with_message(format!("the refit failed: {why}")),
            },
            AdvanceResult::Cancelled => {}
        }
    }
}
