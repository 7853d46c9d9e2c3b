//! Vendor text is hostile: names a partner or a careless admin could type go through export →
//! plan → apply → verify → adoption → reports (md, html, json, csv) → hand-over (csv, json,
//! per-consumer pages) → status, and every file and terminal line is scanned: no spreadsheet
//! formula, no control or hiding character, Markdown tables keep their columns, no HTML or
//! link is injected — while JSON keeps every name exactly.

mod common;

use common::{write_fixture, Run, Sandbox};
use serde_json::{json, Value};
use std::path::Path;

const HOSTILE: &[&str] = &[
    "=cmd|' /C calc'!A0",
    "+SUM(1,1)",
    "-2+3 partner",
    "@evil lookup",
    "\tTabbed",
    "\rCarriage",
    "Red \u{1b}[31mALERT\u{1b}[0m",
    "Invoice\u{202e}fdp.exe",
    "<script>alert(1)</script>",
    "[click me](http://evil.example)",
    "pipe | in | name",
    "two\nlines",
    "zero\u{200b}width",
    "bell\u{7}and\u{9b}c1",
];

fn fixture() -> Value {
    let clients: Vec<Value> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"id": 100 + i, "name": n}))
        .collect();
    let profiles: Vec<Value> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"id": 200 + i, "name": format!("{n} profile"), "api_client_id": 100 + i,
                   "api_collection_ids": [10], "active": true, "auth_type": "token",
                   "ip_allow_list": [], "secret": format!("{:064}", i)})
        })
        .collect();
    json!({"workato": {"workspaces": [{
        "id": 1, "name": "=HYPERLINK(\"http://evil.example\",\"Acme\")",
        "api_collections": [{"id": 10, "name": "Orders <b>API</b> \u{202e}", "version": "1"}],
        "api_policies": [],
        "legacy_clients": clients,
        "access_profiles": profiles,
        "v2_clients": [], "api_keys": []
    }]}})
}

/// Characters that must never reach a human-facing file or terminal raw.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t' && c != '\r')
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn scan_text(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|c| unsafe_char(*c)) {
        panic!("{what}: raw {c:?} in output:\n{text}");
    }
}

fn scan_csv(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    scan_text(&path.display().to_string(), &text);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    for rec in r.records() {
        for cell in rec.unwrap().iter() {
            let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
                && cell.trim_start_matches(['-', '+']).parse::<f64>().is_err();
            assert!(
                !risky,
                "{}: a cell a spreadsheet would run: {cell:?}",
                path.display()
            );
        }
    }
}

/// Every Markdown table row has as many cells as its header.
fn scan_markdown(what: &str, text: &str) {
    scan_text(what, text);
    let cells = |line: &str| {
        let mut n = 0;
        let mut escaped = false;
        for c in line.chars() {
            match c {
                '\\' if !escaped => escaped = true,
                '|' if !escaped => n += 1,
                _ => escaped = false,
            }
        }
        n
    };
    let mut header = None;
    for line in text.lines() {
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        match header {
            None => header = Some(cells(line)),
            Some(h) => assert_eq!(cells(line), h, "{what}: a row breaks its table: {line}"),
        }
    }
    // A link needs an unescaped `](`; raw HTML an unescaped `<`.
    for (i, _) in text.match_indices("](http://evil") {
        assert!(
            text[..i].ends_with('\\'),
            "{what}: a link was made: {}",
            &text[i.saturating_sub(40)..i + 20]
        );
    }
    for (i, _) in text.match_indices("<script>") {
        assert!(text[..i].ends_with('\\'), "{what}: raw HTML");
    }
}

#[test]
fn hostile_names_reach_no_output_raw_and_json_keeps_them_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path(), &fixture());
    let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let terminal = std::cell::RefCell::new(String::new());
    let ks = |args: &[&str]| {
        let d = run.ks(args);
        assert!(
            [0, 3, 4].contains(&d.code),
            "keyshift {args:?}: {}",
            d.shown()
        );
        // JSON output stays exact by design: only the human lines are scanned.
        if !d.stdout.trim_start().starts_with('{') {
            terminal.borrow_mut().push_str(&d.stdout);
        }
        terminal.borrow_mut().push_str(&d.stderr);
        d
    };
    ks(&["-vv", "export"]);
    ks(&["-vv", "plan"]);
    ks(&["apply", "--yes"]);
    ks(&["verify", "--live", "--probe-deadline", "5"]);
    let logs = run.dir.path().join("logs.csv");
    sandbox.download_workato_logs(1, &logs);
    ks(&["adoption", "--workato-logs", logs.to_str().unwrap()]);
    ks(&["cutover", "--dry-run"]);
    ks(&["status"]);
    let md = ks(&["report", "--format", "md"]).stdout;
    scan_markdown("report.md", &md);
    let html = ks(&["report", "--format", "html"]).stdout;
    scan_text("report.html", &html);
    for raw in ["<script>alert", "<b>API</b>", "=HYPERLINK(\"http"] {
        assert!(!html.contains(raw), "report.html carries {raw:?} unescaped");
    }
    ks(&["report", "--format", "csv", "--out", "csv"]);
    for entry in std::fs::read_dir(run.dir.path().join("csv")).unwrap() {
        scan_csv(&entry.unwrap().path());
    }
    ks(&["handover", "--out", "ho", "--per-consumer"]);
    scan_csv(&run.dir.path().join("ho/handover.csv"));
    for entry in std::fs::read_dir(run.dir.path().join("ho/consumers")).unwrap() {
        let p = entry.unwrap().path();
        scan_markdown(
            &p.display().to_string(),
            &std::fs::read_to_string(&p).unwrap(),
        );
    }
    scan_text("terminal", &terminal.borrow());

    // JSON stays exact: every hostile name is there as the vendor wrote it.
    let json: Value = serde_json::from_str(&ks(&["report", "--format", "json"]).stdout).unwrap();
    let names: Vec<&str> = json["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["profile_name"].as_str())
        .collect();
    for n in HOSTILE {
        let want = format!("{n} profile");
        assert!(
            names.contains(&want.as_str()),
            "report.json lost {want:?}: {names:?}"
        );
    }
    let handover: Value = serde_json::from_str(
        &std::fs::read_to_string(run.dir.path().join("ho/handover.json")).unwrap(),
    )
    .unwrap();
    assert!(handover["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["profile_name"] == "=cmd|' /C calc'!A0 profile"));
}
