//! The Workato Logs download parser (`keyshift::providers::workato::logs`) against hostile
//! input: arbitrary bytes and mutations of a real-looking download never panic, and every
//! error names the file and a line ≥ 1 in one clean line of text. Plus the corpus in
//! tests/corpus/workato-logs/, each file with its expected outcome.

use keyshift::providers::workato::logs::{self, LogErrorKind, LogFile};
use proptest::prelude::*;
use std::path::PathBuf;

const LABEL: &str = "exports/api-logs.csv";

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/workato-logs")
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(name)).unwrap()
}

/// Physical lines in `bytes` (LF, CRLF or a lone CR end a line).
fn line_count(bytes: &[u8]) -> u64 {
    let mut n = 1;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' || (*b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            n += 1;
        }
    }
    n
}

/// What must hold for any input.
fn check(bytes: &[u8]) -> Result<Option<LogFile>, TestCaseError> {
    match logs::parse(LABEL, bytes) {
        Ok(f) => {
            prop_assert_eq!(&f.label, LABEL);
            let mut previous = 1;
            for row in &f.rows {
                prop_assert!(row.line > previous, "lines go forward: {:?}", f.rows);
                previous = row.line;
                prop_assert!((100..=999).contains(&row.code));
            }
            prop_assert!(previous <= line_count(bytes));
            prop_assert_eq!(f.rows.is_empty(), f.newest.is_none());
            prop_assert!(f.oldest <= f.newest);
            prop_assert_eq!(f.assumed_utc, !f.notes.is_empty());
            Ok(Some(f))
        }
        Err(e) => {
            prop_assert_eq!(&e.file, LABEL);
            prop_assert!(e.line >= 1, "{}", e);
            prop_assert!(
                e.line <= line_count(bytes),
                "{} (of {})",
                e,
                line_count(bytes)
            );
            prop_assert_ne!(e.kind, LogErrorKind::Io);
            let text = e.to_string();
            let prefix = format!("{LABEL}:{}: ", e.line);
            prop_assert!(text.starts_with(&prefix), "{}", text);
            if let Some(column) = &e.column {
                let named = format!("column \"{column}\": ");
                prop_assert!(text.contains(&named), "{}", text);
            }
            prop_assert!(
                !text.chars().any(char::is_control),
                "hostile bytes reach the message: {:?}",
                text
            );
            Ok(None)
        }
    }
}

/// Bytes that matter to a CSV reader, and some that matter to a terminal.
fn csv_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => prop::sample::select(b",\"\r\n".to_vec()),
        4 => prop::sample::select(b"0123456789-:T .+Z".to_vec()),
        2 => prop::sample::select(b"abcDateCodeClient".to_vec()),
        1 => prop::sample::select(vec![0u8, 0x1b, 0x7f, 0xef, 0xbb, 0xbf, 0xff, 0xe2, 0x80, 0xae]),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special = prop::sample::select(b"\",\r\n\0\x1b\t\xff;".to_vec());
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<prop::sample::Index>(), special).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Delete),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, mask) => {
                let i = i.index(bytes.len());
                bytes[i] ^= mask;
            }
            Mutation::Insert(i, b) => {
                let i = i.index(bytes.len() + 1);
                bytes.insert(i, *b);
            }
            Mutation::Delete(i) => {
                bytes.remove(i.index(bytes.len()));
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check(&bytes)?;
    }

    #[test]
    fn csv_shaped_bytes(
        with_header in any::<bool>(),
        body in prop::collection::vec(csv_byte(), 0..512),
    ) {
        let mut bytes = if with_header {
            b"\xEF\xBB\xBFDate,Code,Client,Gateway code\r\n".to_vec()
        } else {
            Vec::new()
        };
        bytes.extend(body);
        check(&bytes)?;
    }

    #[test]
    fn mutated_downloads(
        variant in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let base = corpus(if variant { "variant.csv" } else { "sandbox.csv" });
        check(&mutate(base, &mutations))?;
    }
}

/// Cut at every length, a valid download either fails or yields a prefix of its rows,
/// unchanged: a cut never turns into a plausible but wrong row.
#[test]
fn every_truncation() {
    for name in ["sandbox.csv", "variant.csv"] {
        let bytes = corpus(name);
        let full = logs::parse(LABEL, &bytes).unwrap();
        for len in 0..=bytes.len() {
            let cut = &bytes[..len];
            let outcome = check(cut).unwrap_or_else(|e| panic!("{name} cut at {len}: {e}"));
            if let Some(f) = outcome {
                assert!(f.rows.len() <= full.rows.len());
                for (got, want) in f.rows.iter().zip(&full.rows) {
                    assert_eq!(got, want, "{name} cut at {len}");
                }
            }
        }
    }
}

/// A corpus file's expected outcome: Ok(rows) or Err((kind, line, column)).
type Expected = Result<usize, (LogErrorKind, u64, Option<&'static str>)>;

#[test]
fn corpus_outcomes() {
    use LogErrorKind::*;
    let expected: &[(&str, Expected)] = &[
        ("sandbox.csv", Ok(5)),
        ("variant.csv", Ok(3)),
        ("header-only.csv", Ok(0)),
        ("truncated.csv", Err((Truncated, 6, None))),
        ("bad-date.csv", Err((BadDate, 4, Some("Date")))),
        (
            "missing-column.csv",
            Err((MissingColumn, 1, Some("Client"))),
        ),
        ("short-record.csv", Err((FieldCount, 3, None))),
    ];
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut covered: Vec<String> = expected.iter().map(|(n, _)| n.to_string()).collect();
    covered.sort();
    assert_eq!(names, covered, "every corpus file has an expected outcome");

    for (name, want) in expected {
        let path = corpus_dir().join(name);
        let label = path.display().to_string();
        match (logs::read(&path), want) {
            (Ok(f), Ok(rows)) => {
                assert_eq!(f.rows.len(), *rows, "{name}");
                assert_eq!(f.label, label);
            }
            (Err(e), Err((kind, line, column))) => {
                assert_eq!(
                    (e.kind, e.line, e.column.as_deref()),
                    (*kind, *line, *column),
                    "{name}: {e}"
                );
                assert!(
                    e.to_string().starts_with(&format!("{label}:{line}: ")),
                    "{e}"
                );
            }
            (got, _) => panic!("{name}: unexpected {got:?}"),
        }
    }
}

#[test]
fn corpus_contents() {
    let f = logs::parse("sandbox.csv", &corpus("sandbox.csv")).unwrap();
    assert!(!f.assumed_utc);
    let clients: Vec<&str> = f.rows.iter().map(|r| r.client.as_str()).collect();
    assert_eq!(
        clients,
        [
            "Orders · keys",
            "Orders · keys",
            "Orders, legacy",
            "",
            "billing"
        ]
    );
    let refused: Vec<bool> = f.rows.iter().map(|r| r.refused()).collect();
    assert_eq!(refused, [false, false, true, true, false]);
    assert!(f.rows[0].is_probe() && !f.rows[1].is_probe());
    assert_eq!(
        f.rows[4].status_details,
        "Collection \"Orders v1\" not granted"
    );
    assert_eq!(f.newest, Some(f.rows[0].at));
    assert_eq!(f.oldest, Some(f.rows[4].at));

    let v = logs::parse("variant.csv", &corpus("variant.csv")).unwrap();
    assert!(v.assumed_utc);
    assert_eq!(v.notes.len(), 1);
    assert!(v.rows[0].is_probe());
    assert_eq!(v.rows[2].client, "Orders, legacy");
    assert!(v.rows[2].refused());
    assert_eq!(v.rows[2].at.to_rfc3339(), "2025-11-20T10:15:01+00:00");
}

#[test]
fn unreadable_file_is_line_zero() {
    let path = corpus_dir().join("no-such-file.csv");
    let e = logs::read(&path).unwrap_err();
    assert_eq!((e.kind, e.line), (LogErrorKind::Io, 0));
    assert!(e
        .to_string()
        .starts_with(&format!("{}:0: ", path.display())));
}
