//! Design invariant 1: planning holds no write capability. The planner is a pure function;
//! this guards against someone handing it a network client later.

use std::path::Path;

fn source(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn planning_code_reaches_no_network_client() {
    let mut files = vec!["src/commands/plan.rs".to_string()];
    // Every file under src/mapping, and each vendor's planner: `plan.rs` or a `plan/` folder
    // (a planner with several files) in its provider folder, with the checks it calls.
    let mut folders = vec!["src/mapping".to_string()];
    let providers = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers");
    for vendor in std::fs::read_dir(providers).unwrap() {
        let vendor = vendor.unwrap();
        if !vendor.file_type().unwrap().is_dir() {
            continue;
        }
        let folder = format!("src/providers/{}", vendor.file_name().to_string_lossy());
        for planner in ["plan.rs", "usable.rs"] {
            if Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(&folder)
                .join(planner)
                .exists()
            {
                files.push(format!("{folder}/{planner}"));
            }
        }
        if Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(&folder)
            .join("plan")
            .is_dir()
        {
            folders.push(format!("{folder}/plan"));
        }
    }
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
        files
            .iter()
            .any(|f| f == "src/providers/bifrost/plan/mod.rs")
            && files.iter().any(|f| f == "src/providers/descope/plan.rs"),
        "{files:?}"
    );
    for file in files {
        let text = source(&file);
        for forbidden in [
            "V2Api",
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
    let planner = source("src/providers/workato/plan.rs");
    assert!(planner.contains(
        "pub fn plan(inv: &Inventory, mapping: &Mapping, signing: &SigningIndex) -> Plan"
    ));
}
