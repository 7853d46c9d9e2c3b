//! The gateway's request record and the API-logs download built from it (SD-W20–SD-W22).
//!
//! Every gateway request whose workspace is known is recorded once its outcome is decided, in
//! sandbox-clock time. The record is kept in memory, over all workspaces, up to
//! `[workato] api_log_max_rows` rows (the oldest are dropped first).
//!
//! `GET /_sandbox/workato/api-logs.csv?workspace=ID&from=&to=` answers with one workspace's rows
//! as API platform → Logs → Download results writes them: UTF-8 with a BOM, CRLF line ends,
//! RFC 4180 quoting, newest first. Text fields (client names above all) go in verbatim; only
//! CSV quoting applies.

use std::collections::VecDeque;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::request::Query;
use crate::sandbox::clock::{parse_instant, wire_time};
use crate::sandbox::AppState;

/// The download's header row (SD-W21).
pub const CSV_HEADER: [&str; 13] = [
    "Date",
    "Type",
    "Code",
    "Status",
    "Gateway code",
    "Status details",
    "IP",
    "Timing",
    "Delay",
    "API collection",
    "Endpoint",
    "Client",
    "Job details",
];

/// Gateway code: the credential is unknown, disabled or retired.
pub const UNRECOGNIZED: u16 = 4011;
/// Gateway code: no credential was presented.
pub const MISSING: u16 = 4012;
/// Gateway code: the client was not granted the collection.
pub const COLLECTION_DENIED: u16 = 4031;
/// Gateway code: the caller's address is refused.
pub const IP_DENIED: u16 = 4032;

/// One gateway request.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayRecord {
    pub workspace_id: u64,
    pub at: DateTime<Utc>,
    pub status: u16,
    pub gateway_code: Option<u16>,
    pub details: String,
    pub ip: String,
    pub timing_ms: u64,
    pub delay_ms: u64,
    pub collection: String,
    pub endpoint: String,
    /// The client's name; empty when no credential matched.
    pub client: String,
}

impl GatewayRecord {
    /// `Success` for 2xx/3xx, `Error` otherwise.
    fn kind(&self) -> &'static str {
        if self.status < 400 {
            "Success"
        } else {
            "Error"
        }
    }

    fn status_text(&self) -> &'static str {
        StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
    }

    fn row(&self) -> [String; 13] {
        [
            wire_time(self.at),
            self.kind().to_owned(),
            self.status.to_string(),
            self.status_text().to_owned(),
            self.gateway_code.map(|c| c.to_string()).unwrap_or_default(),
            self.details.clone(),
            self.ip.clone(),
            format!("{} ms", self.timing_ms),
            format!("{} ms", self.delay_ms),
            self.collection.clone(),
            self.endpoint.clone(),
            self.client.clone(),
            String::new(),
        ]
    }
}

/// The record of every workspace, oldest first.
#[derive(Debug, Default)]
pub struct GatewayLog {
    rows: VecDeque<GatewayRecord>,
}

impl GatewayLog {
    /// Keep `r`, dropping the oldest rows beyond `cap`.
    pub fn push(&mut self, r: GatewayRecord, cap: usize) {
        if cap == 0 {
            return;
        }
        while self.rows.len() >= cap {
            self.rows.pop_front();
        }
        self.rows.push_back(r);
    }

    /// Rows kept, over all workspaces.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// One workspace's rows with `from <= Date <= to`, newest first.
    pub fn select(
        &self,
        workspace_id: u64,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Vec<&GatewayRecord> {
        let mut rows: Vec<&GatewayRecord> = self
            .rows
            .iter()
            .filter(|r| r.workspace_id == workspace_id)
            .filter(|r| from.is_none_or(|f| r.at >= f) && to.is_none_or(|t| r.at <= t))
            .collect();
        // Stable: rows recorded in the same millisecond keep their reverse arrival order.
        rows.reverse();
        rows.sort_by_key(|r| std::cmp::Reverse(r.at));
        rows
    }
}

/// The CSV text of `rows`: BOM, CRLF, RFC 4180 quoting.
pub fn to_csv(rows: &[&GatewayRecord]) -> Vec<u8> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(CSV_HEADER);
    for r in rows {
        let _ = w.write_record(r.row());
    }
    if let Ok(bytes) = w.into_inner() {
        out.extend(bytes);
    }
    out
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "message": message }))).into_response()
}

/// `GET /_sandbox/workato/api-logs.csv?workspace=ID&from=&to=` (SD-W21).
pub(crate) async fn api_logs_csv(State(app): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let bound = |key: &str| -> Result<Option<DateTime<Utc>>, String> {
        match q.get(key).map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => parse_instant(s)
                .map(Some)
                .map_err(|e| format!("{key}: {e}")),
        }
    };
    let (from, to) = match (bound("from"), bound("to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    let inner = app.lock();
    let workspace_id = match q.get("workspace").map(str::trim).filter(|s| !s.is_empty()) {
        None => inner.workato.admin_id,
        Some(raw) => match raw.parse::<u64>() {
            Ok(id) if inner.workato.workspaces.contains_key(&id) => id,
            _ => {
                return (
                    StatusCode::NOT_FOUND,
                    Json(json!({ "message": format!("no workspace {raw}") })),
                )
                    .into_response()
            }
        },
    };
    let body = to_csv(&inner.workato_logs.select(workspace_id, from, to));
    drop(inner);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"api-logs-{workspace_id}.csv\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ws: u64, at: &str, client: &str) -> GatewayRecord {
        GatewayRecord {
            workspace_id: ws,
            at: parse_instant(at).unwrap(),
            status: 401,
            gateway_code: Some(UNRECOGNIZED),
            details: "Unrecognized token".into(),
            ip: "127.0.0.1".into(),
            timing_ms: 3,
            delay_ms: 0,
            collection: "Orders".into(),
            endpoint: "keyshift-probe".into(),
            client: client.into(),
        }
    }

    #[test]
    fn cap_drops_oldest_and_select_filters() {
        let mut log = GatewayLog::default();
        log.push(rec(1, "2025-11-15T00:00:00Z", "a"), 2);
        log.push(rec(1, "2025-11-16T00:00:00Z", "b"), 2);
        log.push(rec(2, "2025-11-17T00:00:00Z", "c"), 2);
        assert_eq!(log.len(), 2);
        let names = |v: Vec<&GatewayRecord>| v.iter().map(|r| r.client.clone()).collect::<Vec<_>>();
        assert_eq!(names(log.select(1, None, None)), ["b"]);
        log.push(rec(1, "2025-11-18T00:00:00Z", "d"), 10);
        assert_eq!(names(log.select(1, None, None)), ["d", "b"]);
        let from = parse_instant("2025-11-17T00:00:00Z").ok();
        assert_eq!(names(log.select(1, from, None)), ["d"]);
        assert_eq!(names(log.select(1, None, from)), ["b"]);
        log.push(rec(1, "2025-11-19T00:00:00Z", "x"), 0);
        assert_eq!(log.len(), 3);
    }

    #[test]
    fn csv_quotes_and_formats() {
        let r = rec(1, "2025-11-20T10:15:03.12Z", "Say \"hi\", =cmd\nnext");
        let text = String::from_utf8(to_csv(&[&r])).unwrap();
        assert!(text.starts_with('\u{feff}'));
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert!(lines[1].starts_with(
            "2025-11-20T10:15:03.120+00:00,Error,401,Unauthorized,4011,Unrecognized token,127.0.0.1,3 ms,0 ms,Orders,keyshift-probe,\"Say \"\"hi\"\", =cmd\nnext\","
        ));
    }
}
