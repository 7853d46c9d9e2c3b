//! Design invariant 1: planning holds no write capability. The planner is a pure function;
//! this guards against someone handing it a network client later.

use std::path::Path;

fn source(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn planning_code_reaches_no_network_client() {
    let mut files = vec!["src/commands/plan.rs".to_string()];
    // Every file under src/mapping, its folders (a planner with several files) included.
    let mut folders = vec!["src/mapping".to_string()];
    while let Some(folder) = folders.pop() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(&folder);
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = format!("{folder}/{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(
        files.iter().any(|f| f == "src/mapping/bifrost/mod.rs"),
        "{files:?}"
    );
    for file in files {
        let text = source(&file);
        for forbidden in [
            "WorkatoTarget",
            "WorkatoConn",
            "HttpClient",
            "reqwest",
            "ctx.workato",
            "crate::http",
        ] {
            assert!(
                !text.contains(forbidden),
                "{file} mentions {forbidden}: planning must not hold a network capability"
            );
        }
    }
    // And the Workato planner's entry point takes only data.
    let planner = source("src/mapping/workato.rs");
    assert!(planner.contains(
        "pub fn plan(inv: &Inventory, mapping: &Mapping, signing: &SigningIndex) -> Plan"
    ));
}
