//! The element tree of a file as plain data (for `dicomscrub dump` and the tests that compare
//! the reader with pydicom).

use crate::charset::Charset;
use crate::error::Result;
use crate::parse::{self, DataSet, Kind, Limits, ParsedFile};
use crate::rewrite::decode;
use crate::source::Source;
use crate::tag;
use crate::vr::VR;

/// Values above this size are not copied into the dump (their length and offset are).
pub const MAX_DUMP_VALUE: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct DumpElement {
    pub tag: u32,
    pub vr: VR,
    pub offset: u64,
    pub length: Option<u32>,
    pub value: Option<Vec<u8>>,
    pub text: Option<String>,
    pub items: Option<Vec<Vec<DumpElement>>>,
    pub encapsulated: bool,
    pub big_endian: bool,
}

#[derive(Debug, Clone)]
pub struct Dump {
    pub transfer_syntax: String,
    pub has_preamble: bool,
    pub meta: Vec<DumpElement>,
    pub dataset: Vec<DumpElement>,
}

pub fn dump_bytes(data: &[u8], limits: &Limits) -> Result<Dump> {
    let mut src: &[u8] = data;
    let parsed = parse::parse(&mut src, limits)?;
    let mut file_src: &[u8] = data;
    let meta = tree(
        &parsed.meta,
        None,
        &mut file_src,
        &Charset::default_repertoire(),
    )?;
    let mut body: &[u8] = parsed.inflated.as_deref().unwrap_or(data);
    let dataset = tree(
        &parsed.dataset,
        None,
        &mut body,
        &Charset::default_repertoire(),
    )?;
    Ok(Dump {
        transfer_syntax: parsed.transfer_syntax.uid.clone(),
        has_preamble: parsed.has_preamble,
        meta,
        dataset,
    })
}

/// The parsed index itself (for callers that only need offsets).
pub fn index(data: &[u8], limits: &Limits) -> Result<ParsedFile> {
    let mut src: &[u8] = data;
    parse::parse(&mut src, limits)
}

fn tree(
    ds: &DataSet,
    parent: Option<usize>,
    src: &mut dyn Source,
    inherited: &Charset,
) -> Result<Vec<DumpElement>> {
    let cs = match ds.find(parent, tag::SPECIFIC_CHARACTER_SET) {
        Some(i) => {
            let (o, n) = ds.elements[i].value_range();
            Charset::from_value(&src.read_vec(o, n)?)
        }
        None => inherited.clone(),
    };
    let mut out = Vec::new();
    for i in ds.children(parent) {
        let e = &ds.elements[i];
        let mut d = DumpElement {
            tag: e.tag.0,
            vr: e.vr,
            offset: e.header_offset,
            length: (!e.undefined_length()).then_some(e.length),
            value: None,
            text: None,
            items: None,
            encapsulated: e.kind == Kind::Encapsulated,
            big_endian: e.big_endian,
        };
        match e.kind {
            Kind::Sequence => {
                let mut items = Vec::new();
                for item in ds.children(Some(i)) {
                    items.push(tree(ds, Some(item), src, &cs)?);
                }
                d.items = Some(items);
            }
            Kind::Value if u64::from(e.length) <= MAX_DUMP_VALUE => {
                let (o, n) = e.value_range();
                let raw = src.read_vec(o, n)?;
                if e.vr.is_string() {
                    d.text = Some(decode(&raw, e.vr, &cs));
                }
                d.value = Some(raw);
            }
            _ => {}
        }
        out.push(d);
    }
    Ok(out)
}
