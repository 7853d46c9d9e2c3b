//! When the engine's rounds stop.

/// When reconcile-then-create rounds stop (apply's, for every target): once nothing is
/// left open, or when rounds stop making progress. A round that leaves as many operations
/// open as the one before made none; under a fault storm the last few creates can fail
/// ambiguously several rounds running, so a stalled round is tried again after a pause
/// (0.5, 1, 2 s) before the run gives up and says what is unfinished.
pub struct Progress {
    last_open: usize,
    stalled: u32,
}

impl Progress {
    /// Rounds at the most.
    pub const MAX_ROUNDS: usize = 20;
    const MAX_STALLED: u32 = 3;

    pub fn new() -> Progress {
        Progress {
            last_open: usize::MAX,
            stalled: 0,
        }
    }

    /// Whether to run another round now that `open` operations are open (after a pause, if
    /// the last round changed nothing).
    pub async fn another(&mut self, open: usize) -> bool {
        if open < self.last_open {
            self.last_open = open;
            self.stalled = 0;
            return true;
        }
        if self.stalled >= Self::MAX_STALLED {
            return false;
        }
        self.stalled += 1;
        tracing::debug!(
            open,
            stalled = self.stalled,
            "a round made no progress; pausing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250 << self.stalled)).await;
        true
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[tokio::test]
    async fn stalled_rounds_get_three_more_tries_then_stop() {
        let mut p = Progress::new();
        assert!(p.another(10).await);
        assert!(p.another(4).await, "progress");
        let started = std::time::Instant::now();
        for _ in 0..3 {
            assert!(p.another(4).await, "a stalled round is tried again");
        }
        assert!(started.elapsed() >= std::time::Duration::from_millis(3_500));
        assert!(
            !p.another(4).await,
            "three stalled rounds in a row end the run"
        );

        let mut p = Progress::new();
        assert!(p.another(10).await);
        for _ in 0..3 {
            assert!(p.another(10).await);
        }
        assert!(p.another(9).await, "progress resets the count");
        assert!(p.another(9).await, "so a stalled round is tried again");
    }
}
