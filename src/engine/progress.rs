//! When the engine's rounds stop.

use std::time::Duration;

/// When reconcile-then-create rounds stop (apply's, for every target): once nothing is
/// left open, or when rounds stop making progress. A round that leaves as many operations
/// open as the one before made none. Under a fault storm the last few creates can fail
/// ambiguously (a 502 after the vendor may have committed) several rounds running, and a
/// round's lookup can fail after all its retries; both are transient, so a stalled round
/// is tried again after a growing pause (0.5, 1, 2, 4, 8, 15, 15, 15 s: about a minute in
/// all) before the run gives up and says what is unfinished.
pub struct Progress {
    last_open: usize,
    stalled: u32,
}

/// What the next round does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run it now: the last round made progress (or this is the first).
    Go,
    /// The last round made none: run it after this pause (the `n`th stalled round in a row).
    Pause { n: u32, wait: Duration },
    /// Too many rounds in a row made none: stop and report what is open.
    Stop,
}

impl Progress {
    /// Rounds at the most (each progressing round closes at least one operation, so this
    /// only bounds a pathological run).
    pub const MAX_ROUNDS: usize = 60;
    /// Stalled rounds in a row before the run gives up.
    pub const MAX_STALLED: u32 = 8;
    const LONGEST_PAUSE: Duration = Duration::from_secs(15);

    pub fn new() -> Progress {
        Progress {
            last_open: usize::MAX,
            stalled: 0,
        }
    }

    /// What to do now that `open` operations are open.
    pub fn next(&mut self, open: usize) -> Next {
        if open < self.last_open {
            self.last_open = open;
            self.stalled = 0;
            return Next::Go;
        }
        if self.stalled >= Self::MAX_STALLED {
            return Next::Stop;
        }
        self.stalled += 1;
        let wait = Duration::from_millis(250u64 << self.stalled.min(10)).min(Self::LONGEST_PAUSE);
        Next::Pause {
            n: self.stalled,
            wait,
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{Next, Progress};
    use std::time::Duration;

    fn pauses(p: &mut Progress, open: usize) -> Vec<f64> {
        let mut waits = Vec::new();
        while let Next::Pause { n, wait } = p.next(open) {
            assert_eq!(n as usize, waits.len() + 1);
            waits.push(wait.as_secs_f64());
        }
        waits
    }

    #[test]
    fn stalled_rounds_are_tried_again_for_about_a_minute_then_stop() {
        let mut p = Progress::new();
        assert_eq!(p.next(10), Next::Go);
        assert_eq!(p.next(4), Next::Go, "progress");
        let waits = pauses(&mut p, 4);
        assert_eq!(waits, [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]);
        assert_eq!(p.next(4), Next::Stop, "and it stays stopped");

        let mut p = Progress::new();
        assert_eq!(p.next(10), Next::Go);
        for _ in 0..3 {
            assert!(matches!(p.next(10), Next::Pause { .. }));
        }
        assert_eq!(p.next(9), Next::Go, "progress resets the count");
        assert_eq!(
            p.next(9),
            Next::Pause {
                n: 1,
                wait: Duration::from_millis(500)
            },
            "so a stalled round starts again from the shortest pause"
        );
    }

    #[test]
    fn more_open_than_before_is_no_progress() {
        let mut p = Progress::new();
        assert_eq!(p.next(3), Next::Go);
        assert!(matches!(p.next(5), Next::Pause { n: 1, .. }));
    }
}
