//! Rate budgets: requests paced under a vendor's limit, with slack for the vendor's own
//! rolling window.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// A request budget for one vendor quota scope (e.g. Workato Developer API, 60/min).
pub struct RateBudget {
    pub name: String,
    /// Requests per minute this budget allows (after scaling and `--max-rate`); `None` =
    /// unlimited.
    pub per_minute: Option<f64>,
    limiter: Option<DefaultDirectRateLimiter>,
}

impl RateBudget {
    /// `limit_per_minute` is the vendor's documented limit; `scale` is KEYSHIFT_RATE_SCALE
    /// (rehearsal only: 0 = unlimited); `max_rate` is the user's `--max-rate`.
    pub fn new(name: &str, limit_per_minute: f64, scale: f64, max_rate: Option<f64>) -> RateBudget {
        let scaled = if scale <= 0.0 {
            None
        } else {
            Some(limit_per_minute * scale)
        };
        let per_minute = match (scaled, max_rate) {
            (Some(s), Some(m)) => Some(s.min(m * scale.max(1.0))),
            (Some(s), None) => Some(s),
            (None, m) => m,
        };
        // A rehearsal keeps the vendor's count per window and shortens the window (60/scale s).
        let window_secs = 60.0 / if scale > 0.0 { scale } else { 1.0 };
        let limiter = per_minute.map(|rpm| {
            RateLimiter::direct(Pace::for_window(rpm * window_secs / 60.0).quota(window_secs))
        });
        RateBudget {
            name: name.into(),
            per_minute,
            limiter,
        }
    }

    pub async fn acquire(&self) {
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
    }
}

/// How requests are paced against a limit of `limit` requests per window (the vendors count
/// arrivals in a rolling minute).
///
/// Requests leave evenly spaced, at most `limit - slack` in any window, `slack` =
/// max(1, limit/200): they reach the vendor with jitter, and the slack keeps a request that
/// arrives a little early from being the one too many. A burst of `slack` lets a request that
/// woke late (timers have millisecond granularity) be followed at once, so lateness does not
/// add up into unused budget. With a burst of `b` and `n` requests per window, a paced
/// sequence puts at most `b + ⌊n⌋` requests into any window; `n = limit − 2·slack + 0.99`
/// makes that `limit − slack`. Embedded's 1,000/min is paced at 990.99/min with a burst of 5,
/// the Developer API's 60/min at 58.99/min, one at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pace {
    per_window: f64,
    burst: u32,
}

impl Pace {
    fn for_window(limit: f64) -> Pace {
        let slack = (limit / 200.0).floor().max(1.0);
        let per_window = limit - 2.0 * slack + 0.99;
        if per_window >= limit * 0.9 {
            return Pace {
                per_window,
                burst: slack as u32,
            };
        }
        // Small limits (a user's --max-rate of a few per minute): one below, one at a time.
        Pace {
            per_window: (limit - 1.01).max(limit * 0.5),
            burst: 1,
        }
    }

    /// The governor quota for a window of `window_secs`.
    fn quota(&self, window_secs: f64) -> Quota {
        let period = Duration::from_secs_f64(window_secs / self.per_window);
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .expect("positive period")
            .allow_burst(NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN))
    }

    /// The most requests a paced sequence can put into one window.
    #[cfg(test)]
    fn most_per_window(&self) -> u32 {
        self.burst + self.per_window.floor() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_leaves_slack_in_every_window_and_little_unused() {
        for limit in [1u32, 2, 5, 10, 60, 100, 400, 1000, 5000] {
            let pace = Pace::for_window(f64::from(limit));
            let most = pace.most_per_window();
            if limit >= 5 {
                assert!(most < limit, "limit {limit}: up to {most} in a window");
            } else {
                assert!(most <= limit, "limit {limit}: up to {most} in a window");
            }
            if limit >= 60 {
                let used = pace.per_window / f64::from(limit);
                assert!(used > 0.98, "limit {limit}: paced at {used}");
            }
        }
        let embedded = Pace::for_window(1000.0);
        assert_eq!((embedded.burst, embedded.most_per_window()), (5, 995));
        assert_eq!(Pace::for_window(60.0).most_per_window(), 59);
    }

    /// The real limiter on a simulated clock, with callers that always have a request ready
    /// and wake up to 0.9 ms late: no rolling window ever holds more than `limit - slack`,
    /// and the lateness does not eat into the rate.
    #[test]
    fn paced_requests_fill_the_budget_without_overfilling_any_window() {
        use governor::clock::FakeRelativeClock;
        // The documented windows, and Embedded as the benchmark scales it (5×).
        for (limit, window_secs) in [(1000.0, 60.0), (1000.0, 12.0), (60.0, 60.0), (100.0, 60.0)] {
            let pace = Pace::for_window(limit);
            let clock = FakeRelativeClock::default();
            let limiter = RateLimiter::direct_with_clock(pace.quota(window_secs), clock.clone());
            let window = Duration::from_secs_f64(window_secs);
            let run = window * 5;
            let mut sent: Vec<Duration> = Vec::new();
            let mut now = Duration::ZERO;
            let mut late = 0u64;
            while now < run {
                match limiter.check() {
                    Ok(()) => sent.push(now),
                    Err(not_until) => {
                        // Sleep until allowed, then wake 0.1–0.9 ms late (timer granularity).
                        let wait = not_until.wait_time_from(governor::clock::Clock::now(&clock));
                        late = (late * 7 + 3) % 9;
                        let step = wait + Duration::from_micros(100 + late * 100);
                        clock.advance(step);
                        now += step;
                    }
                }
            }
            let most = sent
                .iter()
                .enumerate()
                .map(|(i, t)| sent[i..].iter().take_while(|u| **u < *t + window).count())
                .max()
                .unwrap();
            assert!(
                most as u32 <= pace.most_per_window() && (most as f64) < limit,
                "limit {limit}: {most} requests in one window"
            );
            let ideal = limit * run.as_secs_f64() / window_secs;
            let used = sent.len() as f64 / ideal;
            assert!(used > 0.98, "limit {limit}: {used:.4} of the budget used");
        }
    }

    #[test]
    fn budgets_scale() {
        assert_eq!(RateBudget::new("w", 60.0, 1.0, None).per_minute, Some(60.0));
        assert_eq!(
            RateBudget::new("w", 60.0, 20.0, None).per_minute,
            Some(1200.0)
        );
        assert_eq!(RateBudget::new("w", 60.0, 0.0, None).per_minute, None);
        assert_eq!(
            RateBudget::new("w", 60.0, 1.0, Some(30.0)).per_minute,
            Some(30.0)
        );
    }
}
