//! Request counters behind `GET /_sandbox/stats`.
//!
//! Tests assert on what the vendor saw — how many K2 calls, how many 429s — not on log text.
//! Each vendor router records `(vendor, method, route pattern, status)` for every request that
//! matched one of its routes, including the 401s and 429s its own middleware produced. The
//! route is the spec's path pattern with `:name` placeholders and without the mount prefix
//! (`/api/v2/api_clients/:api_client_id/api_keys`). `/_sandbox/*` is never counted.

use std::collections::BTreeMap;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Value};

use super::AppState;

/// Counts per `(vendor, route, method, status)`.
#[derive(Debug, Default)]
pub struct RequestStats {
    counts: BTreeMap<(String, String, String, u16), u64>,
}

impl RequestStats {
    /// Count one request.
    pub fn record(&mut self, vendor: &str, method: &str, route: &str, status: u16) {
        *self
            .counts
            .entry((
                vendor.to_owned(),
                route.to_owned(),
                method.to_owned(),
                status,
            ))
            .or_insert(0) += 1;
    }

    /// Zero every counter.
    pub fn reset(&mut self) {
        self.counts.clear();
    }

    /// The `/_sandbox/stats` document, ordered by vendor, route, method, status.
    pub fn to_json(&self) -> Value {
        let requests: Vec<Value> = self
            .counts
            .iter()
            .map(|((vendor, route, method, status), count)| {
                json!({"vendor": vendor, "method": method, "route": route,
                       "status": status, "count": count})
            })
            .collect();
        json!({ "requests": requests })
    }
}

/// Turn an axum matched path (`/workato/api/v2/api_clients/{api_client_id}`) into the spec's
/// pattern without the mount (`/api/v2/api_clients/:api_client_id`).
pub fn route_pattern(matched: &str, mount: &str) -> String {
    let rest = matched.strip_prefix(mount).unwrap_or(matched);
    let converted: Vec<String> = rest
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_prefix('*') {
                    Some(wild) => format!("*{wild}"),
                    None => format!(":{name}"),
                },
                None => seg.to_owned(),
            },
        )
        .collect();
    let out = converted.join("/");
    if out.is_empty() {
        "/".to_owned()
    } else {
        out
    }
}

/// Which vendor a router serves, and where it is mounted.
#[derive(Clone)]
pub(crate) struct VendorMount {
    pub app: AppState,
    pub vendor: &'static str,
    pub mount: &'static str,
}

/// Middleware (as the outermost `route_layer` of a vendor router) that counts every matched
/// request with its final status.
pub(crate) async fn count_requests(
    State(vm): State<VendorMount>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| route_pattern(m.as_str(), vm.mount));
    let resp = next.run(req).await;
    if let Some(route) = route {
        vm.app
            .lock()
            .stats
            .record(vm.vendor, &method, &route, resp.status().as_u16());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_patterns() {
        assert_eq!(
            route_pattern(
                "/workato/api/v2/api_clients/{api_client_id}/api_keys",
                "/workato"
            ),
            "/api/v2/api_clients/:api_client_id/api_keys"
        );
        assert_eq!(
            route_pattern(
                "/workato-apim/{prefix}/{collection}/{*path}",
                "/workato-apim"
            ),
            "/:prefix/:collection/*path"
        );
    }

    #[test]
    fn counts_and_resets() {
        let mut s = RequestStats::default();
        s.record("workato", "GET", "/api/api_clients", 200);
        s.record("workato", "GET", "/api/api_clients", 200);
        s.record("workato", "GET", "/api/api_clients", 429);
        let v = s.to_json();
        assert_eq!(v["requests"][0]["count"], 2);
        assert_eq!(v["requests"][1]["status"], 429);
        s.reset();
        assert_eq!(s.to_json(), json!({"requests": []}));
    }
}
