//! Checks shared by the fuzz targets (`fuzz_targets/*.rs`) and by the replay of committed
//! crash files. Each `check_*` panics when an invariant breaks; libFuzzer reports the panic.

use std::io::{Seek, Write};
use std::sync::{Mutex, OnceLock};

use dicomscrub_core::parse::{self, DataSet, ParsedFile};
use dicomscrub_core::source::FileSource;
use dicomscrub_core::{Limits, Plan};

/// The default limits with smaller budgets, so that a deflate or element-count bomb costs the
/// fuzzer milliseconds, not seconds (the limit logic is the same; the defaults have their tests).
pub fn limits() -> Limits {
    Limits {
        max_elements: 100_000,
        max_inflated: 4 << 20,
        ratio_floor: 256 << 10,
        ..Limits::default()
    }
}

pub const KEY: &[u8] = b"dicomscrub fuzz key";

fn identity_plan() -> &'static Plan {
    static P: OnceLock<Plan> = OnceLock::new();
    P.get_or_init(|| Plan::from_json(r#"{"version":1}"#, KEY).expect("identity plan"))
}

/// A basic-profile-like plan: UIDs mapped, names emptied, the ID pseudonymized, dates shifted,
/// private elements and curves removed, text cleaned, elements inserted.
pub const BASIC_LIKE_PLAN: &str = r#"{
  "version": 1,
  "tags": {
    "00100010": {"action": "empty"},
    "00101001": {"action": "empty"},
    "00100020": {"action": "pseudonym", "prefix": "ID-"},
    "00100030": {"action": "shift_date"},
    "00080020": {"action": "shift_date"},
    "00080021": {"action": "shift_date"},
    "0008002A": {"action": "shift_date"},
    "00080018": {"action": "uid"},
    "00081030": {"action": "clean"},
    "00081040": {"action": "dummy"},
    "00080080": {"action": "remove"},
    "00080050": {"action": "replace", "value": "ACC"},
    "00081110": {"action": "clean"}
  },
  "private": {"default": {"action": "remove"}},
  "masks": [{"mask": "FF000000", "value": "60000000", "rule": {"action": "remove"}}],
  "vrs": {"UI": {"action": "uid"}},
  "unknown_public": {"action": "remove"},
  "dummies": {"PN": "ANON", "LO": "ANON", "DA": "19000101"},
  "identifying": ["00100020", "00080050"],
  "date_shift": {"source": "00100020", "max_days": 3652},
  "insert": [
    {"tag": "00120062", "vr": "CS", "value": "YES"},
    {"tag": "00120064", "vr": "SQ", "items": [[{"tag": "00080100", "vr": "SH", "value": "113100"}]]}
  ]
}"#;

pub fn basic_plan() -> &'static Plan {
    static P: OnceLock<Plan> = OnceLock::new();
    P.get_or_init(|| Plan::from_json(BASIC_LIKE_PLAN, KEY).expect("basic-like plan"))
}

const PATIENT_NAME: u32 = 0x0010_0010;

/// One temp file reused by every run of a process: the file reader (a sliding window over the
/// file) must index exactly what the slice reader does.
fn scratch() -> &'static Mutex<std::fs::File> {
    static F: OnceLock<Mutex<std::fs::File>> = OnceLock::new();
    F.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("dicomscrub-fuzz-{}.bin", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("scratch file");
        let _ = std::fs::remove_file(&path); // unlinked: gone when the process ends
        Mutex::new(f)
    })
}

fn parse_via_file(data: &[u8], limits: &Limits) -> dicomscrub_core::Result<ParsedFile> {
    let f = scratch()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut w: &std::fs::File = &f;
    w.set_len(0).expect("truncate");
    w.rewind().expect("rewind");
    w.write_all(data).expect("write scratch");
    let mut src = FileSource::new(&f).expect("file source");
    parse::parse(&mut src, limits)
}

fn same_index(a: &DataSet, b: &DataSet) -> bool {
    a.elements.len() == b.elements.len()
        && a.elements.iter().zip(&b.elements).all(|(x, y)| {
            x.tag == y.tag
                && x.vr == y.vr
                && x.kind == y.kind
                && x.header_offset == y.header_offset
                && x.length == y.length
                && x.end == y.end
                && x.subtree_end == y.subtree_end
        })
}

/// Any bytes: the reader returns Ok or Err, never panics; the slice and file readers agree; an
/// index is a well-formed tree inside the input; `dump` succeeds on what parses; an identity plan
/// gives back the input bytes.
pub fn check_parse(data: &[u8]) {
    let limits = limits();
    let mut s: &[u8] = data;
    let parsed = parse::parse(&mut s, &limits);
    let via_file = parse_via_file(data, &limits);
    match (&parsed, &via_file) {
        (Ok(a), Ok(b)) => {
            assert!(
                same_index(&a.meta, &b.meta),
                "meta index differs (slice vs file)"
            );
            assert!(
                same_index(&a.dataset, &b.dataset),
                "data set index differs (slice vs file)"
            );
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "errors differ"),
        (a, b) => panic!("slice and file readers disagree: {a:?} vs {b:?}"),
    }
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty());
            assert!(!msg.contains("internal error"), "{msg}");
            return;
        }
    };
    let body_len = parsed
        .inflated
        .as_ref()
        .map_or(data.len() as u64, |v| v.len() as u64);
    check_tree(&parsed.dataset, body_len);
    check_tree(&parsed.meta, data.len() as u64);
    if let Err(e) = dicomscrub_core::dump::dump_bytes(data, &limits) {
        panic!("parse succeeded but dump failed: {e}");
    }
    let (out, _) = dicomscrub_core::anonymize_bytes(data, identity_plan(), &limits)
        .unwrap_or_else(|e| panic!("identity plan failed on a parsed file: {e}"));
    assert_eq!(out, data, "identity plan changed the bytes");
}

/// Entries in document order, children within their parent, every range inside the stream.
fn check_tree(ds: &DataSet, len: u64) {
    let n = ds.elements.len();
    for (i, e) in ds.elements.iter().enumerate() {
        assert!(e.header_offset < e.value_offset.max(e.header_offset + 1));
        assert!(
            e.value_offset <= e.end && e.end <= len,
            "element {i} ends past the input"
        );
        let se = e.subtree_end as usize;
        assert!(se > i && se <= n, "bad subtree end at {i}");
        for c in i + 1..se {
            let child = &ds.elements[c];
            assert!(child.header_offset >= e.value_offset && child.end <= e.end);
        }
    }
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || hay.len() < needle.len() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn trim(v: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut b = v.len();
    while a < b && matches!(v[a], b' ' | 0) {
        a += 1;
    }
    while b > a && matches!(v[b - 1], b' ' | 0) {
        b -= 1;
    }
    &v[a..b]
}

/// Parse, rewrite with the basic-like plan, parse the output again: it must parse, hold no
/// private element and no non-empty Patient's Name at any depth, and the original names' bytes
/// may only remain where the input had them outside Patient's Name.
pub fn check_rewrite(data: &[u8]) {
    let limits = limits();
    let mut s: &[u8] = data;
    let Ok(parsed) = parse::parse(&mut s, &limits) else {
        return;
    };
    let body: &[u8] = parsed.inflated.as_deref().unwrap_or(data);
    let names: Vec<Vec<u8>> = parsed
        .dataset
        .elements
        .iter()
        .filter(|e| e.tag.0 == PATIENT_NAME && e.kind == parse::Kind::Value)
        .map(|e| {
            let (o, n) = e.value_range();
            trim(&body[o as usize..o as usize + n]).to_vec()
        })
        .collect();
    let (out, _) = match dicomscrub_core::anonymize_bytes(data, basic_plan(), &limits) {
        Ok(r) => r,
        // the one refusal of the writer (see ParseErrorKind::ImplicitFirst)
        Err(dicomscrub_core::Error::Parse(p))
            if p.kind == dicomscrub_core::ParseErrorKind::ImplicitFirst =>
        {
            return
        }
        Err(e) => panic!("rewrite of a parsed file failed: {e}"),
    };
    let mut o: &[u8] = &out;
    let re =
        parse::parse(&mut o, &limits).unwrap_or_else(|e| panic!("the output does not parse: {e}"));
    let obody: &[u8] = re.inflated.as_deref().unwrap_or(&out);
    for e in &re.dataset.elements {
        assert!(
            !e.tag.is_private(),
            "private element {} in the output",
            e.tag
        );
        if e.tag.0 == PATIENT_NAME {
            let (off, n) = e.value_range();
            assert!(
                e.kind != parse::Kind::Value
                    || trim(&obody[off as usize..off as usize + n]).is_empty(),
                "Patient's Name not emptied at offset {off}"
            );
        }
    }
    // Only names that new bytes (headers, pseudonyms, UIDs, dummies: upper case, digits, NULs)
    // cannot spell by chance: printable, with lower-case letters.
    let checkable = |n: &&Vec<u8>| {
        n.len() >= 8
            && n.iter().all(|b| (0x20..0x7f).contains(b))
            && n.iter().filter(|b| b.is_ascii_lowercase()).count() >= 2
    };
    for name in names.iter().filter(checkable) {
        let in_names = names.iter().map(|n| count(n, name)).sum::<usize>();
        let allowed = count(body, name).saturating_sub(in_names);
        assert!(
            count(obody, name) <= allowed,
            "an original Patient's Name survives in the output"
        );
    }
}
