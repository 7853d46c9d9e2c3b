//! Name templates: `{placeholder}`s checked at load and filled by the planners.

/// Check a name template: not blank, and only the placeholders `allowed`.
pub fn check_template(key: &str, template: &str, allowed: &[&str], problems: &mut Vec<String>) {
    if template.trim().is_empty() {
        problems.push(format!("key {key}: empty — give a name template"));
    }
    for placeholder in placeholders(template) {
        if !allowed.contains(&placeholder.as_str()) {
            problems.push(format!(
                "key {key}: unknown placeholder {{{placeholder}}} — use any of {}",
                allowed
                    .iter()
                    .map(|a| format!("{{{a}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
    }
}

fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push(rest[start + 1..start + len].to_string());
        rest = &rest[start + len + 1..];
    }
    out
}

/// Fill `{name}` placeholders from `values`.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}
