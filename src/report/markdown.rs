//! Markdown rendering: fits a CI job summary and reads well as a file.

use std::fmt::Write;

use super::Report;

/// Text in Markdown, vendor text above all (`output::md`).
fn cell(s: &str) -> String {
    crate::output::md(s)
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let s = &r.summary;
    let title = if r.stage == "plan" {
        "keyshift dry-run report (plan)"
    } else {
        "keyshift migration report"
    };
    let _ = writeln!(o, "# {title}\n");
    let _ = writeln!(
        o,
        "Mapping {} · {} API · state {} · generated {}\n",
        cell(&r.mapping),
        cell(&r.api),
        cell(&r.state_file),
        r.generated_at
    );
    let _ = writeln!(
        o,
        "**Deadlines** (as of {}): {}\n",
        &r.deadlines.now[..10],
        r.deadlines.stance
    );
    let _ = writeln!(o, "## Summary\n");
    let _ = writeln!(o, "| | count |\n|---|---:|");
    let w = &r.words;
    for (label, n) in [
        ("workspaces".to_string(), s.workspaces),
        ("legacy API clients".into(), s.legacy_clients),
        ("access profiles".into(), s.profiles),
        (format!("planned {}", w.containers), s.planned_clients),
        (format!("planned {}", w.credentials), s.planned_keys),
        ("blocked profiles".into(), s.blocked_profiles),
        ("excluded by filters".into(), s.excluded_profiles),
        (format!("{} created", w.containers), s.created_clients),
        (format!("{} migrated", w.credentials), s.migrated_keys),
        (format!("{} pending", w.credentials), s.pending_keys),
        ("failed".into(), s.failed),
    ] {
        // A target without containers has no container rows; a source without legacy
        // clients (its profiles stand alone) has no legacy-client row.
        if matches!(label.trim(), "planned" | "created")
            || (label == "legacy API clients" && n == 0 && s.profiles > 0)
        {
            continue;
        }
        let _ = writeln!(o, "| {label} | {n} |");
    }
    if !s.findings.is_empty() {
        let counts: Vec<String> = s.findings.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(o, "\nFindings: {}.", counts.join(", "));
    }
    if let Some(v) = &r.verify {
        let drift = v
            .get("drift")
            .and_then(|d| d.as_array())
            .map_or(0, Vec::len);
        let _ = writeln!(
            o,
            "\n**Verify** ({}): {} of {} keys match the plan; {} difference(s).",
            v.get("at").and_then(|x| x.as_str()).unwrap_or("?"),
            v.get("ok_keys").and_then(|x| x.as_u64()).unwrap_or(0),
            v.get("checked_keys").and_then(|x| x.as_u64()).unwrap_or(0),
            drift
        );
        if let Some(items) = v.get("drift").and_then(|d| d.as_array()) {
            for d in items.iter().take(50) {
                let _ = writeln!(
                    o,
                    "- workspace {}, {}: {} expected {}, found {}",
                    cell(d["workspace"].as_str().unwrap_or("")),
                    cell(d["object"].as_str().unwrap_or("")),
                    cell(d["field"].as_str().unwrap_or("")),
                    cell(d["expected"].as_str().unwrap_or("")),
                    cell(d["found"].as_str().unwrap_or(""))
                );
            }
        }
    }

    let blockers: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.kind.as_str() == "blocker")
        .collect();
    if !blockers.is_empty() {
        let _ = writeln!(o, "\n## Blockers ({})\n", blockers.len());
        let _ = writeln!(
            o,
            "| workspace | object | field | found | fix |\n|---|---|---|---|---|"
        );
        for f in blockers {
            let _ = writeln!(
                o,
                "| {} | {} {} \"{}\" | {} | {} | {} |",
                cell(&f.workspace),
                cell(&f.object_kind.replace('_', " ")),
                cell(&f.object_id),
                cell(&f.object_name),
                cell(&f.field),
                cell(&f.found),
                cell(&f.fix)
            );
        }
    }
    let others: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.kind.as_str() != "blocker")
        .collect();
    if !others.is_empty() {
        let _ = writeln!(o, "\n## Other findings ({})\n", others.len());
        let _ = writeln!(
            o,
            "| kind | workspace | object | field | found | fix |\n|---|---|---|---|---|---|"
        );
        for f in others {
            let _ = writeln!(
                o,
                "| {} | {} | {} \"{}\" | {} | {} | {} |",
                f.kind,
                cell(&f.workspace),
                cell(&f.object_kind.replace('_', " ")),
                cell(&f.object_name),
                cell(&f.field),
                cell(&f.found),
                cell(&f.fix)
            );
        }
    }

    let _ = writeln!(o, "\n## Field treatments (mapping {})\n", cell(&r.mapping));
    let _ = writeln!(
        o,
        "| field | treatment | applies to | what happens |\n|---|---|---|---|"
    );
    for t in &r.field_treatments {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            cell(&t.field),
            cell(&t.treatment),
            cell(&t.applies_to),
            cell(&t.message)
        );
    }

    let _ = writeln!(o, "\n## {} ({})\n", r.words.containers, r.clients.len());
    let _ = writeln!(
        o,
        "| workspace | name | from legacy client | auth | collections | policy | keys | status | id |\n|---|---|---|---|---|---|---:|---|---|"
    );
    for c in &r.clients {
        let _ = writeln!(
            o,
            "| {} | {} | {} \"{}\" | {} | {:?} | {} | {} | {} | {} |",
            cell(&c.workspace),
            cell(&c.name),
            c.legacy_client_id,
            cell(&c.legacy_client_name),
            c.auth_type,
            c.collection_ids,
            c.policy_id
                .map(|p| p.to_string())
                .unwrap_or_else(|| "—".into()),
            c.keys,
            c.status,
            c.client_id
                .map(|p| p.to_string())
                .unwrap_or_else(|| "—".into()),
        );
    }

    let _ = writeln!(o, "\n## Access profiles ({})\n", r.profiles.len());
    // The container column only for a target that has containers, named in its words.
    let container = (!r.words.container.is_empty()).then(|| format!("→ {}", r.words.container));
    let mut head = vec!["workspace", "profile", "auth", "active", "status"];
    head.extend(container.as_deref());
    head.extend(["key", "live", "note"]);
    let _ = writeln!(
        o,
        "| {} |\n|{}",
        head.join(" | "),
        "---|".repeat(head.len())
    );
    for p in &r.profiles {
        let mut cells = vec![
            cell(&p.workspace),
            format!("{} \"{}\"", p.profile_id, cell(&p.profile_name)),
            p.auth_type.clone(),
            (if p.active { "yes" } else { "no" }).to_string(),
            p.status.clone(),
        ];
        if container.is_some() {
            cells.push(
                p.client_name
                    .as_deref()
                    .map(cell)
                    .unwrap_or_else(|| "—".into()),
            );
        }
        cells.push(
            match (
                &p.key_name,
                p.key_id.map(|k| k.to_string()).or(p.target_id.clone()),
            ) {
                (Some(n), Some(id)) => format!("{} (#{id})", cell(n)),
                (Some(n), None) => cell(n),
                _ => "—".into(),
            },
        );
        cells.push(p.live.as_deref().map(cell).unwrap_or_else(|| "—".into()));
        cells.push(p.note.as_deref().map(cell).unwrap_or_default());
        let _ = writeln!(o, "| {} |", cells.join(" | "));
    }
    if let Some(a) = &r.adoption {
        o.push_str(&super::adoption::markdown(a, cell));
    }
    o
}
