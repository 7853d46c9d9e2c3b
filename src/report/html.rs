//! One self-contained HTML file: inline CSS, inline SVG charts, a few lines of inline
//! JavaScript to filter the profile table. No external asset, so it opens offline and can be
//! attached to a ticket. Every chart element carries its number in a `data-` attribute (the
//! tests read them back).

use std::fmt::Write;

use super::{Outcomes, RateView, Report};

/// Text in HTML, vendor text above all (`output::html`).
fn esc(s: &str) -> String {
    crate::output::html(s)
}

const SERIES: &[(&str, &str)] = &[
    ("migrated", "#2e7d32"),
    ("planned", "#90a4ae"),
    ("in_progress", "#f9a825"),
    ("failed", "#c62828"),
    ("blocked", "#6a1b9a"),
    ("excluded", "#bdbdbd"),
];

fn value(o: &Outcomes, series: &str) -> usize {
    match series {
        "migrated" => o.migrated,
        "planned" => o.planned,
        "in_progress" => o.in_progress,
        "failed" => o.failed,
        "blocked" => o.blocked,
        _ => o.excluded,
    }
}

/// Horizontal stacked bars, one row per label.
fn outcome_chart(id: &str, title: &str, rows: &[Outcomes]) -> String {
    let width = 640.0;
    let label_w = 150.0;
    let row_h = 22.0;
    let max = rows.iter().map(Outcomes::total).max().unwrap_or(0).max(1) as f64;
    let height = rows.len() as f64 * row_h + 40.0;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<figure><figcaption>{}</figcaption><svg id="{id}" class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    for (i, row) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let _ = write!(
            o,
            r#"<g class="row" data-label="{}" data-total="{}"><text x="0" y="{}" class="lbl">{}</text>"#,
            esc(&row.label),
            row.total(),
            y + 14.0,
            esc(&row.label)
        );
        let mut x = label_w;
        for (series, color) in SERIES {
            let n = value(row, series);
            let w = n as f64 / max * (width - label_w - 40.0);
            if n > 0 {
                let _ = write!(
                    o,
                    r#"<rect class="bar" data-series="{series}" data-value="{n}" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{}" fill="{color}"><title>{}: {n} {series}</title></rect>"#,
                    row_h - 6.0,
                    esc(&row.label)
                );
            }
            x += w;
        }
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{}" class="num">{}</text></g>"#,
            x + 4.0,
            y + 14.0,
            row.total()
        );
    }
    // Legend.
    let ly = rows.len() as f64 * row_h + 24.0;
    for (i, (series, color)) in SERIES.iter().enumerate() {
        let lx = i as f64 * 100.0;
        let _ = write!(
            o,
            r#"<rect x="{lx}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{}" class="lbl">{}</text>"#,
            ly - 9.0,
            lx + 14.0,
            ly,
            series.replace('_', " ")
        );
    }
    o.push_str("</svg></figure>");
    o
}

fn findings_chart(kinds: &[(String, usize)]) -> String {
    let width = 640.0;
    let row_h = 22.0;
    let max = kinds.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let height = kinds.len().max(1) as f64 * row_h + 8.0;
    let mut o = format!(
        r#"<figure><figcaption>Findings by kind</figcaption><svg id="findings-by-kind" class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="Findings by kind">"#
    );
    for (i, (kind, n)) in kinds.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let w = *n as f64 / max * (width - 190.0);
        let color = if kind == "blocker" {
            "#c62828"
        } else {
            "#1565c0"
        };
        let _ = write!(
            o,
            r#"<g class="row" data-label="{kind}"><text x="0" y="{}" class="lbl">{kind}</text><rect class="bar" data-value="{n}" x="110" y="{y}" width="{w:.1}" height="{}" fill="{color}"/><text x="{:.1}" y="{}" class="num">{n}</text></g>"#,
            y + 14.0,
            row_h - 6.0,
            110.0 + w + 4.0,
            y + 14.0
        );
    }
    o.push_str("</svg></figure>");
    o
}

fn rate_chart(rate: &RateView) -> String {
    let (width, height, left, bottom) = (640.0, 220.0, 50.0, 24.0);
    let max_t = rate
        .points
        .last()
        .map(|p| p.0 + rate.bucket_seconds)
        .unwrap_or(1)
        .max(1) as f64;
    let peak = rate
        .points
        .iter()
        .map(|p| p.1)
        .fold(rate.limit_per_minute.unwrap_or(0.0), f64::max)
        .max(1.0)
        * 1.1;
    let x = |t: f64| left + t / max_t * (width - left - 10.0);
    let y = |v: f64| (height - bottom) - v / peak * (height - bottom - 10.0);
    let mut o = format!(
        r#"<figure><figcaption>Request rate during apply ({} requests; per minute, {} s buckets)</figcaption><svg id="request-rate" class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="Request rate over time against the limit" data-total="{}">"#,
        rate.total_requests, rate.bucket_seconds, rate.total_requests
    );
    let _ = write!(
        o,
        r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#999"/><line x1="{left}" y1="10" x2="{left}" y2="{}" stroke="#999"/>"##,
        height - bottom,
        width - 10.0,
        height - bottom,
        height - bottom
    );
    let _ = write!(
        o,
        r#"<text x="0" y="14" class="lbl">{peak:.0}/min</text><text x="{}" y="{}" class="lbl">{max_t:.0} s</text>"#,
        width - 50.0,
        height - 6.0
    );
    if let Some(limit) = rate.limit_per_minute {
        let _ = write!(
            o,
            r##"<line id="rate-limit" data-value="{limit}" x1="{left}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#c62828" stroke-dasharray="6 4"/><text x="{}" y="{:.1}" class="lbl" fill="#c62828">limit {limit:.0}/min</text>"##,
            y(limit),
            width - 10.0,
            y(limit),
            left + 4.0,
            y(limit) - 4.0
        );
    }
    let pts: Vec<String> = rate
        .points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t as f64), y(*v)))
        .collect();
    let _ = write!(
        o,
        r##"<polyline points="{}" fill="none" stroke="#1565c0" stroke-width="2"/>"##,
        pts.join(" ")
    );
    for (t, v) in &rate.points {
        let _ = write!(
            o,
            r##"<circle class="point" data-t="{t}" data-value="{v:.1}" cx="{:.1}" cy="{:.1}" r="2" fill="#1565c0"><title>{t} s: {v:.0}/min</title></circle>"##,
            x(*t as f64),
            y(*v)
        );
    }
    o.push_str("</svg></figure>");
    o
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}\
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}\
.meta{color:#666}.deadline{background:#fff8e1;border-left:4px solid #f9a825;padding:8px 12px}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#fafafa;position:sticky;top:0}.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}\
.card b{display:block;font-size:20px}.charts{display:flex;flex-wrap:wrap;gap:18px}figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}\
.lbl{font-size:11px;fill:#333}.num{font-size:11px;fill:#555}#filter{padding:6px 8px;width:320px;margin:8px 0}\
.s-migrated{color:#2e7d32}.s-blocked{color:#6a1b9a}.s-failed{color:#c62828}.s-excluded{color:#888}";

const SCRIPT: &str = "document.getElementById('filter').addEventListener('input',function(e){\
var q=e.target.value.toLowerCase();var n=0;document.querySelectorAll('#profiles tbody tr').forEach(function(r){\
var show=r.textContent.toLowerCase().indexOf(q)>=0;r.style.display=show?'':'none';if(show)n++;});\
document.getElementById('shown').textContent=n;});";

pub fn render(r: &Report) -> String {
    let s = &r.summary;
    let mut o = String::new();
    let title = if r.stage == "plan" {
        "keyshift dry-run report (plan)"
    } else {
        "keyshift migration report"
    };
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        o,
        r#"<h1>{title}</h1><p class="meta">Mapping <code>{}</code> · {} API · generated {} · report format {}</p>"#,
        esc(&r.mapping),
        esc(&r.api),
        esc(&r.generated_at),
        r.format_version
    );
    let _ = write!(
        o,
        r#"<p class="deadline"><b>Deadlines</b> (as of {}): {}</p>"#,
        esc(&r.deadlines.now[..10]),
        esc(&r.deadlines.stance)
    );
    o.push_str(r#"<div class="cards" id="summary">"#);
    let w = &r.words;
    for (label, key, n) in [
        ("access profiles".to_string(), "profiles", s.profiles),
        (
            format!("{} planned", w.containers),
            "planned_clients",
            s.planned_clients,
        ),
        (
            format!("{} planned", w.credentials),
            "planned_keys",
            s.planned_keys,
        ),
        (
            format!("{} migrated", w.credentials),
            "migrated_keys",
            s.migrated_keys,
        ),
        ("blocked".into(), "blocked_profiles", s.blocked_profiles),
        ("excluded".into(), "excluded_profiles", s.excluded_profiles),
        ("failed".into(), "failed", s.failed),
    ] {
        if label.trim() == "planned" {
            continue;
        }
        let _ = write!(
            o,
            r#"<div class="card" data-key="{key}" data-value="{n}"><b>{n}</b>{label}</div>"#
        );
    }
    o.push_str("</div>");
    if let Some(v) = &r.verify {
        let drift = v
            .get("drift")
            .and_then(|d| d.as_array())
            .map_or(0, Vec::len);
        let _ = write!(
            o,
            r#"<p id="verify" data-drift="{drift}">Verify: {} of {} keys match the plan; {drift} difference(s).</p>"#,
            v.get("ok_keys").and_then(|x| x.as_u64()).unwrap_or(0),
            v.get("checked_keys").and_then(|x| x.as_u64()).unwrap_or(0)
        );
    }
    o.push_str(r#"<h2>Charts</h2><div class="charts">"#);
    o.push_str(&outcome_chart(
        "outcomes-by-workspace",
        "Outcomes by workspace",
        &r.charts.by_workspace,
    ));
    o.push_str(&outcome_chart(
        "outcomes-by-auth-type",
        "Outcomes by auth type",
        &r.charts.by_auth_type,
    ));
    o.push_str(&findings_chart(&r.charts.findings_by_kind));
    if let Some(rate) = &r.charts.rate {
        o.push_str(&rate_chart(rate));
    }
    o.push_str("</div>");
    if let Some(a) = &r.adoption {
        o.push_str(&super::adoption::html(a, esc));
    }

    let _ = write!(o, "<h2>Findings ({})</h2><table><thead><tr><th>kind</th><th>workspace</th><th>object</th><th>field</th><th>found</th><th>fix</th></tr></thead><tbody>", r.findings.len());
    for f in &r.findings {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{} {} “{}”</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(f.kind.as_str()),
            esc(&f.workspace),
            esc(&f.object_kind.replace('_', " ")),
            esc(&f.object_id),
            esc(&f.object_name),
            esc(&f.field),
            esc(&f.found),
            esc(&f.fix)
        );
    }
    o.push_str("</tbody></table>");

    // The container column only for a target that has containers, named in its words.
    let with_container = !r.words.container.is_empty();
    let container_th = if with_container {
        format!("<th>→ {}</th>", esc(r.words.container))
    } else {
        String::new()
    };
    let _ = write!(
        o,
        r#"<h2>Access profiles (<span id="shown">{}</span> of {})</h2><input id="filter" type="search" placeholder="Filter: name, status, auth type, client…" autocomplete="off"><table id="profiles"><thead><tr><th>workspace</th><th>profile</th><th>auth</th><th>active</th><th>status</th>{}<th>key</th><th>live</th><th>note</th></tr></thead><tbody>"#,
        r.profiles.len(),
        r.profiles.len(),
        container_th
    );
    for p in &r.profiles {
        let _ = write!(
            o,
            r#"<tr data-status="{}"><td>{}</td><td>{} “{}”</td><td>{}</td><td>{}</td><td class="s-{}">{}</td>{}<td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&p.status),
            esc(&p.workspace),
            p.profile_id,
            esc(&p.profile_name),
            esc(&p.auth_type),
            if p.active { "yes" } else { "no" },
            esc(&p.status),
            esc(&p.status),
            if with_container {
                format!(
                    "<td>{}</td>",
                    p.client_name.as_deref().map(esc).unwrap_or_default()
                )
            } else {
                String::new()
            },
            match (
                &p.key_name,
                p.key_id.map(|k| k.to_string()).or(p.target_id.clone())
            ) {
                (Some(n), Some(id)) => format!("{} (#{id})", esc(n)),
                (Some(n), None) => esc(n),
                _ => String::new(),
            },
            p.live.as_deref().map(esc).unwrap_or_default(),
            p.note.as_deref().map(esc).unwrap_or_default()
        );
    }
    let _ = writeln!(o, "</tbody></table><script>{SCRIPT}</script></body></html>");
    o
}
