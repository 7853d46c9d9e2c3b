//! Rolling-window rate limits (SD-W1).
//!
//! One window per quota scope (e.g. the Developer API of workspace 1, or the Embedded API of
//! the admin workspace). A request is admitted when fewer than `limit` admitted requests fall
//! inside the last `window` (times strictly greater than `now - window`); otherwise it is
//! refused with the time until the oldest admitted request leaves the window. Refused requests
//! do not take a slot, so a client that honours `Retry-After` always gets through next time.
//!
//! `--rate-scale X` keeps the burst (`limit`) and shortens the window to `60/X` seconds;
//! `X = 0` switches limits off. Windows run on the monotonic machine clock, not the sandbox
//! clock, so `POST /_sandbox/clock` neither refills nor drains a budget.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The window for a "per minute" limit under `rate_scale`; `None` = unlimited.
pub fn window_for(rate_scale: f64) -> Option<Duration> {
    if !rate_scale.is_finite() || rate_scale <= 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(60.0 / rate_scale))
}

/// Admitted-request times per scope.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    /// Admit or refuse one request in `scope`. `limit == 0` means unlimited. On refusal returns
    /// the wait until a slot frees.
    pub fn check(
        &mut self,
        scope: &str,
        limit: u32,
        window: Duration,
        now: Instant,
    ) -> Result<(), Duration> {
        if limit == 0 {
            return Ok(());
        }
        let times = self.windows.entry(scope.to_owned()).or_default();
        while let Some(&oldest) = times.front() {
            if now.saturating_duration_since(oldest) >= window {
                times.pop_front();
            } else {
                break;
            }
        }
        if times.len() < limit as usize {
            times.push_back(now);
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now);
        Err((oldest + window).saturating_duration_since(now))
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_window_admits_limit_then_refuses() {
        let mut rl = RateLimiter::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(60);
        for i in 0..3 {
            assert!(rl.check("s", 3, w, t0 + Duration::from_secs(i)).is_ok());
        }
        let wait = rl
            .check("s", 3, w, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(retry_after_secs(wait), 50);
        // refused requests took no slot; the first slot frees at t0 + 60 s
        assert!(rl.check("s", 3, w, t0 + Duration::from_secs(59)).is_err());
        assert!(rl.check("s", 3, w, t0 + Duration::from_secs(60)).is_ok());
        // other scopes are independent
        assert!(rl.check("other", 3, w, t0).is_ok());
    }

    #[test]
    fn scale_and_rounding() {
        assert_eq!(window_for(1.0), Some(Duration::from_secs(60)));
        assert_eq!(window_for(20.0), Some(Duration::from_secs(3)));
        assert_eq!(window_for(0.0), None);
        assert_eq!(retry_after_secs(Duration::from_millis(10)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
    }
}
