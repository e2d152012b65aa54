//! Who steps next: compute time shared fairly between methods whose steps last from
//! milliseconds to seconds.
//!
//! A stride scheduler over measured time. Each method has a virtual clock that advances by the
//! wall time of each of its steps divided by its weight (2 for the focused method, 1 for the
//! others); the runnable method with the earliest clock steps next. So a method with 0.6 s steps
//! and one with 0.06 s steps get the same seconds, not the same steps. A method that has just
//! (re)started is urgent: its first step (with its build) comes before anyone's next, and it then
//! joins at the others' clock rather than at zero, so it gets no catch-up burst. A method that
//! could not run for a while (waiting, paused alone) is likewise lifted to within
//! [`MAX_LAG_SECS`] of the clock when it comes back.

use std::collections::BTreeMap;

/// How far behind the scheduler's clock a method's clock may fall (virtual seconds).
pub const MAX_LAG_SECS: f64 = 0.25;
/// The focused method's share relative to any other's.
pub const FOCUS_WEIGHT: f64 = 2.0;

#[derive(Clone, Debug)]
struct Entry {
    virtual_secs: f64,
    /// Restarted and not stepped since.
    urgent: bool,
    /// Order of becoming urgent, so restarts are served first come, first served.
    urgent_since: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Scheduler {
    entries: BTreeMap<&'static str, Entry>,
    /// The virtual time of the latest pick: never decreases.
    clock: f64,
    restarts: u64,
}

impl Scheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// `method` (re)started: its next step comes first.
    pub fn restart(&mut self, method: &'static str) {
        self.restarts += 1;
        let clock = self.clock;
        let entry = self.entries.entry(method).or_insert(Entry {
            virtual_secs: clock,
            urgent: false,
            urgent_since: 0,
        });
        entry.virtual_secs = entry.virtual_secs.max(clock);
        entry.urgent = true;
        entry.urgent_since = self.restarts;
    }

    /// `method` is no longer selected.
    pub fn remove(&mut self, method: &str) {
        self.entries.remove(method);
    }

    /// The method to step next among those `runnable` says can.
    pub fn pick(&mut self, runnable: impl Fn(&str) -> bool) -> Option<&'static str> {
        let candidates: Vec<&'static str> = self
            .entries
            .keys()
            .copied()
            .filter(|name| runnable(name))
            .collect();
        if let Some(urgent) = candidates
            .iter()
            .filter(|name| self.entries[*name].urgent)
            .min_by_key(|name| self.entries[*name].urgent_since)
        {
            return Some(urgent);
        }
        // Nobody is owed a burst for time it could not use.
        let floor = self.clock - MAX_LAG_SECS;
        for name in &candidates {
            let entry = self.entries.get_mut(name).expect("listed");
            entry.virtual_secs = entry.virtual_secs.max(floor);
        }
        let pick = candidates.into_iter().min_by(|a, b| {
            self.entries[a]
                .virtual_secs
                .total_cmp(&self.entries[b].virtual_secs)
        })?;
        self.clock = self.clock.max(self.entries[pick].virtual_secs);
        Some(pick)
    }

    /// `method` spent `secs` on a step (or a cancelled part of one).
    pub fn charge(&mut self, method: &str, secs: f64, focused: bool) {
        let weight = if focused { FOCUS_WEIGHT } else { 1.0 };
        if let Some(entry) = self.entries.get_mut(method) {
            entry.virtual_secs += secs.max(0.0) / weight;
            entry.urgent = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the scheduler for `total` simulated seconds with fixed step times; returns each
    /// method's compute seconds.
    fn simulate(
        steps: &[(&'static str, f64)],
        focused: Option<&str>,
        total: f64,
    ) -> BTreeMap<&'static str, f64> {
        let mut scheduler = Scheduler::new();
        for (name, _) in steps {
            scheduler.restart(name);
        }
        let mut spent: BTreeMap<&'static str, f64> = BTreeMap::new();
        let mut now = 0.0;
        while now < total {
            let name = scheduler.pick(|_| true).unwrap();
            let secs = steps.iter().find(|(n, _)| *n == name).unwrap().1;
            scheduler.charge(name, secs, focused == Some(name));
            *spent.entry(name).or_default() += secs;
            now += secs;
        }
        spent
    }

    #[test]
    fn time_is_shared_equally_whatever_the_step_lengths() {
        let spent = simulate(&[("slow", 0.6), ("fast", 0.06), ("mid", 0.2)], None, 120.0);
        for (name, secs) in &spent {
            assert!((secs / 40.0 - 1.0).abs() < 0.05, "{name}: {secs} s of 120");
        }
    }

    #[test]
    fn the_focused_method_gets_twice_the_share() {
        let spent = simulate(&[("a", 0.1), ("b", 0.3), ("c", 0.05)], Some("b"), 120.0);
        assert!((spent["b"] / 60.0 - 1.0).abs() < 0.05, "{spent:?}");
        assert!((spent["a"] / 30.0 - 1.0).abs() < 0.05, "{spent:?}");
    }

    #[test]
    fn a_restarted_method_steps_first_and_joins_without_a_burst() {
        let mut scheduler = Scheduler::new();
        scheduler.restart("a");
        scheduler.restart("b");
        for _ in 0..100 {
            let name = scheduler.pick(|_| true).unwrap();
            scheduler.charge(name, 0.1, false);
        }
        scheduler.restart("b");
        assert_eq!(scheduler.pick(|_| true), Some("b"), "restarted first");
        scheduler.charge("b", 0.1, false);
        // Afterwards they alternate again (b's first step counts): no 5 s of catch-up.
        let next: Vec<_> = (0..6)
            .map(|_| {
                let name = scheduler.pick(|_| true).unwrap();
                scheduler.charge(name, 0.1, false);
                name
            })
            .collect();
        let b_steps = next.iter().filter(|n| **n == "b").count();
        assert!((2..=3).contains(&b_steps), "{next:?}");
    }

    #[test]
    fn a_method_back_from_waiting_gets_no_burst_and_restarts_are_served_in_order() {
        let mut scheduler = Scheduler::new();
        scheduler.restart("a");
        scheduler.restart("b");
        scheduler.charge("a", 0.0, false);
        scheduler.charge("b", 0.0, false);
        // b cannot run for 10 s of a's steps.
        for _ in 0..100 {
            assert_eq!(scheduler.pick(|n| n == "a"), Some("a"));
            scheduler.charge("a", 0.1, false);
        }
        let next: Vec<_> = (0..10)
            .map(|_| {
                let name = scheduler.pick(|_| true).unwrap();
                scheduler.charge(name, 0.1, false);
                name
            })
            .collect();
        assert!(
            next.iter().filter(|n| **n == "b").count() <= 7,
            "b may catch up at most {MAX_LAG_SECS} s: {next:?}"
        );
        scheduler.restart("b");
        scheduler.restart("a");
        assert_eq!(scheduler.pick(|_| true), Some("b"));
        scheduler.charge("b", 0.1, false);
        assert_eq!(scheduler.pick(|_| true), Some("a"));
        scheduler.remove("a");
        scheduler.charge("a", 1.0, false);
        assert_eq!(scheduler.pick(|_| true), Some("b"));
        assert_eq!(scheduler.pick(|_| false), None);
    }
}
