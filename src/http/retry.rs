//! The one retry policy: exponential backoff from 200 ms with jitter, each wait capped, the
//! whole capped, and how many retries a client allows. Vendor calls
//! ([`HttpClient::send`](super::HttpClient::send)) and the vault sink both retry by it; what
//! is retried stays each caller's decision ([`HttpError::retry_class`](super::HttpError::retry_class)
//! for vendors), and every retry is announced by the caller.

use backon::ExponentialBuilder;
use std::time::Duration;

/// How often and how patiently a client retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: usize,
    /// The longest single wait.
    pub max_delay: Duration,
    /// The most waited in all, across retries.
    pub total: Duration,
}

impl RetryPolicy {
    /// A command's run against a vendor: 8 retries, up to 30 s apart, 10 minutes in all.
    pub const RUN: RetryPolicy = RetryPolicy {
        retries: super::MAX_RETRIES,
        max_delay: Duration::from_secs(30),
        total: Duration::from_secs(600),
    };

    /// One short attempt and no retry (`doctor`).
    pub const ONE_SHORT: RetryPolicy = RetryPolicy {
        retries: 0,
        ..RetryPolicy::RUN
    };

    /// Attempts in all, for "attempt n of N" messages.
    pub fn attempts(&self) -> usize {
        self.retries + 1
    }

    /// The waits between attempts.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(self.max_delay)
            .with_max_times(self.retries)
            .with_total_delay(Some(self.total))
            .with_jitter()
    }
}
