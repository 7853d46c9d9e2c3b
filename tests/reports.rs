//! Reports: the HTML page is self-contained and its charts show the run's numbers; CSV per
//! category; JSON with a format version; Markdown.

mod common;

use common::{Run, Sandbox};
use serde_json::Value;
use std::collections::BTreeMap;

/// `data-*` attributes of the elements inside one chart's `<svg id=…>`.
fn chart<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("chart {id}"));
    let end = html[start..].find("</svg>").unwrap() + start;
    &html[start..end]
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let i = tag.find(&key)? + key.len();
    Some(&tag[i..i + tag[i..].find('"')?])
}

/// label → series → value, from a stacked-bar chart.
fn bars(svg: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for row in svg.split("<g class=\"row\"").skip(1) {
        let label = attr(row, "data-label").unwrap().replace("&amp;", "&");
        let mut series = BTreeMap::new();
        for rect in row.split("<rect class=\"bar\"").skip(1) {
            let name = attr(rect, "data-series").unwrap_or("value").to_string();
            series.insert(name, attr(rect, "data-value").unwrap().parse().unwrap());
        }
        out.insert(label, series);
    }
    out
}

#[test]
fn html_report_is_self_contained_and_its_charts_match_the_run() {
    let sandbox = Sandbox::start(&[
        "--seed",
        "27",
        "--profiles",
        "140",
        "--workspaces",
        "3",
        "--rate-scale",
        "5",
    ]);
    let run = Run::new(&sandbox);
    run.ok(&["export", "--api", "embedded"], 0);
    run.ok(&["plan"], 3);
    let apply = run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify"], 0);
    run.ok(&["report", "--format", "html", "--out", "report.html"], 0);
    let html = std::fs::read_to_string(run.dir.path().join("report.html")).unwrap();
    let json: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    assert_eq!(json["format_version"], 1);

    // Offline: nothing is fetched from anywhere.
    for needle in [
        "<link",
        "src=\"http",
        "href=\"http",
        "url(",
        "@import",
        "<iframe",
    ] {
        assert!(!html.contains(needle), "external asset: {needle}");
    }
    assert!(html.contains("<script>") && html.contains("id=\"filter\""));

    // Outcomes by auth type and by workspace equal the per-profile rows of the run.
    let rows = json["profiles"].as_array().unwrap();
    let mut want_auth: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut want_ws: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in rows {
        let status = r["status"].as_str().unwrap().to_string();
        *want_auth
            .entry(r["auth_type"].as_str().unwrap().into())
            .or_default()
            .entry(status.clone())
            .or_default() += 1;
        *want_ws
            .entry(format!("workspace {}", r["workspace"].as_str().unwrap()))
            .or_default()
            .entry(status)
            .or_default() += 1;
    }
    assert_eq!(bars(chart(&html, "outcomes-by-auth-type")), want_auth);
    assert_eq!(bars(chart(&html, "outcomes-by-workspace")), want_ws);
    assert_eq!(want_ws.len(), 2, "two customer workspaces");

    // Findings by kind.
    let mut want_kinds: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for f in json["findings"].as_array().unwrap() {
        *want_kinds
            .entry(f["kind"].as_str().unwrap().into())
            .or_default()
            .entry("value".into())
            .or_default() += 1;
    }
    assert_eq!(bars(chart(&html, "findings-by-kind")), want_kinds);

    // Request rate: the chart's total is apply's request count; the limit line is the budget;
    // no bucket is far above the limit (the client paces itself).
    let rate = chart(&html, "request-rate");
    let sent: u64 = apply
        .stdout
        .split(" with ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        attr(rate, "data-total").unwrap().parse::<u64>().unwrap(),
        sent
    );
    let limit: f64 = attr(
        rate.split("id=\"rate-limit\"").nth(1).unwrap(),
        "data-value",
    )
    .unwrap()
    .parse()
    .unwrap();
    assert_eq!(limit, 1000.0 * 5.0, "embedded budget at rate scale 5");
    let points: Vec<f64> = rate
        .split("<circle class=\"point\"")
        .skip(1)
        .map(|c| attr(c, "data-value").unwrap().parse().unwrap())
        .collect();
    assert!(!points.is_empty());
    let total_from_points: f64 = points.iter().sum::<f64>()
        * json["charts"]["rate"]["bucket_seconds"].as_f64().unwrap()
        / 60.0;
    assert!(
        (total_from_points - sent as f64).abs() < 0.5,
        "{total_from_points} vs {sent}"
    );

    // Summary cards.
    let migrated = html
        .split("data-key=\"migrated_keys\" data-value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(migrated, json["summary"]["migrated_keys"].to_string());

    // CSV per category.
    run.ok(&["report", "--format", "csv", "--out", "csv"], 0);
    let count = |name: &str| {
        std::fs::read_to_string(run.dir.path().join("csv").join(name))
            .unwrap()
            .lines()
            .count()
            .saturating_sub(1)
    };
    let status = |s: &[&str]| {
        rows.iter()
            .filter(|r| s.contains(&r["status"].as_str().unwrap()))
            .count()
    };
    assert_eq!(count("migrated.csv"), status(&["migrated"]));
    assert_eq!(count("skipped.csv"), status(&["blocked", "excluded"]));
    assert_eq!(count("failed.csv"), 0);
    let manual = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "manual")
        .count();
    assert_eq!(count("manual_action.csv"), manual);
    assert!(manual > 0);

    // Markdown fits a job summary: it starts with a heading and has the summary table.
    let md = run.ok(&["report", "--format", "md"], 0).stdout;
    assert!(md.starts_with("# keyshift migration report"));
    assert!(md.contains(&format!(
        "| API keys migrated | {} |",
        json["summary"]["migrated_keys"]
    )));
}
