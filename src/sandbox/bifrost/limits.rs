//! Budgets and rate limits in request bodies: parsing, validation and reconciliation, shared by
//! access profiles and virtual keys (SD-B9).
//!
//! The two owners differ in their duration enums (profiles know no `30s`/`5m`; rate limits
//! never take `1Q`), in whether limits must be integers (virtual keys store int64 rate
//! limits), and in whether a list may repeat a `reset_duration` (virtual keys may not).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::model::{uuid_v4, Budget, RateLimit};
use super::request::{
    as_array, as_bool, as_f64, as_i64, as_object, as_str, field, non_null, BfError,
};
use crate::sandbox::workato::request::Field;

/// Access-profile budget durations.
pub const AP_BUDGET_DURATIONS: &[&str] = &["1h", "1d", "1w", "1M", "1Q", "1Y"];
/// Access-profile rate-limit durations (no `1Q`).
pub const AP_RATE_DURATIONS: &[&str] = &["1h", "1d", "1w", "1M", "1Y"];
/// Virtual-key budget durations (SD-B9 adds `1Q`).
pub const VK_BUDGET_DURATIONS: &[&str] = &["30s", "5m", "1h", "1d", "1w", "1M", "1Q", "1Y"];
/// Virtual-key rate-limit durations.
pub const VK_RATE_DURATIONS: &[&str] = &["30s", "5m", "1h", "1d", "1w", "1M", "1Y"];
/// Durations shorter than a day: not allowed with `calendar_aligned: true` (SD-B9).
pub const SUB_DAY: &[&str] = &["30s", "5m", "1h"];

/// Which owner's rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Profile,
    VirtualKey,
}

impl Owner {
    fn budget_durations(self) -> &'static [&'static str] {
        match self {
            Owner::Profile => AP_BUDGET_DURATIONS,
            Owner::VirtualKey => VK_BUDGET_DURATIONS,
        }
    }
    fn rate_durations(self) -> &'static [&'static str] {
        match self {
            Owner::Profile => AP_RATE_DURATIONS,
            Owner::VirtualKey => VK_RATE_DURATIONS,
        }
    }
}

/// One budget line as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetInput {
    pub id: Option<String>,
    pub max_limit: f64,
    pub reset_duration: String,
    pub quarter_start_month: Option<u32>,
    pub calendar_aligned: Option<bool>,
}

fn duration(v: &Value, path: &str, allowed: &[&str]) -> Result<String, BfError> {
    let s = as_str(v, path)?;
    if allowed.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(BfError::bad_request(format!(
            "invalid {path}: {s:?} (allowed: {})",
            allowed.join(", ")
        )))
    }
}

/// Parse one budget line. `max_limit` must be above 0 (Bifrost's `validateBudget`:
/// "cannot be negative or zero"); `reset_config` takes only `quarter_start_month` 1–12 and
/// only with `1Q` (`BudgetResetConfig`, `additionalProperties: false`). `null` is refused
/// everywhere: no budget field is nullable.
pub fn parse_budget(v: &Value, path: &str, owner: Owner) -> Result<BudgetInput, BfError> {
    let o = as_object(v, path)?;
    let max_limit = match non_null(o, "max_limit", path)? {
        Some(v) => as_f64(v, &format!("{path}.max_limit"))?,
        None => {
            return Err(BfError::bad_request(format!(
                "{path}.max_limit is required"
            )))
        }
    };
    if max_limit <= 0.0 {
        return Err(BfError::bad_request(format!(
            "{path}.max_limit: budget max limit cannot be negative or zero: {max_limit:.2}"
        )));
    }
    let reset_duration = match non_null(o, "reset_duration", path)? {
        Some(v) => duration(
            v,
            &format!("{path}.reset_duration"),
            owner.budget_durations(),
        )?,
        None => {
            return Err(BfError::bad_request(format!(
                "{path}.reset_duration is required"
            )))
        }
    };
    let quarter_start_month = match non_null(o, "reset_config", path)? {
        Some(rc) => {
            let rp = format!("{path}.reset_config");
            let rc = as_object(rc, &rp)?;
            if let Some(k) = rc.keys().find(|k| *k != "quarter_start_month") {
                return Err(BfError::bad_request(format!(
                    "{rp}: unknown field {k:?} (only quarter_start_month)"
                )));
            }
            if reset_duration != "1Q" {
                return Err(BfError::bad_request(format!(
                    "{rp} is only valid with reset_duration 1Q"
                )));
            }
            match non_null(rc, "quarter_start_month", &rp)? {
                Some(m) => {
                    let m = as_i64(m, &format!("{rp}.quarter_start_month"))?;
                    if !(1..=12).contains(&m) {
                        return Err(BfError::bad_request(format!(
                            "{rp}.quarter_start_month must be between 1 and 12"
                        )));
                    }
                    Some(m as u32)
                }
                None => None,
            }
        }
        None => None,
    };
    let calendar_aligned = match non_null(o, "calendar_aligned", path)? {
        Some(b) => Some(as_bool(b, &format!("{path}.calendar_aligned"))?),
        None => None,
    };
    let id = match non_null(o, "id", path)? {
        Some(v) => Some(as_str(v, &format!("{path}.id"))?.to_owned()),
        None => None,
    };
    if let Some(scope) = non_null(o, "scope", path)? {
        as_str(scope, &format!("{path}.scope"))?;
    }
    Ok(BudgetInput {
        id,
        max_limit,
        reset_duration,
        quarter_start_month,
        calendar_aligned,
    })
}

/// Parse a budget list; virtual keys may not repeat a `reset_duration`.
pub fn parse_budgets(v: &Value, path: &str, owner: Owner) -> Result<Vec<BudgetInput>, BfError> {
    let items = as_array(v, path)?;
    let mut out: Vec<BudgetInput> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let b = parse_budget(item, &format!("{path}[{i}]"), owner)?;
        if owner == Owner::VirtualKey && out.iter().any(|o| o.reset_duration == b.reset_duration) {
            return Err(BfError::bad_request(format!(
                "duplicate reset_duration {} in {path}",
                b.reset_duration
            )));
        }
        out.push(b);
    }
    Ok(out)
}

/// Build stored budget lines from input. Lines matching an existing one (by `id` for
/// profiles, by `reset_duration` for virtual keys) keep its id and usage unless
/// `reset_usage`.
pub fn reconcile_budgets(
    input: Vec<BudgetInput>,
    existing: &[Budget],
    owner: Owner,
    scope: Option<&str>,
    default_aligned: bool,
    reset_usage: bool,
    now: DateTime<Utc>,
) -> Vec<Budget> {
    input
        .into_iter()
        .map(|b| {
            let matched = existing.iter().find(|e| match owner {
                Owner::Profile => b.id.as_deref() == Some(e.id.as_str()),
                Owner::VirtualKey => e.reset_duration == b.reset_duration,
            });
            let (id, usage, last_reset, created_at) = match matched {
                Some(e) if !reset_usage => {
                    (e.id.clone(), e.current_usage, e.last_reset, e.created_at)
                }
                Some(e) => (e.id.clone(), 0.0, now, e.created_at),
                None => (uuid_v4(&mut rand::thread_rng()), 0.0, now, now),
            };
            Budget {
                id,
                max_limit: b.max_limit,
                reset_duration: b.reset_duration,
                quarter_start_month: b.quarter_start_month,
                scope: scope.map(str::to_owned),
                calendar_aligned: b.calendar_aligned.unwrap_or(default_aligned),
                current_usage: usage,
                last_reset,
                created_at,
                updated_at: now,
            }
        })
        .collect()
}

/// A rate limit as sent: each field absent/`null` (`None`) or set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimitInput {
    pub token_max_limit: Option<f64>,
    pub token_reset_duration: Option<String>,
    pub request_max_limit: Option<f64>,
    pub request_reset_duration: Option<String>,
}

impl RateLimitInput {
    /// `{}` — the virtual-key "remove the rate limit" signal.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Parse a rate-limit object. Limits must be above 0 (Bifrost's `validateRateLimit`:
/// "cannot be negative or zero"); virtual-key limits are whole numbers (int64). `null` is
/// refused except for a profile's max limits (nullable in the profile schema, = unset).
pub fn parse_rate_limit(v: &Value, path: &str, owner: Owner) -> Result<RateLimitInput, BfError> {
    let o: &Map<String, Value> = as_object(v, path)?;
    let limit = |key: &str| -> Result<Option<f64>, BfError> {
        let p = format!("{path}.{key}");
        let v = match field(o, key) {
            Field::Absent => return Ok(None),
            Field::Null if owner == Owner::Profile => return Ok(None),
            Field::Null => return non_null(o, key, path).map(|_| None),
            Field::Set(v) => v,
        };
        let n = match owner {
            Owner::VirtualKey => as_i64(v, &p)? as f64,
            Owner::Profile => as_f64(v, &p)?,
        };
        if n <= 0.0 {
            let what = key.trim_end_matches("_max_limit");
            return Err(BfError::bad_request(format!(
                "{p}: rate limit {what} max limit cannot be negative or zero: {n}"
            )));
        }
        Ok(Some(n))
    };
    let dur = |key: &str| -> Result<Option<String>, BfError> {
        match non_null(o, key, path)? {
            Some(v) => Ok(Some(duration(
                v,
                &format!("{path}.{key}"),
                owner.rate_durations(),
            )?)),
            None => Ok(None),
        }
    };
    Ok(RateLimitInput {
        token_max_limit: limit("token_max_limit")?,
        token_reset_duration: dur("token_reset_duration")?,
        request_max_limit: limit("request_max_limit")?,
        request_reset_duration: dur("request_reset_duration")?,
    })
}

/// A new rate limit from input, or `existing` with the sent fields replaced (`merge`) or
/// with everything replaced (`!merge`, keeping id and usage).
pub fn apply_rate_limit(
    input: RateLimitInput,
    existing: Option<&RateLimit>,
    merge: bool,
    now: DateTime<Utc>,
) -> RateLimit {
    let mut rl = existing.cloned().unwrap_or_else(|| RateLimit {
        id: uuid_v4(&mut rand::thread_rng()),
        token_max_limit: None,
        token_reset_duration: None,
        request_max_limit: None,
        request_reset_duration: None,
        token_current_usage: 0.0,
        request_current_usage: 0.0,
        token_last_reset: now,
        request_last_reset: now,
        created_at: now,
        updated_at: now,
    });
    if merge {
        if input.token_max_limit.is_some() {
            rl.token_max_limit = input.token_max_limit;
        }
        if input.token_reset_duration.is_some() {
            rl.token_reset_duration = input.token_reset_duration;
        }
        if input.request_max_limit.is_some() {
            rl.request_max_limit = input.request_max_limit;
        }
        if input.request_reset_duration.is_some() {
            rl.request_reset_duration = input.request_reset_duration;
        }
    } else {
        rl.token_max_limit = input.token_max_limit;
        rl.token_reset_duration = input.token_reset_duration;
        rl.request_max_limit = input.request_max_limit;
        rl.request_reset_duration = input.request_reset_duration;
    }
    rl.updated_at = now;
    rl
}

/// A limit needs its window.
pub fn check_rate_limit(rl: &RateLimit, path: &str) -> Result<(), BfError> {
    if rl.token_max_limit.is_some() && rl.token_reset_duration.is_none() {
        return Err(BfError::bad_request(format!(
            "{path}.token_reset_duration is required when token_max_limit is set"
        )));
    }
    if rl.request_max_limit.is_some() && rl.request_reset_duration.is_none() {
        return Err(BfError::bad_request(format!(
            "{path}.request_reset_duration is required when request_max_limit is set"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn budget_rules() {
        let ok = parse_budget(
            &json!({"max_limit": 5, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 2}}),
            "b",
            Owner::VirtualKey,
        )
        .unwrap();
        assert_eq!(ok.quarter_start_month, Some(2));
        for bad in [
            json!({"reset_duration": "1M"}),
            json!({"max_limit": -1, "reset_duration": "1M"}),
            json!({"max_limit": 0, "reset_duration": "1M"}),
            json!({"max_limit": null, "reset_duration": "1M"}),
            json!({"max_limit": 1, "reset_duration": null}),
            json!({"max_limit": 1, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 2, "x": 1}}),
            json!({"max_limit": 1, "reset_duration": "1Q", "reset_config": null}),
            json!({"max_limit": 1, "reset_duration": "2h"}),
            json!({"max_limit": 1, "reset_duration": "1M", "reset_config": {"quarter_start_month": 1}}),
            json!({"max_limit": 1, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 13}}),
        ] {
            assert!(parse_budget(&bad, "b", Owner::VirtualKey).is_err(), "{bad}");
        }
        assert!(parse_budget(
            &json!({"max_limit": 1, "reset_duration": "5m"}),
            "b",
            Owner::Profile
        )
        .is_err());
        let dup = json!([{"max_limit": 1, "reset_duration": "1M"}, {"max_limit": 2, "reset_duration": "1M"}]);
        assert!(parse_budgets(&dup, "budgets", Owner::VirtualKey).is_err());
        assert!(parse_budgets(&dup, "budgets", Owner::Profile).is_ok());
    }

    #[test]
    fn rate_limit_rules() {
        let r = parse_rate_limit(
            &json!({"request_max_limit": 600, "request_reset_duration": "1h"}),
            "rl",
            Owner::VirtualKey,
        )
        .unwrap();
        assert_eq!(r.request_max_limit, Some(600.0));
        assert!(
            parse_rate_limit(&json!({"request_max_limit": 1.5}), "rl", Owner::VirtualKey).is_err()
        );
        assert!(parse_rate_limit(&json!({"request_max_limit": 1.5}), "rl", Owner::Profile).is_ok());
        assert!(
            parse_rate_limit(&json!({"token_reset_duration": "1Q"}), "rl", Owner::Profile).is_err()
        );
        for bad in [
            json!({"request_max_limit": 0, "request_reset_duration": "1h"}),
            json!({"token_max_limit": -5, "token_reset_duration": "1d"}),
            json!({"token_max_limit": null}),
            json!({"token_reset_duration": null}),
        ] {
            assert!(
                parse_rate_limit(&bad, "rl", Owner::VirtualKey).is_err(),
                "{bad}"
            );
        }
        assert!(parse_rate_limit(&json!({"token_max_limit": 0}), "rl", Owner::Profile).is_err());
        let r = parse_rate_limit(&json!({"token_max_limit": null}), "rl", Owner::Profile).unwrap();
        assert_eq!(
            r.token_max_limit, None,
            "a profile's max limits are nullable"
        );
        assert!(
            parse_rate_limit(&json!({"token_reset_duration": null}), "rl", Owner::Profile).is_err()
        );
        assert!(parse_rate_limit(&json!({}), "rl", Owner::VirtualKey)
            .unwrap()
            .is_empty());
    }
}
