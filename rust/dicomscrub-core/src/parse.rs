//! The reader: scans a DICOM stream into an index of elements (offsets and lengths over the
//! input bytes). Values are not decoded here; large values are skipped, never read.
//!
//! Encoding detection follows pydicom's reader, so that what we index is what pydicom reads:
//! preamble optional, File Meta optional, the first element of each data set may switch between
//! explicit and implicit VR, and an explicit-VR element whose VR bytes are not letters is read as
//! implicit.

use std::io::Read;

use crate::dictionary;
use crate::error::{ParseError, ParseErrorKind, Result};
use crate::source::Source;
use crate::tag::{self, Tag};
use crate::transfer_syntax::TransferSyntax;
use crate::vr::VR;

pub const UNDEFINED: u32 = 0xFFFF_FFFF;

/// How an element header was written, so an edited element is written back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderForm {
    /// tag, 4-byte length
    Implicit,
    /// tag, VR, 2-byte length
    Explicit16,
    /// tag, VR, 2 reserved bytes, 4-byte length
    Explicit32,
}

impl HeaderForm {
    pub fn header_len(self) -> u64 {
        match self {
            HeaderForm::Implicit | HeaderForm::Explicit16 => 8,
            HeaderForm::Explicit32 => 12,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A plain value of `length` bytes.
    Value,
    /// A sequence; its children are `Item`s.
    Sequence,
    /// An item of a sequence; its children are elements.
    Item,
    /// Encapsulated pixel data: fragments up to the sequence delimiter, walked and kept verbatim.
    Encapsulated,
}

/// One entry of the index. Entries are in document order; the descendants of entry `i` are
/// `i + 1 .. subtree_end`.
#[derive(Clone, Debug)]
pub struct Element {
    pub tag: Tag,
    /// The VR used for rules and values (explicit as read, else the dictionary's).
    pub vr: VR,
    /// The VR bytes as they appear in the header (differs from `vr` for unknown VRs).
    pub vr_raw: [u8; 2],
    pub form: HeaderForm,
    pub big_endian: bool,
    pub kind: Kind,
    pub header_offset: u64,
    pub value_offset: u64,
    pub length: u32,
    /// End of the element, including a closing delimiter.
    pub end: u64,
    pub subtree_end: u32,
    pub depth: u16,
}

impl Element {
    pub fn undefined_length(&self) -> bool {
        self.length == UNDEFINED
    }
    /// The value bytes' range (for `Value` elements).
    pub fn value_range(&self) -> (u64, usize) {
        (
            self.value_offset,
            if self.undefined_length() {
                0
            } else {
                self.length as usize
            },
        )
    }
}

/// Limits against hostile input; each gives a clear error when exceeded.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_elements: usize,
    /// Inflated size of a deflated data set.
    pub max_inflated: u64,
    /// Inflated / deflated size ratio, checked past `ratio_floor` bytes.
    pub max_inflate_ratio: u64,
    pub ratio_floor: u64,
    /// Size of the File Meta Information (its values are read into memory).
    pub max_header: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_elements: 2_000_000,
            max_inflated: 2 << 30,
            max_inflate_ratio: 200,
            ratio_floor: 64 << 20,
            max_header: 1 << 20,
        }
    }
}

/// The index of one data set stream.
#[derive(Clone, Debug, Default)]
pub struct DataSet {
    pub elements: Vec<Element>,
}

impl DataSet {
    /// Children of entry `parent`, or the top-level elements for `None`.
    pub fn children(&self, parent: Option<usize>) -> Children<'_> {
        let (next, end) = match parent {
            Some(p) => (p + 1, self.elements[p].subtree_end as usize),
            None => (0, self.elements.len()),
        };
        Children {
            ds: self,
            next,
            end,
        }
    }

    /// Direct child of `parent` with this tag.
    pub fn find(&self, parent: Option<usize>, tag: Tag) -> Option<usize> {
        self.children(parent).find(|&i| self.elements[i].tag == tag)
    }
}

pub struct Children<'a> {
    ds: &'a DataSet,
    next: usize,
    end: usize,
}

impl Iterator for Children<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        self.next = self.ds.elements[i].subtree_end as usize;
        Some(i)
    }
}

/// A parsed file: File Meta and data set indexes.
#[derive(Debug)]
pub struct ParsedFile {
    /// 128-byte preamble and `DICM` present.
    pub has_preamble: bool,
    /// File Meta elements (offsets in the file).
    pub meta: DataSet,
    /// Offset in the file where the data set starts.
    pub dataset_offset: u64,
    pub transfer_syntax: TransferSyntax,
    /// Whether the transfer syntax came from the File Meta (else detected).
    pub ts_from_meta: bool,
    /// Data set elements: offsets in the file, or in `inflated` for deflated syntaxes.
    pub dataset: DataSet,
    pub inflated: Option<Vec<u8>>,
    /// Where the data set ends (bytes after it, fewer than one element header, are dropped).
    pub dataset_end: u64,
}

/// Parse a whole file or byte stream.
pub fn parse<S: Source>(src: &mut S, limits: &Limits) -> Result<ParsedFile> {
    let len = src.len();
    if len == 0 {
        return Err(not_dicom(0, "empty file").into());
    }
    let mut magic = [0u8; 4];
    let has_preamble = len >= 132 && {
        src.read_at(128, &mut magic)?;
        &magic == b"DICM"
    };
    let start = if has_preamble { 132 } else { 0 };
    if !has_preamble {
        check_legacy_start(src)?;
    }

    let mut meta_parser = Parser::new(src, limits, false);
    let dataset_offset = meta_parser.parse_meta(start)?;
    let meta = DataSet {
        elements: meta_parser.nodes,
    };

    let ts_value = match meta.find(None, tag::TRANSFER_SYNTAX_UID) {
        Some(i) => {
            let e = &meta.elements[i];
            let (off, n) = e.value_range();
            Some(String::from_utf8_lossy(&src.read_vec(off, n)?).into_owned())
        }
        None => None,
    };
    let ts_from_meta = ts_value.is_some();
    let transfer_syntax = match ts_value {
        Some(uid) => TransferSyntax::from_uid(&uid),
        None => detect_encoding(src, dataset_offset)?,
    };

    if transfer_syntax.deflated {
        let inflated = inflate(src, dataset_offset, limits)?;
        let mut mem: &[u8] = &inflated;
        let mut p = Parser::new(&mut mem, limits, true);
        let end = p.parse_top_level(0, &transfer_syntax)?;
        let dataset = DataSet { elements: p.nodes };
        return Ok(ParsedFile {
            has_preamble,
            meta,
            dataset_offset,
            transfer_syntax,
            ts_from_meta,
            dataset,
            inflated: Some(inflated),
            dataset_end: end,
        });
    }
    let mut p = Parser::new(src, limits, false);
    let end = p.parse_top_level(dataset_offset, &transfer_syntax)?;
    Ok(ParsedFile {
        has_preamble,
        meta,
        dataset_offset,
        transfer_syntax,
        ts_from_meta,
        dataset: DataSet { elements: p.nodes },
        inflated: None,
        dataset_end: end,
    })
}

fn not_dicom(offset: u64, why: &'static str) -> ParseError {
    ParseError {
        offset,
        tag: None,
        in_inflated: false,
        kind: ParseErrorKind::NotDicom(why),
    }
}

/// A file without preamble must start like a data set: an element of group 0002 (File Meta),
/// 0000/0004/0008 (legacy data sets), little or big endian. Anything else is not DICOM.
fn check_legacy_start<S: Source>(src: &mut S) -> Result<()> {
    let mut head = [0u8; 8];
    if src.read_at(0, &mut head).is_err() {
        return Err(not_dicom(0, "too short to hold a DICOM element").into());
    }
    let le = u16::from_le_bytes([head[0], head[1]]);
    let be = u16::from_be_bytes([head[0], head[1]]);
    let ok_group = |g: u16| matches!(g, 0x0000 | 0x0002 | 0x0004 | 0x0008);
    if !(ok_group(le) || ok_group(be)) {
        return Err(not_dicom(
            0,
            "no DICM prefix at offset 128 and no data set at offset 0",
        )
        .into());
    }
    // An all-zero start would be a (0000,0000) element of zero length, over and over.
    if head == [0u8; 8] {
        return Err(not_dicom(0, "no DICM prefix and the data begins with zeros").into());
    }
    Ok(())
}

/// pydicom's guess for data sets without a Transfer Syntax UID: explicit if the bytes where a VR
/// would be spell a VR, big endian if the first group read little endian is implausibly large.
fn detect_encoding<S: Source>(src: &mut S, offset: u64) -> Result<TransferSyntax> {
    let mut peek = [0u8; 6];
    if src.read_at(offset, &mut peek).is_err() {
        return Ok(TransferSyntax::detected(false, true));
    }
    let group = u16::from_le_bytes([peek[0], peek[1]]);
    let explicit = VR::from_bytes([peek[4], peek[5]]).is_some();
    let little = !(explicit && group >= 1024);
    Ok(TransferSyntax::detected(explicit, little))
}

fn inflate<S: Source>(src: &mut S, offset: u64, limits: &Limits) -> Result<Vec<u8>> {
    let compressed_len = src.len().saturating_sub(offset);
    let compressed = src.read_vec(offset, compressed_len as usize)?;
    let mut dec = flate2::read::DeflateDecoder::new(compressed.as_slice());
    let ratio_cap = compressed_len
        .saturating_mul(limits.max_inflate_ratio)
        .max(limits.ratio_floor);
    let cap = limits.max_inflated.min(ratio_cap);
    let mut out = Vec::with_capacity((compressed_len as usize).saturating_mul(4).min(64 << 20));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match dec.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                return Err(ParseError {
                    offset: offset + dec.total_in(),
                    tag: None,
                    in_inflated: false,
                    kind: ParseErrorKind::InflateFailed(e.to_string()),
                }
                .into())
            }
        };
        if n == 0 {
            break;
        }
        if (out.len() + n) as u64 > cap {
            return Err(ParseError {
                offset: offset + dec.total_in(),
                tag: None,
                in_inflated: false,
                kind: ParseErrorKind::InflateLimit { limit: cap },
            }
            .into());
        }
        out.extend_from_slice(&buf[..n]);
    }
    // flate2 reports a stream cut short as a clean end: a complete stream ends with a final
    // block, which the decoder only reaches when it consumed (nearly) all the input.
    if dec.total_in() == 0 && compressed_len > 0 || out.is_empty() && compressed_len > 2 {
        return Err(ParseError {
            offset,
            tag: None,
            in_inflated: false,
            kind: ParseErrorKind::InflateFailed("no data could be inflated".into()),
        }
        .into());
    }
    Ok(out)
}

/// Where a data set stops.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The top-level data set: until the end of the stream.
    TopLevel,
    /// File Meta: while the group is 0002.
    Meta,
    /// An item of defined length: until `end`.
    Defined(u64),
    /// An item of undefined length: until the item delimiter, within `limit`.
    Undefined(u64),
}

struct Parser<'s, S: Source> {
    src: &'s mut S,
    limits: &'s Limits,
    nodes: Vec<Element>,
    in_inflated: bool,
}

struct Header {
    tag: Tag,
    vr: VR,
    vr_raw: [u8; 2],
    form: HeaderForm,
    length: u32,
}

impl<'s, S: Source> Parser<'s, S> {
    fn new(src: &'s mut S, limits: &'s Limits, in_inflated: bool) -> Self {
        Parser {
            src,
            limits,
            nodes: Vec::new(),
            in_inflated,
        }
    }

    fn err(&self, offset: u64, tag: Option<Tag>, kind: ParseErrorKind) -> ParseError {
        ParseError {
            offset,
            tag,
            in_inflated: self.in_inflated,
            kind,
        }
    }

    fn read<const N: usize>(&mut self, offset: u64, tag: Option<Tag>) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        match self.src.read_at(offset, &mut b) {
            Ok(()) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                let available = self.src.len().saturating_sub(offset);
                Err(self
                    .err(
                        offset,
                        tag,
                        ParseErrorKind::Truncated {
                            declared: N as u64,
                            available,
                        },
                    )
                    .into())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn parse_meta(&mut self, start: u64) -> Result<u64> {
        let len = self.src.len();
        if len.saturating_sub(start) < 8 {
            return Ok(start);
        }
        let b: [u8; 2] = self.read(start, None)?;
        if u16::from_le_bytes(b) != 0x0002 {
            return Ok(start);
        }
        // The File Meta is explicit VR little endian; pydicom still honours an implicit one.
        let explicit = !self.first_element_is_implicit(start, true)?;
        let end = self.parse_dataset(start, Scope::Meta, explicit, true, 0)?;
        let limit = self.limits.max_header;
        if let Some(e) = self.nodes.iter().find(|e| e.end - start > limit) {
            let (offset, tag) = (e.header_offset, e.tag);
            return Err(self
                .err(offset, Some(tag), ParseErrorKind::HeaderTooLarge { limit })
                .into());
        }
        Ok(end)
    }

    fn parse_top_level(&mut self, start: u64, ts: &TransferSyntax) -> Result<u64> {
        let mut explicit = ts.explicit_vr;
        if self.src.len().saturating_sub(start) >= 6 {
            // pydicom switches the whole data set when its first element disagrees.
            explicit = !self.first_element_is_implicit(start, !ts.little_endian)?;
            if !ts.little_endian && !explicit {
                explicit = ts.explicit_vr;
            }
        }
        self.parse_dataset(start, Scope::TopLevel, explicit, ts.little_endian, 0)
    }

    fn first_element_is_implicit(&mut self, offset: u64, _big: bool) -> Result<bool> {
        let mut b = [0u8; 6];
        if self.src.read_at(offset, &mut b).is_err() {
            return Ok(false);
        }
        Ok(!(b[4] > 0x40 && b[4] < 0x5B && b[5] > 0x40 && b[5] < 0x5B))
    }

    fn read_header(&mut self, pos: u64, explicit: bool, little: bool) -> Result<Header> {
        let b: [u8; 8] = self.read(pos, None)?;
        let u16_at = |i: usize| {
            if little {
                u16::from_le_bytes([b[i], b[i + 1]])
            } else {
                u16::from_be_bytes([b[i], b[i + 1]])
            }
        };
        let u32_at = |i: usize| {
            let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
            if little {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        };
        let tag = Tag::new(u16_at(0), u16_at(2));
        let implicit = |tag: Tag| Header {
            tag,
            vr: dictionary::implicit_vr(tag),
            vr_raw: dictionary::implicit_vr(tag).as_bytes(),
            form: HeaderForm::Implicit,
            length: u32_at(4),
        };
        if !explicit || tag.group() == 0xFFFE {
            return Ok(implicit(tag));
        }
        let raw = [b[4], b[5]];
        if let Some(vr) = VR::from_bytes(raw) {
            if vr.has_long_length() {
                let l: [u8; 4] = self.read(pos + 8, Some(tag))?;
                let length = if little {
                    u32::from_le_bytes(l)
                } else {
                    u32::from_be_bytes(l)
                };
                // pydicom reads a public element wrongly written as UN with its dictionary VR
                // (values under 64 KiB); rules and values must see the same VR.
                let vr = match dictionary::lookup(tag) {
                    Some((known, _))
                        if vr == VR::UN
                            && !tag.is_private()
                            && length < 0xFFFF
                            && known != VR::UN =>
                    {
                        known
                    }
                    _ => vr,
                };
                return Ok(Header {
                    tag,
                    vr,
                    vr_raw: raw,
                    form: HeaderForm::Explicit32,
                    length,
                });
            }
            return Ok(Header {
                tag,
                vr,
                vr_raw: raw,
                form: HeaderForm::Explicit16,
                length: u32::from(u16_at(6)),
            });
        }
        if raw < *b"AA" || raw > *b"ZZ" {
            // Not letters: an implicit VR element inside an explicit data set (pydicom does this).
            return Ok(implicit(tag));
        }
        // Letters but no VR we know: pydicom reads a 2-byte length and the bytes as they are.
        Ok(Header {
            tag,
            vr: VR::UN,
            vr_raw: raw,
            form: HeaderForm::Explicit16,
            length: u32::from(u16_at(6)),
        })
    }

    fn push(&mut self, e: Element) -> Result<usize> {
        if self.nodes.len() >= self.limits.max_elements {
            return Err(self
                .err(
                    e.header_offset,
                    Some(e.tag),
                    ParseErrorKind::TooManyElements {
                        limit: self.limits.max_elements,
                    },
                )
                .into());
        }
        self.nodes.push(e);
        Ok(self.nodes.len() - 1)
    }

    /// Parse the elements of one data set from `start`; returns where it ended (after the item
    /// delimiter for undefined-length items).
    fn parse_dataset(
        &mut self,
        start: u64,
        scope: Scope,
        explicit: bool,
        little: bool,
        depth: usize,
    ) -> Result<u64> {
        let src_len = self.src.len();
        let limit = match scope {
            Scope::TopLevel | Scope::Meta => src_len,
            Scope::Defined(end) | Scope::Undefined(end) => end,
        };
        let mut pos = start;
        // Private creators of this data set, for the VRs of pydicom's private dictionary.
        let mut creators: Vec<(Tag, String)> = Vec::new();
        loop {
            match scope {
                Scope::Defined(end) if pos >= end => return Ok(pos),
                Scope::TopLevel | Scope::Meta if limit.saturating_sub(pos) < 8 => return Ok(pos),
                _ => {}
            }
            if scope == Scope::Meta {
                let g: [u8; 2] = self.read(pos, None)?;
                if u16::from_le_bytes(g) != 0x0002 {
                    return Ok(pos);
                }
            }
            if limit.saturating_sub(pos) < 8 {
                let kind = if limit == src_len {
                    ParseErrorKind::Truncated {
                        declared: 8,
                        available: limit.saturating_sub(pos),
                    }
                } else {
                    ParseErrorKind::OverrunsContainer {
                        declared: 8,
                        available: limit.saturating_sub(pos),
                    }
                };
                return Err(self.err(pos, None, kind).into());
            }
            let mut h = self.read_header(pos, explicit, little)?;
            let tag = h.tag;
            // pydicom reads a private element of a known creator, implicit or written as UN,
            // with its private dictionary VR (rules and values must see the same VR).
            if tag.is_private()
                && (h.form == HeaderForm::Implicit || h.vr_raw == *b"UN")
                && !tag.is_private_creator()
            {
                let creator = tag
                    .private_creator_tag()
                    .and_then(|c| creators.iter().find(|(t, _)| *t == c))
                    .map(|(_, v)| v.as_str());
                if let Some(vr) = creator.and_then(|c| dictionary::private_vr(tag, c)) {
                    let is_items = vr != VR::SQ
                        || h.length == UNDEFINED
                        || h.length == 0
                        || self.starts_with_item(pos + h.form.header_len(), little);
                    if vr != VR::UN && is_items {
                        h.vr = vr;
                    }
                }
            }
            if tag == tag::ITEM_DELIMITATION {
                match scope {
                    Scope::Undefined(_) => return Ok(pos + 8),
                    // pydicom ends the data set here too; but elements after it would be lost
                    // without a word: refused unless less than a header follows.
                    Scope::TopLevel if limit.saturating_sub(pos + 8) < 8 => return Ok(pos),
                    _ => {
                        return Err(self
                            .err(pos, Some(tag), ParseErrorKind::UnexpectedDelimiter)
                            .into())
                    }
                }
            }
            if tag == tag::SEQUENCE_DELIMITATION || tag == tag::ITEM {
                return Err(self
                    .err(pos, Some(tag), ParseErrorKind::UnexpectedDelimiter)
                    .into());
            }
            if tag.group() == 0x0002 && scope != Scope::Meta && depth == 0 {
                return Err(self
                    .err(pos, Some(tag), ParseErrorKind::MetaElementInDataSet)
                    .into());
            }
            let value_offset = pos + h.form.header_len();
            let idx = self.push(Element {
                tag,
                vr: h.vr,
                vr_raw: h.vr_raw,
                form: h.form,
                big_endian: !little,
                kind: Kind::Value,
                header_offset: pos,
                value_offset,
                length: h.length,
                end: value_offset,
                subtree_end: 0,
                depth: depth as u16,
            })?;
            let end = if h.length == UNDEFINED {
                self.parse_undefined(idx, explicit, little, depth, limit)?
            } else {
                let declared = u64::from(h.length);
                let value_end = value_offset + declared;
                if value_end > limit {
                    let available = limit.saturating_sub(value_offset);
                    let kind = if limit == src_len {
                        ParseErrorKind::Truncated {
                            declared,
                            available,
                        }
                    } else {
                        ParseErrorKind::OverrunsContainer {
                            declared,
                            available,
                        }
                    };
                    return Err(self.err(pos, Some(tag), kind).into());
                }
                if h.vr == VR::SQ {
                    self.nodes[idx].kind = Kind::Sequence;
                    self.parse_items(idx, value_offset, Some(value_end), explicit, little, depth)?;
                }
                value_end
            };
            self.nodes[idx].end = end;
            self.nodes[idx].subtree_end = self.nodes.len() as u32;
            if tag.is_private_creator() && h.length != UNDEFINED && h.length <= 256 {
                let (off, n) = self.nodes[idx].value_range();
                let raw = self.src.read_vec(off, n)?;
                let v = String::from_utf8_lossy(&raw)
                    .trim_end_matches([' ', '\0'])
                    .to_string();
                creators.push((tag, v));
            }
            pos = end;
        }
    }

    fn starts_with_item(&mut self, offset: u64, little: bool) -> bool {
        matches!(self.item_header(offset, little), Ok((t, _)) if t == tag::ITEM)
    }

    /// An element of undefined length: encapsulated pixel data, or a sequence.
    fn parse_undefined(
        &mut self,
        idx: usize,
        explicit: bool,
        little: bool,
        depth: usize,
        limit: u64,
    ) -> Result<u64> {
        let e = self.nodes[idx].clone();
        let is_pixel = matches!(
            e.tag,
            tag::PIXEL_DATA | tag::FLOAT_PIXEL_DATA | tag::DOUBLE_FLOAT_PIXEL_DATA
        );
        if is_pixel && e.vr != VR::SQ {
            self.nodes[idx].kind = Kind::Encapsulated;
            return self.walk_fragments(&e, little, limit);
        }
        if e.vr != VR::SQ && e.vr != VR::UN {
            // A known non-sequence VR with undefined length: only items may follow.
            let (t, _) = self.item_header(e.value_offset, little)?;
            if t != tag::ITEM && t != tag::SEQUENCE_DELIMITATION {
                return Err(self
                    .err(
                        e.header_offset,
                        Some(e.tag),
                        ParseErrorKind::InvalidValue(
                            "undefined length on an element that is neither a sequence nor pixel data",
                        ),
                    )
                    .into());
            }
        }
        self.nodes[idx].kind = Kind::Sequence;
        self.parse_items(idx, e.value_offset, None, explicit, little, depth)
    }

    fn item_header(&mut self, pos: u64, little: bool) -> Result<(Tag, u32)> {
        let b: [u8; 8] = self.read(pos, None)?;
        Ok(if little {
            (
                Tag::new(
                    u16::from_le_bytes([b[0], b[1]]),
                    u16::from_le_bytes([b[2], b[3]]),
                ),
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            )
        } else {
            (
                Tag::new(
                    u16::from_be_bytes([b[0], b[1]]),
                    u16::from_be_bytes([b[2], b[3]]),
                ),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            )
        })
    }

    /// Encapsulated pixel data: items (basic offset table, fragments) then the delimiter.
    fn walk_fragments(&mut self, e: &Element, little: bool, limit: u64) -> Result<u64> {
        let mut pos = e.value_offset;
        loop {
            if limit.saturating_sub(pos) < 8 {
                return Err(self
                    .err(
                        pos,
                        Some(e.tag),
                        ParseErrorKind::Truncated {
                            declared: 8,
                            available: limit.saturating_sub(pos),
                        },
                    )
                    .into());
            }
            let (t, len) = self.item_header(pos, little)?;
            if t == tag::SEQUENCE_DELIMITATION {
                return Ok(pos + 8);
            }
            if t != tag::ITEM || len == UNDEFINED {
                return Err(self
                    .err(pos, Some(e.tag), ParseErrorKind::ExpectedItem { found: t })
                    .into());
            }
            let end = pos + 8 + u64::from(len);
            if end > limit {
                return Err(self
                    .err(
                        pos,
                        Some(e.tag),
                        ParseErrorKind::Truncated {
                            declared: u64::from(len),
                            available: limit.saturating_sub(pos + 8),
                        },
                    )
                    .into());
            }
            pos = end;
        }
    }

    fn parse_items(
        &mut self,
        seq: usize,
        start: u64,
        end: Option<u64>,
        explicit: bool,
        little: bool,
        depth: usize,
    ) -> Result<u64> {
        let seq_tag = self.nodes[seq].tag;
        if depth + 1 > self.limits.max_depth {
            return Err(self
                .err(
                    start,
                    Some(seq_tag),
                    ParseErrorKind::NestingTooDeep {
                        limit: self.limits.max_depth,
                    },
                )
                .into());
        }
        let src_len = self.src.len();
        let limit = end.unwrap_or(src_len);
        let mut pos = start;
        loop {
            if let Some(end) = end {
                if pos == end {
                    return Ok(pos);
                }
            }
            if limit.saturating_sub(pos) < 8 {
                let available = limit.saturating_sub(pos);
                let kind = if limit == src_len {
                    ParseErrorKind::Truncated {
                        declared: 8,
                        available,
                    }
                } else {
                    ParseErrorKind::OverrunsContainer {
                        declared: 8,
                        available,
                    }
                };
                return Err(self.err(pos, Some(seq_tag), kind).into());
            }
            let (t, len) = self.item_header(pos, little)?;
            if t == tag::SEQUENCE_DELIMITATION {
                if end.is_none() {
                    return Ok(pos + 8);
                }
                return Err(self
                    .err(pos, Some(t), ParseErrorKind::UnexpectedDelimiter)
                    .into());
            }
            if t != tag::ITEM {
                return Err(self
                    .err(
                        pos,
                        Some(seq_tag),
                        ParseErrorKind::ExpectedItem { found: t },
                    )
                    .into());
            }
            let value_offset = pos + 8;
            let item = self.push(Element {
                tag: t,
                vr: VR::UN,
                vr_raw: [0, 0],
                form: HeaderForm::Implicit,
                big_endian: !little,
                kind: Kind::Item,
                header_offset: pos,
                value_offset,
                length: len,
                end: value_offset,
                subtree_end: 0,
                depth: (depth + 1) as u16,
            })?;
            // pydicom: an item is implicit VR if its parent is, or if its first element is.
            let item_explicit =
                explicit && !self.first_element_is_implicit(value_offset, !little)?;
            let item_end = if len == UNDEFINED {
                self.parse_dataset(
                    value_offset,
                    Scope::Undefined(limit),
                    item_explicit,
                    little,
                    depth + 1,
                )?
            } else {
                let item_end = value_offset + u64::from(len);
                if item_end > limit {
                    let available = limit.saturating_sub(value_offset);
                    let kind = if limit == src_len {
                        ParseErrorKind::Truncated {
                            declared: u64::from(len),
                            available,
                        }
                    } else {
                        ParseErrorKind::OverrunsContainer {
                            declared: u64::from(len),
                            available,
                        }
                    };
                    return Err(self.err(pos, Some(seq_tag), kind).into());
                }
                self.parse_dataset(
                    value_offset,
                    Scope::Defined(item_end),
                    item_explicit,
                    little,
                    depth + 1,
                )?;
                item_end
            };
            self.nodes[item].end = item_end;
            self.nodes[item].subtree_end = self.nodes.len() as u32;
            pos = item_end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit_le(tag: u32, vr: &str, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
        v.extend_from_slice(&(tag as u16).to_le_bytes());
        v.extend_from_slice(vr.as_bytes());
        if VR::parse(vr).unwrap().has_long_length() {
            v.extend_from_slice(&[0, 0]);
            v.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            v.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        v.extend_from_slice(value);
        v
    }

    fn part10(dataset: &[u8], ts: &str) -> Vec<u8> {
        let mut meta = Vec::new();
        let mut tsv = ts.as_bytes().to_vec();
        if tsv.len() % 2 == 1 {
            tsv.push(0);
        }
        meta.extend(explicit_le(0x0002_0010, "UI", &tsv));
        let mut out = vec![0u8; 128];
        out.extend_from_slice(b"DICM");
        out.extend(explicit_le(
            0x0002_0000,
            "UL",
            &(meta.len() as u32).to_le_bytes(),
        ));
        out.extend(meta);
        out.extend_from_slice(dataset);
        out
    }

    #[test]
    fn simple_explicit() {
        let mut ds = explicit_le(0x0010_0010, "PN", b"Doe^John");
        ds.extend(explicit_le(0x0010_0020, "LO", b"123456"));
        let file = part10(&ds, "1.2.840.10008.1.2.1");
        let mut s: &[u8] = &file;
        let p = parse(&mut s, &Limits::default()).unwrap();
        assert!(p.has_preamble);
        assert_eq!(p.meta.elements.len(), 2);
        assert_eq!(p.dataset.elements.len(), 2);
        assert_eq!(p.dataset.elements[1].tag, tag::PATIENT_ID);
        assert_eq!(p.dataset_end, file.len() as u64);
    }

    #[test]
    fn truncated_value_names_tag_and_offset() {
        let mut ds = explicit_le(0x0010_0010, "PN", b"Doe^John");
        ds.truncate(ds.len() - 4);
        let file = part10(&ds, "1.2.840.10008.1.2.1");
        let mut s: &[u8] = &file;
        let e = parse(&mut s, &Limits::default()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("(0010,0010)"), "{msg}");
        assert!(msg.contains("declared 8 bytes, 4 available"), "{msg}");
    }

    #[test]
    fn not_dicom() {
        for data in [&b""[..], b"hello world, this is text", &[0u8; 300][..]] {
            let mut s: &[u8] = data;
            let e = parse(&mut s, &Limits::default()).unwrap_err();
            assert!(e.is_not_dicom(), "{e}");
        }
    }

    #[test]
    fn nesting_limit() {
        // 100 nested undefined-length sequences.
        let mut ds = Vec::new();
        for _ in 0..100 {
            ds.extend_from_slice(&[
                0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ]);
            ds.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        for _ in 0..100 {
            ds.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
            ds.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        }
        let file = part10(&ds, "1.2.840.10008.1.2.1");
        let mut s: &[u8] = &file;
        let e = parse(&mut s, &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("nested deeper than 64"), "{e}");
        let limits = Limits {
            max_depth: 200,
            ..Limits::default()
        };
        let mut s: &[u8] = &file;
        let p = parse(&mut s, &limits).unwrap();
        assert_eq!(p.dataset.elements.len(), 200);
        assert_eq!(p.dataset.elements[0].subtree_end, 200);
    }
}
