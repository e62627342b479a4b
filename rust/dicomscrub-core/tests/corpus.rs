//! Integration tests on the real files pydicom ships. `DICOMSCRUB_TESTDATA` names a folder
//! (`.ci/run` points it at pydicom's data); the test fails loudly when it is unset.

use std::path::{Path, PathBuf};

use dicomscrub_core::{anonymize_bytes, parse, Limits, Plan};

fn files() -> Vec<PathBuf> {
    let root = std::env::var("DICOMSCRUB_TESTDATA")
        .expect("set DICOMSCRUB_TESTDATA to a folder of DICOM files (pydicom's data folder)");
    let mut out = Vec::new();
    walk(Path::new(&root), &mut out);
    out.sort();
    assert!(out.len() > 100, "only {} files under {root}", out.len());
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable folder").flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out);
        } else if std::fs::read(&p).is_ok_and(|d| d.len() > 132 && &d[128..132] == b"DICM") {
            out.push(p);
        }
    }
}

#[test]
fn every_part10_file_parses_or_is_refused_with_a_position() {
    let (mut ok, mut refused) = (0, 0);
    for p in files() {
        let data = std::fs::read(&p).unwrap();
        let mut src: &[u8] = &data;
        match parse::parse(&mut src, &Limits::default()) {
            Ok(parsed) => {
                ok += 1;
                assert!(parsed.has_preamble);
                // the index is well formed: children inside parents, in order
                for (i, e) in parsed.dataset.elements.iter().enumerate() {
                    assert!(
                        e.subtree_end as usize > i && e.end >= e.value_offset,
                        "{p:?}"
                    );
                }
            }
            Err(e) => {
                refused += 1;
                let msg = e.to_string();
                assert!(msg.contains("offset 0x"), "{p:?}: {msg}");
            }
        }
    }
    assert!(ok > 100 && refused <= 4, "ok {ok}, refused {refused}");
}

#[test]
fn edits_inside_sequences_keep_everything_else_verbatim() {
    // Remove one element at any depth: the output is exactly the input without its bytes,
    // apart from the new File Meta and the lengths of the enclosing items and sequences.
    let plan = Plan::from_json(
        r#"{"version":1,"tags":{"00081150":{"action":"remove"},"00100010":{"action":"empty"}}}"#,
        b"k",
    )
    .unwrap();
    let mut checked = 0;
    for p in files() {
        let data = std::fs::read(&p).unwrap();
        let Ok((out, stats)) = anonymize_bytes(&data, &plan, &Limits::default()) else {
            continue;
        };
        let mut src: &[u8] = &out;
        let parsed = parse::parse(&mut src, &Limits::default()).expect("output parses");
        for e in &parsed.dataset.elements {
            assert_ne!(e.tag.0, 0x0008_1150, "{p:?}");
            if e.tag.0 == 0x0010_0010 {
                assert_eq!(e.length, 0);
            }
        }
        if stats.actions.contains_key("remove") {
            checked += 1;
        }
    }
    assert!(checked > 5, "only {checked} files had a nested (0008,1150)");
}
