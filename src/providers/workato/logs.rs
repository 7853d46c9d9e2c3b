//! Workato's API request logs, as exported by "API platform → Logs → Download results"
//! (docs/evidence.md; docs.workato.com `api-mgmt/api-logs`).
//!
//! No Workato API serves these logs, so the download is the only evidence of which API client
//! made which request. The file is vendor text and may have passed through a spreadsheet, so
//! the parser is lenient about shape (BOM or none, CRLF or LF, columns by header name in any
//! order, extra columns ignored, several date spellings) and strict about content: a record it
//! cannot read is an error that names the file, the line and the column, never a guess and
//! never a panic. Only the fields keyshift uses are kept per row.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use std::fmt;
use std::path::Path;

/// One request in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// 1-based physical line in the file where the record starts.
    pub line: u64,
    pub at: DateTime<Utc>,
    /// HTTP status.
    pub code: u16,
    /// Workato's extended diagnostic code (4011, 4012, 4031, 4032…), if any.
    pub gateway_code: Option<String>,
    pub status_details: String,
    pub ip: String,
    pub collection: String,
    pub endpoint: String,
    /// The name of the API client that made the request; empty when nothing matched (a
    /// refused request whose credential the gateway did not recognise).
    pub client: String,
}

impl LogRow {
    /// A refusal of the credential: 401, or gateway code 4011/4012.
    pub fn refused(&self) -> bool {
        self.code == 401
            || matches!(
                self.gateway_code.as_deref().map(leading_digits),
                Some("4011" | "4012")
            )
    }

    /// A use: the credential was accepted (any status but a refusal).
    pub fn used(&self) -> bool {
        !self.refused()
    }

    /// keyshift's own verify probe (Endpoint `keyshift-probe`, any leading '/').
    pub fn is_probe(&self) -> bool {
        self.endpoint.trim().trim_start_matches('/') == PROBE_ENDPOINT
    }
}

/// The endpoint keyshift's probes call (see `probe.rs`).
pub const PROBE_ENDPOINT: &str = "keyshift-probe";

/// One downloaded log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// How the file is named in messages (its path).
    pub label: String,
    /// In file order (the download lists the newest first).
    pub rows: Vec<LogRow>,
    pub newest: Option<DateTime<Utc>>,
    pub oldest: Option<DateTime<Utc>>,
    /// Dates had no zone and were read as UTC (the output must say so).
    pub assumed_utc: bool,
    /// Anything the user should know (e.g. dates assumed UTC); without the label, which the
    /// caller puts in front.
    pub notes: Vec<String>,
}

/// What went wrong, for callers and tests that need more than the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogErrorKind {
    /// The file could not be read (line 0).
    Io,
    /// No bytes, or nothing but a BOM and blank lines: not even a header.
    Empty,
    /// A required column is not in the header.
    MissingColumn,
    /// A column keyshift reads appears twice in the header.
    DuplicateColumn,
    /// A record has a different number of fields than the header.
    FieldCount,
    /// The file ends inside a quoted field, or its last record is short: cut off.
    Truncated,
    /// A Date keyshift cannot read.
    BadDate,
    /// A Code that is not an HTTP status.
    BadCode,
    /// A value that is not UTF-8.
    NotUtf8,
    /// A value longer than any real log would hold.
    TooLong,
    /// The CSV reader itself failed.
    Malformed,
}

/// A log file keyshift cannot read. Always names the file and the line (0 only when the file
/// could not be read at all), and the column by its header name when one is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {}{message}", column_prefix(.column))]
pub struct LogError {
    pub file: String,
    pub line: u64,
    pub column: Option<String>,
    pub kind: LogErrorKind,
    pub message: String,
}

fn column_prefix(column: &Option<String>) -> String {
    match column {
        Some(c) => format!("column \"{c}\": "),
        None => String::new(),
    }
}

/// The longest value kept from a field; a real log holds names, paths and short texts.
pub const MAX_FIELD_BYTES: usize = 8 * 1024;

/// How the accepted date formats are described in errors.
const DATE_FORMATS: &str = "RFC 3339 with an offset (2025-11-20T10:15:03.120+00:00), or \
     YYYY-MM-DD HH:MM:SS with optional fractional seconds and an optional zone \
     (+00:00, Z or UTC; none is read as UTC)";

/// The columns keyshift knows, by their header names (Workato's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Date,
    Type,
    Code,
    Status,
    GatewayCode,
    StatusDetails,
    Ip,
    Timing,
    Delay,
    Collection,
    Endpoint,
    Client,
    JobDetails,
}

const COLUMNS: [Col; 13] = [
    Col::Date,
    Col::Type,
    Col::Code,
    Col::Status,
    Col::GatewayCode,
    Col::StatusDetails,
    Col::Ip,
    Col::Timing,
    Col::Delay,
    Col::Collection,
    Col::Endpoint,
    Col::Client,
    Col::JobDetails,
];

const REQUIRED: [Col; 3] = [Col::Date, Col::Code, Col::Client];

impl Col {
    fn name(self) -> &'static str {
        match self {
            Col::Date => "Date",
            Col::Type => "Type",
            Col::Code => "Code",
            Col::Status => "Status",
            Col::GatewayCode => "Gateway code",
            Col::StatusDetails => "Status details",
            Col::Ip => "IP",
            Col::Timing => "Timing",
            Col::Delay => "Delay",
            Col::Collection => "API collection",
            Col::Endpoint => "Endpoint",
            Col::Client => "Client",
            Col::JobDetails => "Job details",
        }
    }

    /// By header text: case-insensitive, trimmed, runs of spaces/underscores as one space.
    fn by_header(header: &str) -> Option<Col> {
        let key = normalize_header(header);
        COLUMNS
            .iter()
            .copied()
            .find(|c| normalize_header(c.name()) == key)
    }
}

fn normalize_header(h: &str) -> String {
    h.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .split(|c: char| c.is_whitespace() || c == '_')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Read a downloaded log file. I/O errors name the file at line 0.
pub fn read(path: &Path) -> Result<LogFile, LogError> {
    let label = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => parse(&label, &bytes),
        Err(e) => Err(LogError {
            file: label,
            line: 0,
            column: None,
            kind: LogErrorKind::Io,
            message: format!("cannot read the API logs file: {e}"),
        }),
    }
}

/// Parse the bytes of a downloaded log file; `label` names it in messages.
pub fn parse(label: &str, bytes: &[u8]) -> Result<LogFile, LogError> {
    let data = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let err = |line: u64, column: Option<Col>, kind: LogErrorKind, message: String| LogError {
        file: label.to_string(),
        line,
        column: column.map(|c| c.name().to_string()),
        kind,
        message,
    };

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut cur = csv::ByteRecord::new();
    let mut next = csv::ByteRecord::new();
    let read_next = |reader: &mut csv::Reader<&[u8]>, rec: &mut csv::ByteRecord| {
        reader.read_byte_record(rec).map_err(|e| {
            let line = e.position().map_or(1, |p| p.line().max(1));
            err(
                line,
                None,
                LogErrorKind::Malformed,
                format!("not readable as CSV: {e}"),
            )
        })
    };

    // The header.
    if !read_next(&mut reader, &mut cur)? {
        return Err(err(
            1,
            None,
            LogErrorKind::Empty,
            "empty file: no header, so not an API logs download".to_string(),
        ));
    }
    let mut more = read_next(&mut reader, &mut next)?;
    let mut lines = Lines::new(data);
    let header_line = lines.of(&cur);
    if !more {
        check_not_cut(label, &mut lines, header_line)?;
    }
    let mut index: [Option<usize>; COLUMNS.len()] = [None; COLUMNS.len()];
    let headers: Vec<String> = cur
        .iter()
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();
    for (i, h) in headers.iter().enumerate() {
        let Some(col) = Col::by_header(h) else {
            continue;
        };
        let Some(slot) = COLUMNS.iter().position(|c| *c == col) else {
            continue;
        };
        match index.get_mut(slot) {
            Some(Some(_)) => {
                return Err(err(
                    header_line,
                    Some(col),
                    LogErrorKind::DuplicateColumn,
                    "appears twice in the header; keyshift cannot tell which to read".to_string(),
                ))
            }
            Some(s) => *s = Some(i),
            None => {}
        }
    }
    let col_index = |c: Col| -> Option<usize> {
        COLUMNS
            .iter()
            .position(|k| *k == c)
            .and_then(|slot| index.get(slot).copied().flatten())
    };
    for req in REQUIRED {
        if col_index(req).is_none() {
            let mut found: Vec<String> = headers.iter().take(20).map(|h| show(h)).collect();
            if headers.len() > 20 {
                found.push(format!("… ({} in all)", headers.len()));
            }
            return Err(err(
                header_line,
                Some(req),
                LogErrorKind::MissingColumn,
                format!(
                    "missing from the header, which has: {}; an API logs download (API platform \
                     → Logs → Download results) has Date, Code and Client columns",
                    found.join(", ")
                ),
            ));
        }
    }
    let width = headers.len();
    let (Some(i_date), Some(i_code), Some(i_client)) = (
        col_index(Col::Date),
        col_index(Col::Code),
        col_index(Col::Client),
    ) else {
        // Unreachable: checked just above.
        return Err(err(
            header_line,
            None,
            LogErrorKind::MissingColumn,
            "missing a required column".to_string(),
        ));
    };
    let i_gateway = col_index(Col::GatewayCode);
    let i_details = col_index(Col::StatusDetails);
    let i_ip = col_index(Col::Ip);
    let i_collection = col_index(Col::Collection);
    let i_endpoint = col_index(Col::Endpoint);

    // The records.
    let mut rows = Vec::new();
    let mut assumed = 0usize;
    while more {
        std::mem::swap(&mut cur, &mut next);
        more = read_next(&mut reader, &mut next)?;
        let last = !more;
        let line = lines.of(&cur);
        if last {
            check_not_cut(label, &mut lines, line)?;
        }
        if cur.len() != width {
            let (kind, hint) = if last && cur.len() < width {
                (
                    LogErrorKind::Truncated,
                    "; it is the last record, so the file looks cut short (was the download \
                     interrupted?)",
                )
            } else {
                (LogErrorKind::FieldCount, "")
            };
            return Err(err(
                line,
                None,
                kind,
                format!(
                    "this record has {} field(s) where the header (line {header_line}) has \
                     {width}{hint}",
                    cur.len()
                ),
            ));
        }
        let text = |i: usize, col: Col| -> Result<String, LogError> {
            let raw = cur.get(i).unwrap_or_default();
            if raw.len() > MAX_FIELD_BYTES {
                return Err(err(
                    line,
                    Some(col),
                    LogErrorKind::TooLong,
                    format!(
                        "value of {} bytes, longer than the {MAX_FIELD_BYTES} keyshift accepts",
                        raw.len()
                    ),
                ));
            }
            match std::str::from_utf8(raw) {
                Ok(s) => Ok(s.trim().to_string()),
                Err(_) => Err(err(
                    line,
                    Some(col),
                    LogErrorKind::NotUtf8,
                    format!(
                        "value {} is not UTF-8 (was the file re-saved in another encoding?)",
                        show(&String::from_utf8_lossy(raw))
                    ),
                )),
            }
        };
        let optional = |i: Option<usize>, col: Col| -> Result<String, LogError> {
            match i {
                Some(i) => text(i, col),
                None => Ok(String::new()),
            }
        };

        let date = text(i_date, Col::Date)?;
        let Some((at, no_zone)) = parse_date(&date) else {
            return Err(err(
                line,
                Some(Col::Date),
                LogErrorKind::BadDate,
                format!(
                    "unknown date format {}; accepted: {DATE_FORMATS}",
                    show(&date)
                ),
            ));
        };
        if no_zone {
            assumed += 1;
        }
        let code_text = text(i_code, Col::Code)?;
        let Some(code) = parse_code(&code_text) else {
            return Err(err(
                line,
                Some(Col::Code),
                LogErrorKind::BadCode,
                format!(
                    "{} is not an HTTP status code (a number from 100 to 999)",
                    show(&code_text)
                ),
            ));
        };
        let gateway = optional(i_gateway, Col::GatewayCode)?;
        rows.push(LogRow {
            line,
            at,
            code,
            gateway_code: (!gateway.is_empty()).then_some(gateway),
            status_details: optional(i_details, Col::StatusDetails)?,
            ip: optional(i_ip, Col::Ip)?,
            collection: optional(i_collection, Col::Collection)?,
            endpoint: optional(i_endpoint, Col::Endpoint)?,
            client: text(i_client, Col::Client)?,
        });
    }

    let newest = rows.iter().map(|r| r.at).max();
    let oldest = rows.iter().map(|r| r.at).min();
    let mut notes = Vec::new();
    if assumed > 0 {
        notes.push(format!(
            "{assumed} of {} date(s) had no time zone and were read as UTC",
            rows.len()
        ));
    }
    Ok(LogFile {
        label: label.to_string(),
        rows,
        newest,
        oldest,
        assumed_utc: assumed > 0,
        notes,
    })
}

/// Physical lines, counted by us: the `csv` crate's own line numbers drift on CRLF files. A
/// line ends at LF, CRLF or a lone CR.
struct Lines<'a> {
    data: &'a [u8],
    /// Bytes before `at` have been counted; `line` is the line `at` is on.
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(data: &'a [u8]) -> Self {
        Lines {
            data,
            at: 0,
            line: 1,
        }
    }

    /// The line a record starts on (records only move forward).
    fn of(&mut self, rec: &csv::ByteRecord) -> u64 {
        let mut start = rec
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(self.at)
            .max(self.at)
            .min(self.data.len());
        // A record never starts with a line break: skip any the position points before.
        while matches!(self.data.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        self.advance(start);
        self.line
    }

    fn advance(&mut self, to: usize) {
        while self.at < to {
            match self.data.get(self.at) {
                Some(b'\n') => self.line += 1,
                Some(b'\r') if self.data.get(self.at + 1) != Some(&b'\n') => self.line += 1,
                Some(_) => {}
                None => break,
            }
            self.at += 1;
        }
    }
}

/// The CSV reader ends a record quietly at end of input inside a quoted field; a download
/// cut off mid-quote must be an error instead. Replays RFC 4180 quoting (as the `csv` crate
/// reads it) over the last record's bytes.
fn check_not_cut(label: &str, lines: &mut Lines, line: u64) -> Result<(), LogError> {
    let start = lines.at;
    let tail = lines.data.get(start..).unwrap_or_default();
    let mut quote_at = start;
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        StartField,
        InField,
        Quoted,
        QuoteInQuoted,
    }
    let mut s = S::StartField;
    for (i, &b) in tail.iter().enumerate() {
        s = match (s, b) {
            (S::StartField, b'"') => {
                quote_at = start + i;
                S::Quoted
            }
            (S::Quoted, b'"') => S::QuoteInQuoted,
            (S::Quoted, _) => S::Quoted,
            (S::QuoteInQuoted, b'"') => S::Quoted,
            (_, b',' | b'\r' | b'\n') => S::StartField,
            _ => S::InField,
        };
    }
    if s == S::Quoted {
        lines.advance(quote_at);
        let quote_line = lines.line;
        let opened = if quote_line == line {
            String::new()
        } else {
            format!(" (opened on line {quote_line})")
        };
        return Err(LogError {
            file: label.to_string(),
            line,
            column: None,
            kind: LogErrorKind::Truncated,
            message: format!(
                "the file ends inside a quoted field{opened}: the record starting here was cut \
                 short (was the download interrupted?)"
            ),
        });
    }
    Ok(())
}

/// A Code: a number from 100 to 999.
fn parse_code(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|c| (100..=999).contains(c))
}

fn leading_digits(s: &str) -> &str {
    let s = s.trim();
    let end = s
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(s.len(), |(i, _)| i);
    s.get(..end).unwrap_or_default()
}

/// Timing or Delay (`35 ms`, `35`, `0.4 s`…) in milliseconds, if readable. keyshift does not
/// use them; an odd unit is not an error.
pub fn parse_millis(s: &str) -> Option<f64> {
    let s = s.trim();
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(s.len(), |(i, _)| i);
    let number: f64 = s.get(..end)?.parse().ok()?;
    let factor = match s.get(end..)?.trim().to_ascii_lowercase().as_str() {
        "" | "ms" => 1.0,
        "s" | "sec" | "secs" => 1000.0,
        "µs" | "us" => 0.001,
        _ => return None,
    };
    Some(number * factor)
}

/// A Date in one of the accepted formats, and whether it had no zone (read as UTC).
pub fn parse_date(s: &str) -> Option<(DateTime<Utc>, bool)> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some((t.with_timezone(&Utc), false));
    }
    let (body, offset) = split_zone(s)?;
    let body = body.trim_end();
    // Four-digit years only: keeps the arithmetic below far from chrono's limits.
    let b = body.as_bytes();
    if b.len() < 19 || !b.iter().take(4).all(u8::is_ascii_digit) || b.get(4) != Some(&b'-') {
        return None;
    }
    let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(body, f).ok())?;
    let utc = naive.and_utc();
    let shift = offset.map_or(0, |o| i64::from(o.local_minus_utc()));
    let at = DateTime::from_timestamp(
        utc.timestamp().checked_sub(shift)?,
        utc.timestamp_subsec_nanos(),
    )?;
    Some((at, offset.is_none()))
}

/// Splits a trailing zone off a date: `Some((rest, None))` when there is none,
/// `None` when the zone is malformed.
fn split_zone(s: &str) -> Option<(&str, Option<FixedOffset>)> {
    let utc = FixedOffset::east_opt(0);
    let lower_ends = |suffix: &str| {
        s.len() >= suffix.len()
            && s.get(s.len() - suffix.len()..)
                .is_some_and(|t| t.eq_ignore_ascii_case(suffix))
    };
    for name in ["utc", "gmt"] {
        if lower_ends(name) {
            return Some((s.get(..s.len() - name.len())?, Some(utc?)));
        }
    }
    if lower_ends("z") {
        return Some((s.get(..s.len() - 1)?, Some(utc?)));
    }
    // ±HH:MM or ±HHMM.
    for (len, colon) in [(6usize, true), (5, false)] {
        let Some(tail) = s.len().checked_sub(len).and_then(|i| s.get(i..)) else {
            continue;
        };
        let t = tail.as_bytes();
        let sign = match t.first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => continue,
        };
        let digits: Vec<u8> = if colon {
            if t.get(3) != Some(&b':') {
                continue;
            }
            t.iter()
                .enumerate()
                .filter(|(i, _)| *i != 0 && *i != 3)
                .map(|(_, b)| *b)
                .collect()
        } else {
            t.get(1..).unwrap_or_default().to_vec()
        };
        if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let n = |i: usize| i32::from(digits.get(i).copied().unwrap_or(b'0') - b'0');
        let hours = n(0) * 10 + n(1);
        let minutes = n(2) * 10 + n(3);
        if hours > 23 || minutes > 59 {
            return None;
        }
        let offset = FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))?;
        return Some((s.get(..s.len() - len)?, Some(offset)));
    }
    Some((s, None))
}

/// A hostile value, fit for a message: quoted, at most 40 characters, control and invisible
/// characters escaped.
pub fn show(v: &str) -> String {
    let mut out = String::from("\"");
    for (n, c) in v.chars().enumerate() {
        if n == 40 {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || invisible(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Zero-width and bidirectional-control characters, which can make a message lie.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}'
        | '\u{061c}' | '\u{feff}' | '\u{00ad}')
}

impl fmt::Display for LogErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Date,Type,Code,Status,Gateway code,Status details,IP,Timing,Delay,\
                          API collection,Endpoint,Client,Job details";

    fn sandbox_file() -> Vec<u8> {
        let rows = [
            HEADER,
            "2025-11-20T10:15:03.120+00:00,Success,200,OK,,,127.0.0.1,35 ms,1 ms,Orders,\
             /keyshift-probe,orders-v2,",
            "2025-11-20T10:14:00.000+00:00,Error,401,Unauthorized,4011,Unrecognized token,\
             10.0.0.7,2 ms,0 ms,Orders,/orders/1,\"Legacy, old\",",
            "2025-11-20T10:13:00.000+00:00,Error,401,Unauthorized,4012,Missing token,10.0.0.8,\
             1 ms,0 ms,Orders,/orders,,",
            "2025-11-20T10:12:00.500+00:00,Error,403,Forbidden,4031,\"Collection \"\"Orders\"\" \
             not granted\",10.0.0.9,1 ms,0 ms,Orders,/orders,billing,",
        ];
        let mut out = b"\xEF\xBB\xBF".to_vec();
        for r in rows {
            out.extend_from_slice(r.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn sandbox_format() {
        let f = parse("logs.csv", &sandbox_file()).unwrap();
        assert_eq!(f.label, "logs.csv");
        assert_eq!(f.rows.len(), 4);
        assert!(!f.assumed_utc);
        assert!(f.notes.is_empty());
        assert_eq!(f.newest, Some(at("2025-11-20T10:15:03.120Z")));
        assert_eq!(f.oldest, Some(at("2025-11-20T10:12:00.500Z")));

        let probe = &f.rows[0];
        assert_eq!(probe.line, 2);
        assert_eq!(probe.code, 200);
        assert_eq!(probe.gateway_code, None);
        assert_eq!(probe.ip, "127.0.0.1");
        assert_eq!(probe.collection, "Orders");
        assert_eq!(probe.client, "orders-v2");
        assert!(probe.is_probe() && probe.used() && !probe.refused());

        let legacy = &f.rows[1];
        assert_eq!(legacy.line, 3);
        assert_eq!(legacy.client, "Legacy, old");
        assert_eq!(legacy.gateway_code.as_deref(), Some("4011"));
        assert_eq!(legacy.status_details, "Unrecognized token");
        assert!(legacy.refused() && !legacy.used() && !legacy.is_probe());

        let anonymous = &f.rows[2];
        assert_eq!(anonymous.client, "");
        assert!(anonymous.refused());

        let forbidden = &f.rows[3];
        assert_eq!(forbidden.line, 5);
        assert_eq!(
            forbidden.status_details,
            "Collection \"Orders\" not granted"
        );
        assert!(forbidden.used(), "a 403 is not a refusal of the credential");
    }

    #[test]
    fn refusal_by_gateway_code_alone() {
        let row = LogRow {
            line: 2,
            at: at("2025-11-20T10:15:03Z"),
            code: 400,
            gateway_code: Some(" 4012 ".into()),
            status_details: String::new(),
            ip: String::new(),
            collection: String::new(),
            endpoint: "keyshift-probe".into(),
            client: String::new(),
        };
        assert!(row.refused());
        assert!(row.is_probe());
        let other = LogRow {
            gateway_code: Some("4032".into()),
            endpoint: "//keyshift-probe/x".into(),
            ..row
        };
        assert!(other.used());
        assert!(!other.is_probe());
    }

    #[test]
    fn variant_no_bom_lf_reordered_extra_column() {
        let text = "  client ,Extra,ENDPOINT,code,date,gateway_code\n\
                    orders-v2,x,keyshift-probe,200,2025-11-20 10:15:03,\n\
                    legacy,y,/a,401,2025-11-20 10:15:04.25,4011\n";
        let f = parse("v.csv", text.as_bytes()).unwrap();
        assert_eq!(f.rows.len(), 2);
        assert!(f.assumed_utc);
        assert_eq!(f.notes.len(), 1);
        assert_eq!(
            f.notes[0],
            "2 of 2 date(s) had no time zone and were read as UTC"
        );
        assert_eq!(f.rows[0].client, "orders-v2");
        assert_eq!(f.rows[0].at, at("2025-11-20T10:15:03Z"));
        assert!(f.rows[0].is_probe());
        assert_eq!(f.rows[1].line, 3);
        assert_eq!(f.rows[1].at, at("2025-11-20T10:15:04.250Z"));
        assert!(f.rows[1].refused());
        assert_eq!(f.rows[1].ip, "");
        assert_eq!(f.newest, Some(at("2025-11-20T10:15:04.250Z")));
    }

    #[test]
    fn date_formats() {
        let want = at("2025-11-20T10:15:03Z");
        for (s, assumed) in [
            ("2025-11-20T10:15:03+00:00", false),
            ("2025-11-20T10:15:03.000+00:00", false),
            ("2025-11-20T12:15:03+02:00", false),
            ("2025-11-20 10:15:03", true),
            ("2025-11-20T10:15:03", true),
            ("2025-11-20 10:15:03.000", true),
            ("2025-11-20 10:15:03 UTC", false),
            ("2025-11-20 10:15:03Z", false),
            ("2025-11-20 10:15:03 +00:00", false),
            ("2025-11-20 05:15:03-0500", false),
            (" 2025-11-20 10:15:03+00:00 ", false),
        ] {
            assert_eq!(parse_date(s), Some((want, assumed)), "{s}");
        }
        for s in [
            "",
            "20/11/2025 10:15",
            "2025-11-20",
            "2025-11-20 10:15:03 +25:00",
            "12025-11-20 10:15:03",
            "2025-11-20 10:15:03 PST",
            "now",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    #[test]
    fn millis() {
        assert_eq!(parse_millis("35 ms"), Some(35.0));
        assert_eq!(parse_millis("35"), Some(35.0));
        assert_eq!(parse_millis("0.5 s"), Some(500.0));
        assert_eq!(parse_millis("fast"), None);
        assert_eq!(parse_millis("3 fortnights"), None);
    }

    #[test]
    fn timing_and_delay_never_fail() {
        let text = "Date,Code,Client,Timing,Delay\n2025-11-20T10:15:03Z,200,a,fast,3 fortnights\n";
        assert_eq!(parse("t.csv", text.as_bytes()).unwrap().rows.len(), 1);
    }

    #[test]
    fn header_only_and_empty() {
        let f = parse("h.csv", format!("\u{feff}{HEADER}\r\n").as_bytes()).unwrap();
        assert!(f.rows.is_empty());
        assert_eq!(f.newest, None);
        assert!(!f.assumed_utc);

        for bytes in [&b""[..], b"\xEF\xBB\xBF", b"\r\n\n"] {
            let e = parse("e.csv", bytes).unwrap_err();
            assert_eq!(e.kind, LogErrorKind::Empty);
            assert_eq!(e.line, 1);
            assert!(e.to_string().starts_with("e.csv:1: empty file"), "{e}");
        }
    }

    #[test]
    fn missing_column() {
        let e = parse("m.csv", b"Date,Code,Who\n2025-11-20T10:15:03Z,200,a\n").unwrap_err();
        assert_eq!(e.kind, LogErrorKind::MissingColumn);
        assert_eq!((e.line, e.column.as_deref()), (1, Some("Client")));
        let msg = e.to_string();
        assert!(
            msg.starts_with("m.csv:1: column \"Client\": missing"),
            "{msg}"
        );
        assert!(msg.contains("\"Date\", \"Code\", \"Who\""), "{msg}");
    }

    #[test]
    fn duplicate_column() {
        let e = parse("d.csv", b"Date,Code,Client,client\n").unwrap_err();
        assert_eq!(e.kind, LogErrorKind::DuplicateColumn);
        assert_eq!((e.line, e.column.as_deref()), (1, Some("Client")));
    }

    #[test]
    fn bad_date_is_named_and_escaped() {
        let text = format!(
            "{HEADER}\r\n2025-11-20T10:15:03Z,Success,200,OK,,,,,,c,/a,x,\r\n\
             \"20/11/2025\x1b[31m\u{202e}\nsecond line and a very long tail that goes on\",\
             Success,200,OK,,,,,,c,/a,x,\r\n"
        );
        let e = parse("b.csv", text.as_bytes()).unwrap_err();
        assert_eq!(e.kind, LogErrorKind::BadDate);
        assert_eq!((e.line, e.column.as_deref()), (3, Some("Date")));
        let msg = e.to_string();
        assert!(
            msg.starts_with("b.csv:3: column \"Date\": unknown date format"),
            "{msg}"
        );
        assert!(msg.contains("\\u{1b}[31m\\u{202e}\\nsecond"), "{msg}");
        assert!(msg.contains('…') && !msg.contains("goes on"), "{msg}");
        assert!(
            msg.contains("RFC 3339") && msg.contains("YYYY-MM-DD HH:MM:SS"),
            "{msg}"
        );
        assert!(!msg.contains('\n') && !msg.contains('\x1b'), "{msg}");
    }

    #[test]
    fn bad_code() {
        for code in ["OK", "", "42", "200.0", "-1", "70000"] {
            let text = format!("Date,Code,Client\n2025-11-20T10:15:03Z,{code},a\n");
            let e = parse("c.csv", text.as_bytes()).unwrap_err();
            assert_eq!(e.kind, LogErrorKind::BadCode, "{code}");
            assert_eq!((e.line, e.column.as_deref()), (2, Some("Code")));
            assert!(
                e.to_string().starts_with("c.csv:2: column \"Code\": "),
                "{e}"
            );
        }
    }

    #[test]
    fn truncated_quoted_record() {
        let mut bytes = sandbox_file();
        bytes.extend_from_slice(b"2025-11-20T10:11:00Z,Error,401,Unauthorized,4011,\"Unrecog");
        let e = parse("t.csv", &bytes).unwrap_err();
        assert_eq!(e.kind, LogErrorKind::Truncated);
        assert_eq!(e.line, 6);
        assert!(e
            .to_string()
            .starts_with("t.csv:6: the file ends inside a quoted field"));

        // The open quote swallows the lines after it: named where it opened.
        let text = "Date,Code,Client\n2025-11-20T10:15:03Z,200,\"a\nb\n";
        let e = parse("t.csv", text.as_bytes()).unwrap_err();
        assert_eq!((e.kind, e.line), (LogErrorKind::Truncated, 2));

        // A record spanning lines, cut in a later quoted field.
        let text = "Date,Code,Client\n2025-11-20T10:15:03Z,\"2\n00\",\"cut";
        let e = parse("t.csv", text.as_bytes()).unwrap_err();
        assert_eq!((e.kind, e.line), (LogErrorKind::Truncated, 2));
        assert!(e.to_string().contains("(opened on line 3)"), "{e}");

        // Cut mid-header.
        let e = parse("t.csv", b"Date,Code,\"Cli").unwrap_err();
        assert_eq!((e.kind, e.line), (LogErrorKind::Truncated, 1));
    }

    #[test]
    fn truncated_short_last_record() {
        let mut bytes = sandbox_file();
        bytes.extend_from_slice(b"2025-11-20T10:11:00Z,Error,401");
        let e = parse("t.csv", &bytes).unwrap_err();
        assert_eq!(
            (e.kind, e.line, e.column.as_deref()),
            (LogErrorKind::Truncated, 6, None)
        );
        assert!(e.to_string().contains("cut short"), "{e}");
    }

    #[test]
    fn wrong_field_count() {
        let text = "Date,Code,Client\n2025-11-20T10:15:03Z,200\n2025-11-20T10:15:03Z,200,a\n";
        let e = parse("w.csv", text.as_bytes()).unwrap_err();
        assert_eq!((e.kind, e.line), (LogErrorKind::FieldCount, 2));
        assert_eq!(
            e.to_string(),
            "w.csv:2: this record has 2 field(s) where the header (line 1) has 3"
        );
        let text = "Date,Code,Client\n2025-11-20T10:15:03Z,200,a,b\n2025-11-20T10:15:03Z,200,a\n";
        let e = parse("w.csv", text.as_bytes()).unwrap_err();
        assert_eq!((e.kind, e.line), (LogErrorKind::FieldCount, 2));
    }

    #[test]
    fn lines_count_physical_lines() {
        let text = "\r\nDate,Code,Client,Status details\r\n\
                    2025-11-20T10:15:03Z,200,a,\"two\r\nlines\"\r\n\
                    \r\n\
                    2025-11-20T10:15:04Z,200,b,\r\n";
        let f = parse("l.csv", text.as_bytes()).unwrap();
        let lines: Vec<u64> = f.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 6]);
        assert_eq!(f.rows[0].status_details, "two\r\nlines");
    }

    #[test]
    fn not_utf8_and_too_long() {
        let e = parse(
            "u.csv",
            b"Date,Code,Client\n2025-11-20T10:15:03Z,200,caf\xe9\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.kind, e.line, e.column.as_deref()),
            (LogErrorKind::NotUtf8, 2, Some("Client"))
        );
        // Ignored columns are not decoded.
        assert!(parse(
            "u.csv",
            b"Date,Code,Client,X\n2025-11-20T10:15:03Z,200,a,\xff\n"
        )
        .is_ok());

        let long = "x".repeat(MAX_FIELD_BYTES + 1);
        let text = format!("Date,Code,Client\n2025-11-20T10:15:03Z,200,{long}\n");
        let e = parse("u.csv", text.as_bytes()).unwrap_err();
        assert_eq!(
            (e.kind, e.column.as_deref()),
            (LogErrorKind::TooLong, Some("Client"))
        );
    }

    #[test]
    fn read_names_the_file_on_io_error() {
        let path = std::env::temp_dir().join("keyshift-no-such-dir/none.csv");
        let e = read(&path).unwrap_err();
        assert_eq!((e.kind, e.line), (LogErrorKind::Io, 0));
        assert!(
            e.to_string()
                .starts_with(&format!("{}:0: ", path.display())),
            "{e}"
        );
    }
}
