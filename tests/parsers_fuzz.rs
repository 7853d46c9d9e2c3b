//! Every parser of outside input against hostile bytes: the inventory file (`export --from`),
//! sandbox fixtures (their Workato, Bifrost and Descope parts), the mapping file and the
//! holders CSV. Arbitrary input and mutations of
//! the corpus in tests/corpus/ never panic, and every refusal names the file and says where
//! (a line, or the field's path) in one line of text. (The Workato Logs export has its own
//! fuzz test, tests/workato_logs_fuzz.rs.)

use keyshift::providers::bifrost::sections::named_holders;
use keyshift::providers::workato::inventory_file;
use keyshift::registry::parse_mapping;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn shipped_mapping(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("mappings")
            .join(name),
    )
    .unwrap()
}

/// A mutation of `seed`: cut at `cut`, then `flips` bytes overwritten with hostile ones.
fn mutate(seed: &[u8], cut: usize, flips: &[(usize, u8)]) -> Vec<u8> {
    let mut v = seed[..cut.min(seed.len())].to_vec();
    for (at, b) in flips {
        if !v.is_empty() {
            let i = at % v.len();
            v[i] = *b;
        }
    }
    v
}

fn hostile_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(b'"'),
        Just(b','),
        Just(b'\n'),
        Just(b'\r'),
        Just(b'{'),
        Just(b'}'),
        Just(b'['),
        Just(b'='),
        Just(0x1b),
        Just(0),
        Just(0xff),
        any::<u8>()
    ]
}

/// The one-line refusal must name the file and where.
fn check_refusal(text: &str, file: &Path) -> Result<(), TestCaseError> {
    let file = file.display().to_string();
    prop_assert!(text.contains(&file), "does not name {}: {}", file, text);
    prop_assert!(!text.contains('\n'), "more than one line: {}", text);
    prop_assert!(
        !text.chars().any(|c| c.is_control()),
        "raw control character: {:?}",
        text
    );
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn inventory(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "inventory.json", bytes);
    if let Err(e) = inventory_file::read(&p) {
        let text = keyshift::output::visible(&format!("{e:#}")).replace('\n', " ");
        check_refusal(&text, &p)?;
        prop_assert!(
            text.contains("line")
                || text.contains("workato")
                || text.contains("stream did not contain valid UTF-8"),
            "says where: {}",
            text
        );
    }
    Ok(())
}

fn mapping(bytes: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(bytes);
    if let Err(e) = parse_mapping("fuzz/mapping.toml", &text) {
        let msg = format!("{e:#}");
        prop_assert!(msg.contains("fuzz/mapping.toml"), "{}", msg);
    }
    Ok(())
}

fn holders(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "holders.csv", bytes);
    let text = String::from_utf8_lossy(&shipped_mapping("bifrost-profiles-to-virtual-keys.toml"))
        .replace(
            "holders = []",
            &format!("holders_csv = {:?}", csv.display().to_string()),
        );
    let m = parse_mapping("holders.toml", &text).unwrap();
    if let Err(e) = named_holders(&m) {
        let msg = format!("{e:#}");
        check_refusal(&msg, &csv)?;
        let at = format!("{}:", csv.display());
        prop_assert!(msg.contains(&at), "names a line: {}", msg);
    }
    Ok(())
}

/// A fixture as the sandbox reads it: its Workato, Bifrost and Descope parts.
fn fixture(bytes: &[u8]) -> Result<(), TestCaseError> {
    use keyshift::sandbox::{bifrost, config::DescopeConfig, descope, fixture};
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "fixture.json", bytes);
    let now = keyshift::mapping::parse_instant("2025-11-15").unwrap();
    let named = |e: anyhow::Error| -> Result<(), TestCaseError> {
        let msg = format!("{e:#}");
        prop_assert!(msg.contains(&p.display().to_string()), "{}", msg);
        Ok(())
    };
    let workato = match fixture::load_file(&p, "http://127.0.0.1:1", now) {
        Ok(w) => w,
        Err(e) => {
            named(e)?;
            Default::default()
        }
    };
    if let Err(e) = bifrost::fixture::load_file(&p, now) {
        named(e)?;
    }
    if let Err(e) = descope::build(&DescopeConfig::default(), &workato, Some(&p), now) {
        named(e)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn inventory_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        inventory(&bytes)?;
    }

    #[test]
    fn inventory_mutations_never_panic(
        seed in 0usize..4, cut in 0usize..2000,
        flips in proptest::collection::vec((any::<usize>(), hostile_byte()), 0..6)
    ) {
        let files = corpus("inventory");
        let (_, bytes) = &files[seed % files.len()];
        inventory(&mutate(bytes, cut, &flips))?;
        fixture(&mutate(bytes, cut, &flips))?;
    }

    #[test]
    fn mapping_mutations_never_panic(
        seed in 0usize..3, cut in 0usize..8000,
        flips in proptest::collection::vec((any::<usize>(), hostile_byte()), 0..6)
    ) {
        let name = ["workato-legacy-to-v2.toml", "workato-legacy-to-descope.toml",
                    "bifrost-profiles-to-virtual-keys.toml"][seed];
        mapping(&mutate(&shipped_mapping(name), cut, &flips))?;
    }

    #[test]
    fn holders_csv_never_panics(
        seed in 0usize..3, cut in 0usize..200,
        flips in proptest::collection::vec((any::<usize>(), hostile_byte()), 0..6)
    ) {
        let files = corpus("holders");
        let (_, bytes) = &files[seed % files.len()];
        holders(&mutate(bytes, cut, &flips))?;
    }

    #[test]
    fn fixtures_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        fixture(&bytes)?;
    }

    #[test]
    fn fixture_mutations_never_panic(
        cut in 0usize..3000,
        flips in proptest::collection::vec((any::<usize>(), hostile_byte()), 0..6)
    ) {
        let files = corpus("fixtures");
        fixture(&mutate(&files[0].1, cut, &flips))?;
    }
}

/// The corpus, each file with what it must give.
#[test]
fn the_corpus_gives_what_it_should() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in corpus("inventory") {
        let p = write(dir.path(), &name, &bytes);
        let got = inventory_file::read(&p);
        match name.as_str() {
            "valid.json" => {
                let inv = got.unwrap();
                assert_eq!(inv.profiles.len(), 2);
                assert_eq!(
                    inv.profiles[1].name, "Invoice\u{202e}fdp.exe",
                    "kept exactly"
                );
            }
            "wrong-type.json" | "truncated.json" => {
                let e = format!("{:#}", got.unwrap_err());
                assert!(e.contains(&name) && e.contains("line"), "{e}");
            }
            "no-workato.json" => {
                let e = format!("{:#}", got.unwrap_err());
                assert!(e.contains("no \"workato\" object"), "{e}");
            }
            other => panic!("no expectation for tests/corpus/inventory/{other}"),
        }
    }
    for (name, bytes) in corpus("fixtures") {
        let p = write(dir.path(), &name, &bytes);
        let now = keyshift::mapping::parse_instant("2025-11-15").unwrap();
        let w = keyshift::sandbox::fixture::load_file(&p, "http://127.0.0.1:1", now).unwrap();
        keyshift::sandbox::bifrost::fixture::load_file(&p, now).unwrap();
        keyshift::sandbox::descope::build(&Default::default(), &w, Some(&p), now).unwrap();
    }
    for (name, bytes) in corpus("holders") {
        let p = write(dir.path(), &name, &bytes);
        let text =
            String::from_utf8_lossy(&shipped_mapping("bifrost-profiles-to-virtual-keys.toml"))
                .replace(
                    "holders = []",
                    &format!("holders_csv = {:?}", p.display().to_string()),
                );
        let got = named_holders(&parse_mapping("m.toml", &text).unwrap());
        match name.as_str() {
            "valid.csv" => assert_eq!(got.unwrap(), ["=cmd|calc", "u-alice", "u-bob"]),
            "no-user-id.csv" => {
                let e = got.unwrap_err().to_string();
                assert!(e.contains(":1: column \"user_id\""), "{e}");
            }
            "ragged.csv" => {
                let e = got.unwrap_err().to_string();
                assert!(e.contains(&format!("{}:3:", p.display())), "{e}");
            }
            other => panic!("no expectation for tests/corpus/holders/{other}"),
        }
    }
}
