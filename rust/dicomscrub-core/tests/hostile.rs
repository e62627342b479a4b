//! Hostile and malformed input: each limit refuses with a clear error, and the regressions the
//! fuzzers found (rust/fuzz, tests/data/fuzz/) stay fixed.

use dicomscrub_core::error::ParseErrorKind;
use dicomscrub_core::{anonymize_bytes, parse, Error, Limits, Plan};

fn explicit(tag: u32, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
    v.extend_from_slice(&(tag as u16).to_le_bytes());
    v.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"SQ" | b"UN" | b"UT") {
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        v.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    v.extend_from_slice(value);
    v
}

fn implicit(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
    v.extend_from_slice(&(tag as u16).to_le_bytes());
    v.extend_from_slice(&(value.len() as u32).to_le_bytes());
    v.extend_from_slice(value);
    v
}

fn part10(meta_extra: &[u8], dataset: &[u8], ts: &str) -> Vec<u8> {
    let mut tsv = ts.as_bytes().to_vec();
    if tsv.len() % 2 == 1 {
        tsv.push(0);
    }
    let mut meta = explicit(0x0002_0010, b"UI", &tsv);
    meta.extend_from_slice(meta_extra);
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    out.extend(explicit(
        0x0002_0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    ));
    out.extend(meta);
    out.extend_from_slice(dataset);
    out
}

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

fn parse_err(data: &[u8], limits: &Limits) -> dicomscrub_core::ParseError {
    let mut s: &[u8] = data;
    match parse::parse(&mut s, limits) {
        Ok(_) => panic!("parsed"),
        Err(Error::Parse(p)) => p,
        Err(e) => panic!("not a parse error: {e}"),
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Found by the `rewrite` fuzz target (tests/data/fuzz/rewrite-implicit-first.dcm): an explicit
/// VR data set whose first element is removed and whose next one was read as implicit VR (its VR
/// bytes are not letters, as pydicom allows) came out starting with an implicit element, so the
/// output was read as implicit VR throughout and the elements after it were garbled.
#[test]
fn implicit_element_never_becomes_first_of_an_explicit_data_set() {
    let mut ds = explicit(0x0008_0050, b"SH", b"ACC1");
    ds.extend(implicit(0x0010_0010, b"Doe^Jane"));
    ds.extend(explicit(0x0010_0020, b"LO", b"PID1"));
    let file = part10(&[], &ds, EXPLICIT_LE);
    let remove = Plan::from_json(
        r#"{"version":1,"tags":{"00080050":{"action":"remove"}}}"#,
        b"k",
    )
    .unwrap();
    let e = anonymize_bytes(&file, &remove, &Limits::default()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("element (0010,0010) at offset 0x"), "{msg}");
    assert!(msg.contains("would be written first"), "{msg}");
    assert_eq!(e.kind(), "InvalidDicomError");

    // Kept first element: the mixed data set is written back and reads the same.
    let empty = Plan::from_json(
        r#"{"version":1,"tags":{"00100020":{"action":"empty"}}}"#,
        b"k",
    )
    .unwrap();
    let (out, _) = anonymize_bytes(&file, &empty, &Limits::default()).unwrap();
    let mut s: &[u8] = &out;
    let p = parse::parse(&mut s, &Limits::default()).unwrap();
    let tags: Vec<u32> = p.dataset.elements.iter().map(|e| e.tag.0).collect();
    assert_eq!(tags, [0x0008_0050, 0x0010_0010, 0x0010_0020]);
}

/// The committed crash file itself.
#[test]
fn fuzz_regression_files_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/fuzz");
    let plan = Plan::from_json(
        r#"{"version":1,"tags":{"00100010":{"action":"empty"}},"private":{"default":{"action":"remove"}},"unknown_public":{"action":"remove"},"vrs":{"UI":{"action":"uid"}}}"#,
        b"k",
    )
    .unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/data/fuzz") {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|x| x != "dcm") {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        if let Ok((out, _)) = anonymize_bytes(&data, &plan, &Limits::default()) {
            let mut s: &[u8] = &out;
            parse::parse(&mut s, &Limits::default())
                .unwrap_or_else(|e| panic!("{}: the output does not parse: {e}", p.display()));
        }
        n += 1;
    }
    assert!(n > 0);
}

#[test]
fn stray_item_delimiter_at_top_level_is_refused_when_elements_follow() {
    let mut ds = explicit(0x0010_0010, b"PN", b"Doe^Jane");
    let at = (132 + 12 + 20 + 8 + ds.len()) as u64;
    ds.extend(implicit(0xFFFE_E00D, b""));
    let mut tail = ds.clone();
    tail.extend(explicit(0x7FE0_0010, b"OB", &[0; 16]));
    let p = parse_err(&part10(&[], &tail, EXPLICIT_LE), &Limits::default());
    assert_eq!(p.kind, ParseErrorKind::UnexpectedDelimiter);
    assert_eq!(p.offset, at);
    // A delimiter at the very end (pydicom stops there too) ends the data set.
    let mut s: &[u8] = &part10(&[], &ds, EXPLICIT_LE);
    let parsed = parse::parse(&mut s, &Limits::default()).unwrap();
    assert_eq!(parsed.dataset.elements.len(), 1);
}

#[test]
fn header_size_limit() {
    let big = explicit(0x0002_0102, b"OB", &vec![7u8; 4096]);
    let file = part10(
        &big,
        &explicit(0x0010_0010, b"PN", b"Doe^Jane"),
        EXPLICIT_LE,
    );
    let limits = Limits {
        max_header: 1024,
        ..Limits::default()
    };
    let p = parse_err(&file, &limits);
    assert_eq!(p.kind, ParseErrorKind::HeaderTooLarge { limit: 1024 });
    assert_eq!(p.tag.map(|t| t.0), Some(0x0002_0102));
    let msg = Error::Parse(p).to_string();
    assert!(msg.contains("header larger than 1024 bytes at element (0002,0102), offset 0x"));
    let mut s: &[u8] = &file;
    assert!(parse::parse(&mut s, &Limits::default()).is_ok());
}

#[test]
fn element_count_limit() {
    let mut ds = Vec::new();
    for _ in 0..1001 {
        ds.extend(explicit(0x0009_1010, b"LO", b""));
    }
    let file = part10(&[], &ds, EXPLICIT_LE);
    let limits = Limits {
        max_elements: 1000,
        ..Limits::default()
    };
    let p = parse_err(&file, &limits);
    assert_eq!(p.kind, ParseErrorKind::TooManyElements { limit: 1000 });
    assert!(Error::Parse(p)
        .to_string()
        .contains("more than 1000 elements"));
}

#[test]
fn inflate_size_and_ratio_limits() {
    let mut ds = explicit(0x0010_0010, b"PN", b"Doe^Jane");
    ds.extend(explicit(0x0009_1010, b"OB", &vec![0u8; 4 << 20]));
    let body = deflate(&ds);
    let file = part10(&[], &body, DEFLATED);
    // size: 1 MiB at most
    let limits = Limits {
        max_inflated: 1 << 20,
        ..Limits::default()
    };
    let p = parse_err(&file, &limits);
    assert_eq!(p.kind, ParseErrorKind::InflateLimit { limit: 1 << 20 });
    assert!(Error::Parse(p)
        .to_string()
        .contains("refused as a deflate bomb"));
    // ratio: 4 MiB from ~4 KiB is far past 200:1 once past the floor
    let limits = Limits {
        ratio_floor: 64 << 10,
        ..Limits::default()
    };
    let p = parse_err(&file, &limits);
    let cap = (body.len() as u64 * 200).max(64 << 10);
    assert_eq!(p.kind, ParseErrorKind::InflateLimit { limit: cap });
    // within the limits it inflates
    let mut s: &[u8] = &file;
    let parsed = parse::parse(&mut s, &Limits::default()).unwrap();
    assert_eq!(parsed.inflated.unwrap().len(), ds.len());
}

#[test]
fn truncated_deflate_stream_is_refused() {
    let ds = explicit(0x0020_4000, b"LT", "a comment ".repeat(100).as_bytes());
    let body = deflate(&ds);
    let file = part10(&[], &body[..body.len() / 2], DEFLATED);
    let p = parse_err(&file, &Limits::default());
    assert!(matches!(p.kind, ParseErrorKind::InflateFailed(_)), "{p:?}");
}

#[test]
fn nesting_limit_names_the_sequence_and_offset() {
    let mut inner = Vec::new();
    for _ in 0..10 {
        let item = implicit(0xFFFE_E000, &inner);
        inner = explicit(0x0008_1115, b"SQ", &item);
    }
    let file = part10(&[], &inner, EXPLICIT_LE);
    let limits = Limits {
        max_depth: 5,
        ..Limits::default()
    };
    let p = parse_err(&file, &limits);
    assert_eq!(p.kind, ParseErrorKind::NestingTooDeep { limit: 5 });
    assert_eq!(p.tag.map(|t| t.0), Some(0x0008_1115));
    let mut s: &[u8] = &file;
    assert!(parse::parse(&mut s, &Limits::default()).is_ok());
}

/// Found by the `rewrite` fuzz target (tests/data/fuzz/rewrite-deflated-no-sop-class.dcm): a
/// deflated file whose File Meta lacks (0002,0002). `prepare_bytes` moves the inflated buffer out
/// of the parsed file before rewriting, so the writer took the data set's SOP Class UID offset
/// (in the inflated stream) as a file offset: "read past the end of the input", or, worse, the
/// bytes found there written as Media Storage SOP Class UID.
#[test]
fn deflated_file_without_media_storage_sop_class() {
    let mut ds = explicit(0x0008_0016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0");
    ds.extend(explicit(0x0010_0010, b"PN", b"Doe^Jane"));
    let file = part10(&[], &deflate(&ds), DEFLATED);
    let plan = Plan::from_json(
        r#"{"version":1,"tags":{"00100010":{"action":"empty"}}}"#,
        b"k",
    )
    .unwrap();
    let (out, _) = anonymize_bytes(&file, &plan, &Limits::default()).unwrap();
    let mut s: &[u8] = &out;
    let p = parse::parse(&mut s, &Limits::default()).unwrap();
    let meta: Vec<u32> = p.meta.elements.iter().map(|e| e.tag.0).collect();
    assert!(!meta.contains(&0x0002_0002), "{meta:x?}");
    // and the fuzzer's file
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/fuzz/rewrite-deflated-no-sop-class.dcm");
    let data = std::fs::read(path).unwrap();
    let (out, _) = anonymize_bytes(&data, &plan, &Limits::default()).unwrap();
    let mut s: &[u8] = &out;
    parse::parse(&mut s, &Limits::default()).unwrap();
}
