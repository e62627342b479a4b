//! The rewriter: applies a plan to a parsed file and produces the output as pieces — verbatim
//! copies of input byte ranges and new bytes for what changed. Lengths of the sequences and
//! items around an edit are recomputed; untouched subtrees stay one contiguous copy.

use std::collections::{HashMap, HashSet};

use crate::charset::Charset;
use crate::clean;
use crate::dates;
use crate::error::{ParseError, ParseErrorKind, Result};
use crate::fasthash::FastMap;
use crate::parse::{DataSet, Element, HeaderForm, Kind, ParsedFile};
use crate::plan::{Action, NewElement, Plan, TopValues};
use crate::source::Source;
use crate::tag::{self, Tag};
use crate::vr::VR;

/// dicomscrub's Implementation Class UID (a 2.25 UUID-derived UID) and version name.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.302934705346553458436358419733826571385";
pub const IMPLEMENTATION_VERSION_NAME: &str = "DICOMSCRUB_010";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// `len` bytes of the data set stream from `start`.
    Copy {
        start: u64,
        len: u64,
    },
    New(Vec<u8>),
}

/// A list of pieces that merges contiguous copies, so an untouched subtree stays one copy.
#[derive(Default, Debug)]
pub struct Pieces {
    pub list: Vec<Piece>,
    pub len: u64,
}

impl Pieces {
    pub fn copy(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        self.len += len;
        if let Some(Piece::Copy { start: s, len: l }) = self.list.last_mut() {
            if *s + *l == start {
                *l += len;
                return;
            }
        }
        self.list.push(Piece::Copy { start, len });
    }
    pub fn bytes(&mut self, b: Vec<u8>) {
        if b.is_empty() {
            return;
        }
        self.len += b.len() as u64;
        if let Some(Piece::New(v)) = self.list.last_mut() {
            v.extend_from_slice(&b);
            return;
        }
        self.list.push(Piece::New(b));
    }
    /// Append new bytes written by `write` straight into the trailing new piece (no buffer of
    /// their own to allocate, copy and free).
    pub fn write(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        if !matches!(self.list.last(), Some(Piece::New(_))) {
            self.list.push(Piece::New(Vec::with_capacity(256)));
        }
        let Some(Piece::New(v)) = self.list.last_mut() else {
            unreachable!()
        };
        let before = v.len();
        write(v);
        self.len += (v.len() - before) as u64;
        if v.is_empty() {
            self.list.pop();
        }
    }
    pub fn append(&mut self, other: Pieces) {
        for p in other.list {
            match p {
                Piece::Copy { start, len } => self.copy(start, len),
                Piece::New(b) => self.bytes(b),
            }
        }
    }
}

/// How many elements each action touched in one file. There are ten actions: a small array,
/// no allocation (a per-file map was a tenth of an in-memory rewrite under perf).
#[derive(Debug, Default, Clone)]
pub struct ActionCounts {
    slots: [(&'static str, u32); 16],
    len: usize,
}

impl ActionCounts {
    pub fn add(&mut self, name: &'static str) {
        if let Some(slot) = self.slots[..self.len].iter_mut().find(|s| s.0 == name) {
            slot.1 += 1;
        } else if self.len < self.slots.len() {
            self.slots[self.len] = (name, 1);
            self.len += 1;
        } else {
            debug_assert!(false, "more actions than slots");
        }
    }

    /// (action, count) in the order the actions first occurred.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        self.slots[..self.len].iter().copied()
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.iter().any(|s| s.0 == name)
    }
}

/// What the rewrite did, for reports.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub actions: ActionCounts,
    /// Output values of identifiers used to name outputs and to report.
    pub sop_instance_uid: Option<String>,
    pub ids: FastMap<&'static str, String>,
}

/// The rewritten file: `head` (preamble and File Meta, always new) then the data set `body`,
/// whose copies refer to the data set stream (the file, or the inflated buffer).
#[derive(Debug)]
pub struct Rewritten {
    pub head: Vec<u8>,
    pub body: Pieces,
    pub deflate: bool,
    pub stats: Stats,
}

/// Apply `plan` to `parsed`. `file` reads the input file (File Meta values); `ds_src` reads the
/// data set stream (the same file, or the inflated bytes).
pub fn rewrite(
    parsed: &ParsedFile,
    file: &mut dyn Source,
    ds_src: &mut dyn Source,
    plan: &Plan,
) -> Result<Rewritten> {
    let little = parsed.transfer_syntax.little_endian;
    let mut w = Writer {
        ds: &parsed.dataset,
        src: ds_src,
        plan,
        little,
        tokens: HashSet::new(),
        date_offset: None,
        top_values: TopValues::default(),
        stats: Stats::default(),
        in_inflated: parsed.transfer_syntax.deflated,
    };
    let top_charset = w.charset_of(None, &Charset::default_repertoire())?;
    for &t in &plan.top_sources {
        let v = match parsed.dataset.find(None, t) {
            Some(i) => w.text(i, &top_charset)?,
            None => String::new(),
        };
        w.top_values
            .insert(t, v.trim_end_matches([' ', '\0']).to_string());
    }
    if let Some((source, max_days)) = plan.date_shift {
        let p = w.top_values.get(&source).cloned().unwrap_or_default();
        w.date_offset = Some(plan.keys.date_offset_days(&p, max_days));
    }
    if plan.needs_tokens {
        w.collect_tokens(None, &top_charset)?;
    }
    let top_explicit = parsed
        .dataset
        .children(None)
        .next()
        .map_or(parsed.transfer_syntax.explicit_vr, |i| {
            parsed.dataset.elements[i].form != HeaderForm::Implicit
        });
    let mut body = Pieces::default();
    let ctx = Ctx {
        charset: top_charset,
        mode: Mode::Keep,
    };
    w.emit_dataset(None, &ctx, top_explicit, &plan.insert, &mut body)?;

    let mut stats = std::mem::take(&mut w.stats);
    let head = build_head(parsed, file, plan, &w.top_values, &mut stats)?;
    Ok(Rewritten {
        head,
        body,
        deflate: parsed.transfer_syntax.deflated,
        stats,
    })
}

/// What a sequence's own rule asks of the kept text below it (docs/plan.md, reference R5/R20).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Keep,
    /// inside a `clean` sequence: kept text values are cleaned
    Clean,
    /// inside a `dummy` sequence: kept free text (ST LT UT UC PN) gets a dummy value
    Dummy,
}

#[derive(Clone)]
struct Ctx {
    charset: Charset,
    mode: Mode,
}

struct Writer<'a> {
    ds: &'a DataSet,
    src: &'a mut dyn Source,
    plan: &'a Plan,
    little: bool,
    tokens: HashSet<String>,
    date_offset: Option<i64>,
    top_values: TopValues,
    stats: Stats,
    /// Offsets are in the inflated stream (deflated files), for error messages.
    in_inflated: bool,
}

/// What happens to one value.
enum Outcome {
    Keep,
    Remove,
    Set(Vec<u8>),
}

impl Writer<'_> {
    fn raw(&mut self, i: usize) -> Result<Vec<u8>> {
        let (off, n) = self.ds.elements[i].value_range();
        Ok(self.src.read_vec(off, n)?)
    }

    fn text(&mut self, i: usize, cs: &Charset) -> Result<String> {
        let raw = self.raw(i)?;
        let vr = self.ds.elements[i].vr;
        Ok(decode(&raw, vr, cs))
    }

    /// The character set of the data set `parent` (its own (0008,0005), else the inherited one).
    fn charset_of(&mut self, parent: Option<usize>, inherited: &Charset) -> Result<Charset> {
        match self.ds.find(parent, tag::SPECIFIC_CHARACTER_SET) {
            Some(i) => Ok(Charset::from_value(&self.raw(i)?)),
            None => Ok(inherited.clone()),
        }
    }

    fn creators_of(&mut self, parent: Option<usize>) -> Result<HashMap<Tag, String>> {
        let mut m = HashMap::new();
        if !self.plan.has_creator_rules {
            return Ok(m);
        }
        let ds = self.ds; // a shared borrow of the index, not of the writer
        for i in ds.children(parent) {
            let t = self.ds.elements[i].tag;
            if t.is_private_creator() && self.ds.elements[i].kind == Kind::Value {
                let raw = self.raw(i)?;
                let v = String::from_utf8_lossy(&raw)
                    .trim_end_matches([' ', '\0'])
                    .to_string();
                m.insert(t, v);
            }
        }
        Ok(m)
    }

    fn collect_tokens(&mut self, parent: Option<usize>, inherited: &Charset) -> Result<()> {
        let cs = self.charset_of(parent, inherited)?;
        let ds = self.ds; // a shared borrow of the index, not of the writer
        for i in ds.children(parent) {
            let e = &self.ds.elements[i];
            match e.kind {
                Kind::Sequence => {
                    let items: Vec<usize> = self.ds.children(Some(i)).collect();
                    for item in items {
                        self.collect_tokens(Some(item), &cs)?;
                    }
                }
                Kind::Value
                    if e.vr.is_string()
                        && (e.vr == VR::PN || self.plan.identifying.contains(&e.tag.0)) =>
                {
                    let v = self.text(i, &cs)?;
                    self.tokens.extend(clean::tokens(&v));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn count(&mut self, a: &'static str) {
        self.stats.actions.add(a);
    }

    fn header(&self, e: &Element, len: u32) -> Vec<u8> {
        encode_header(e.tag, e.vr_raw, e.form, !e.big_endian, len)
    }

    /// Emit the children of `parent` (None: the top-level data set).
    fn emit_dataset(
        &mut self,
        parent: Option<usize>,
        ctx: &Ctx,
        explicit: bool,
        inserts: &[NewElement],
        out: &mut Pieces,
    ) -> Result<()> {
        let charset = self.charset_of(parent, &ctx.charset)?;
        let ctx = Ctx {
            charset,
            mode: ctx.mode,
        };
        let creators = self.creators_of(parent)?;
        let mut next_insert = 0;
        let start_len = out.len;
        let ds = self.ds; // a shared borrow of the index, not of the writer
        for i in ds.children(parent) {
            let e = self.ds.elements[i].clone();
            while next_insert < inserts.len() && inserts[next_insert].tag <= e.tag {
                let n = &inserts[next_insert];
                out.bytes(encode_new(n, explicit, self.little, &ctx.charset));
                self.count("insert");
                next_insert += 1;
                if n.tag == e.tag {
                    self.record(parent, e.tag, n.value.clone());
                }
            }
            if next_insert > 0 && inserts[next_insert - 1].tag == e.tag {
                continue; // replaced by the inserted element
            }
            let creator = if e.tag.is_private_creator() {
                creators.get(&e.tag).map(String::as_str)
            } else {
                e.tag
                    .private_creator_tag()
                    .and_then(|c| creators.get(&c))
                    .map(String::as_str)
            };
            let mut action = self
                .plan
                .resolve(e.tag, e.vr, creator, &self.top_values)
                .clone();
            if action == Action::Keep {
                if ctx.mode == Mode::Clean && e.vr.is_cleanable_text() {
                    action = Action::Clean;
                } else if ctx.mode == Mode::Dummy
                    && matches!(e.vr, VR::ST | VR::LT | VR::UT | VR::UC | VR::PN)
                {
                    action = Action::Dummy;
                }
            }
            if e.tag == tag::SPECIFIC_CHARACTER_SET {
                // The character set must describe the text we write: never edited.
                action = Action::Keep;
            }
            // A reader takes the encoding of a data set from its first element: an implicit VR
            // element (read inside an explicit data set, as pydicom does) must not come first.
            if explicit
                && out.len == start_len
                && e.form == HeaderForm::Implicit
                && e.kind != Kind::Item
                && action != Action::Remove
            {
                return Err(ParseError {
                    offset: e.header_offset,
                    tag: Some(e.tag),
                    in_inflated: self.in_inflated,
                    kind: ParseErrorKind::ImplicitFirst,
                }
                .into());
            }
            match e.kind {
                Kind::Sequence => match action {
                    Action::Remove => self.count("remove"),
                    Action::Empty => {
                        self.count("empty");
                        // a defined length of 0: no items, no delimiter needed
                        out.bytes(self.header(&e, 0));
                    }
                    a => {
                        let mode = match a {
                            Action::Clean => Mode::Clean,
                            Action::Dummy => Mode::Dummy,
                            _ => ctx.mode,
                        };
                        let inner = Ctx {
                            charset: ctx.charset.clone(),
                            mode,
                        };
                        self.emit_sequence(i, &inner, explicit, out)?;
                    }
                },
                Kind::Item => {} // items only appear under sequences
                Kind::Encapsulated => {
                    if action == Action::Remove {
                        self.count("remove");
                    } else {
                        out.copy(e.header_offset, e.end - e.header_offset);
                    }
                }
                Kind::Value => match self.outcome(i, &e, &action, &ctx.charset)? {
                    Outcome::Keep => {
                        out.copy(e.header_offset, e.end - e.header_offset);
                        if parent.is_none() && is_reported(e.tag) {
                            let v = self.text(i, &ctx.charset)?;
                            self.record(parent, e.tag, v);
                        }
                    }
                    Outcome::Remove => self.count("remove"),
                    Outcome::Set(v) => {
                        self.count(action.name());
                        if parent.is_none() && is_reported(e.tag) {
                            self.record(parent, e.tag, decode(&v, e.vr, &ctx.charset));
                        }
                        let (little, vr_raw) = (!e.big_endian, e.vr_raw);
                        out.write(|buf| {
                            if e.form == HeaderForm::Explicit16 && v.len() > 0xFFFE {
                                encode_header_into(buf, e.tag, vr_raw, e.form, little, 0);
                            } else {
                                encode_header_into(
                                    buf,
                                    e.tag,
                                    vr_raw,
                                    e.form,
                                    little,
                                    v.len() as u32,
                                );
                                buf.extend_from_slice(&v);
                            }
                        });
                    }
                },
            }
        }
        while next_insert < inserts.len() {
            out.bytes(encode_new(
                &inserts[next_insert],
                explicit,
                self.little,
                &ctx.charset,
            ));
            self.count("insert");
            next_insert += 1;
        }
        Ok(())
    }

    fn record(&mut self, parent: Option<usize>, t: Tag, v: String) {
        if parent.is_some() {
            return;
        }
        let v = v.trim_matches([' ', '\0']).to_string();
        match t {
            tag::SOP_INSTANCE_UID => {
                self.stats.sop_instance_uid = Some(v.clone());
                self.stats.ids.insert("SOPInstanceUID", v);
            }
            tag::PATIENT_ID => {
                self.stats.ids.insert("PatientID", v);
            }
            tag::STUDY_INSTANCE_UID => {
                self.stats.ids.insert("StudyInstanceUID", v);
            }
            tag::SERIES_INSTANCE_UID => {
                self.stats.ids.insert("SeriesInstanceUID", v);
            }
            _ => {}
        }
    }

    fn emit_sequence(
        &mut self,
        i: usize,
        ctx: &Ctx,
        explicit: bool,
        out: &mut Pieces,
    ) -> Result<()> {
        let e = self.ds.elements[i].clone();
        let plan = self.plan;
        let inserts = plan.insert_in.get(&e.tag.0).map_or(&[][..], Vec::as_slice);
        let mut content = Pieces::default();
        let items: Vec<usize> = self.ds.children(Some(i)).collect();
        for item in items {
            self.emit_item(item, ctx, explicit, inserts, &mut content)?;
        }
        let header_len = e.value_offset - e.header_offset;
        if e.undefined_length() {
            out.copy(e.header_offset, header_len);
            out.append(content);
            out.copy(e.end - 8, 8);
        } else {
            if content.len == u64::from(e.length) {
                out.copy(e.header_offset, header_len);
            } else {
                out.bytes(self.header(&e, content.len as u32));
            }
            out.append(content);
        }
        Ok(())
    }

    fn emit_item(
        &mut self,
        i: usize,
        ctx: &Ctx,
        parent_explicit: bool,
        inserts: &[NewElement],
        out: &mut Pieces,
    ) -> Result<()> {
        let e = self.ds.elements[i].clone();
        // An item is written as it was read (pydicom lets an item switch to implicit VR).
        let explicit = match self.ds.children(Some(i)).next() {
            Some(c) => self.ds.elements[c].form != HeaderForm::Implicit,
            None => parent_explicit,
        };
        let mut content = Pieces::default();
        self.emit_dataset(Some(i), ctx, explicit, inserts, &mut content)?;
        if e.undefined_length() {
            out.copy(e.header_offset, 8);
            out.append(content);
            out.copy(e.end - 8, 8);
        } else {
            if content.len == u64::from(e.length) {
                out.copy(e.header_offset, 8);
            } else {
                out.bytes(encode_item_header(!e.big_endian, content.len as u32));
            }
            out.append(content);
        }
        Ok(())
    }

    /// The new value of a plain element under `action`.
    fn outcome(&mut self, i: usize, e: &Element, action: &Action, cs: &Charset) -> Result<Outcome> {
        let vr = e.vr;
        Ok(match action {
            Action::Keep => Outcome::Keep,
            Action::Remove => Outcome::Remove,
            Action::Empty => {
                if e.length == 0 {
                    Outcome::Keep
                } else {
                    Outcome::Set(Vec::new())
                }
            }
            Action::Replace(text) => set_text(vr, text, cs),
            Action::Dummy => match self.plan.dummies.get(&vr) {
                Some(d) => set_text(vr, &d.clone(), cs),
                None => Outcome::Set(Vec::new()),
            },
            Action::Uid => {
                if vr != VR::UI {
                    // an identifier under a VR that cannot hold it: never kept (reference R4)
                    return Ok(if e.length == 0 {
                        Outcome::Keep
                    } else {
                        Outcome::Set(Vec::new())
                    });
                }
                let raw = self.raw(i)?;
                let old = String::from_utf8_lossy(&raw);
                let new: Vec<String> = old.split('\\').map(|u| self.plan.keys.uid(u)).collect();
                let new = new.join("\\");
                if new.as_bytes() == trim_pad(&raw) {
                    Outcome::Keep
                } else {
                    Outcome::Set(pad(new.into_bytes(), VR::UI))
                }
            }
            Action::Pseudonym { prefix, source } => {
                if !vr.uses_charset() {
                    return Ok(if e.length == 0 {
                        Outcome::Keep
                    } else {
                        Outcome::Set(Vec::new())
                    });
                }
                let src = match source {
                    Some(t) => self.top_values.get(t).cloned().unwrap_or_default(),
                    None => self.text(i, cs)?,
                };
                let value = format!("{prefix}{}", self.plan.keys.pseudonym(&src));
                set_text(vr, &value, cs)
            }
            Action::ShiftDate => {
                if vr != VR::DA && vr != VR::DT {
                    return Ok(Outcome::Keep);
                }
                let raw = self.raw(i)?;
                let old = String::from_utf8_lossy(&raw).into_owned();
                let offset = self.date_offset.unwrap_or(0);
                let new = dates::shift_value(&old, vr == VR::DT, offset);
                Outcome::Set(pad(new.into_bytes(), vr))
            }
            Action::Clean => {
                if !vr.is_cleanable_text() {
                    return Ok(Outcome::Keep);
                }
                let old = self.text(i, cs)?;
                match clean::clean(&old, &self.tokens, &self.plan.clean_patterns) {
                    None => Outcome::Keep,
                    Some(new) => match cs.encode(&new) {
                        Some(b) => Outcome::Set(pad(b, vr)),
                        None => Outcome::Set(Vec::new()),
                    },
                }
            }
        })
    }
}

fn is_reported(t: Tag) -> bool {
    matches!(
        t,
        tag::SOP_INSTANCE_UID
            | tag::PATIENT_ID
            | tag::STUDY_INSTANCE_UID
            | tag::SERIES_INSTANCE_UID
    )
}

fn trim_pad(raw: &[u8]) -> &[u8] {
    let mut end = raw.len();
    while end > 0 && (raw[end - 1] == 0 || raw[end - 1] == b' ') {
        end -= 1;
    }
    &raw[..end]
}

/// Decode a value as text: charset VRs with the character set, the others as ASCII/Latin-1.
pub fn decode(raw: &[u8], vr: VR, cs: &Charset) -> String {
    if vr.uses_charset() {
        cs.decode(raw, vr == VR::PN)
    } else {
        raw.iter().map(|&b| b as char).collect()
    }
}

/// Pad to even length with the VR's padding byte.
pub fn pad(mut v: Vec<u8>, vr: VR) -> Vec<u8> {
    if v.len() % 2 == 1 {
        v.push(vr.pad_byte());
    }
    v
}

/// Cut each value of a text to the VR's maximum length (in characters).
fn cut_to_max(vr: VR, text: &str) -> String {
    let Some(max) = vr.max_len() else {
        return text.to_string();
    };
    if text.len() <= max {
        return text.to_string(); // no value can have more characters than the text has bytes
    }
    let cut = |v: &str| v.chars().take(max).collect::<String>();
    let cut_value = |v: &str| {
        if vr == VR::PN {
            v.split('=').map(cut).collect::<Vec<_>>().join("=")
        } else {
            cut(v)
        }
    };
    if vr.is_single_text() {
        cut_value(text)
    } else {
        text.split('\\')
            .map(cut_value)
            .collect::<Vec<_>>()
            .join("\\")
    }
}

/// A text replacement for an element of `vr` (binary VRs are emptied).
fn set_text(vr: VR, text: &str, cs: &Charset) -> Outcome {
    if !vr.is_string() {
        return Outcome::Set(Vec::new());
    }
    let text = cut_to_max(vr, text);
    let bytes = if vr.uses_charset() {
        match cs.encode(&text) {
            Some(b) => b,
            None => return Outcome::Set(Vec::new()),
        }
    } else {
        // ASCII VRs are written in ISO 8859-1 as pydicom does; anything else cannot be.
        if text.is_ascii() {
            return Outcome::Set(pad(text.into_bytes(), vr));
        }
        match text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect::<Option<Vec<u8>>>()
        {
            Some(b) => b,
            None => return Outcome::Set(Vec::new()),
        }
    };
    Outcome::Set(pad(bytes, vr))
}

pub fn encode_header(tag: Tag, vr: [u8; 2], form: HeaderForm, little: bool, len: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(12);
    encode_header_into(&mut h, tag, vr, form, little, len);
    h
}

/// [`encode_header`] appended to `h` (no allocation of its own).
pub fn encode_header_into(
    h: &mut Vec<u8>,
    tag: Tag,
    vr: [u8; 2],
    form: HeaderForm,
    little: bool,
    len: u32,
) {
    let (g, e) = (tag.group(), tag.element());
    if little {
        h.extend_from_slice(&g.to_le_bytes());
        h.extend_from_slice(&e.to_le_bytes());
    } else {
        h.extend_from_slice(&g.to_be_bytes());
        h.extend_from_slice(&e.to_be_bytes());
    }
    let u32b = |v: u32| {
        if little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    };
    match form {
        HeaderForm::Implicit => h.extend_from_slice(&u32b(len)),
        HeaderForm::Explicit16 => {
            h.extend_from_slice(&vr);
            let l = len as u16;
            h.extend_from_slice(&if little {
                l.to_le_bytes()
            } else {
                l.to_be_bytes()
            });
        }
        HeaderForm::Explicit32 => {
            h.extend_from_slice(&vr);
            h.extend_from_slice(&[0, 0]);
            h.extend_from_slice(&u32b(len));
        }
    }
}

fn encode_item_header(little: bool, len: u32) -> Vec<u8> {
    encode_header(tag::ITEM, [0, 0], HeaderForm::Implicit, little, len)
}

fn form_for(vr: VR, explicit: bool) -> HeaderForm {
    if !explicit {
        HeaderForm::Implicit
    } else if vr.has_long_length() {
        HeaderForm::Explicit32
    } else {
        HeaderForm::Explicit16
    }
}

/// Encode an inserted element (sequences with defined lengths).
pub fn encode_new(n: &NewElement, explicit: bool, little: bool, cs: &Charset) -> Vec<u8> {
    let form = form_for(n.vr, explicit);
    if n.vr == VR::SQ {
        let mut content = Vec::new();
        for item in &n.items {
            let mut body = Vec::new();
            for el in item {
                body.extend(encode_new(el, explicit, little, cs));
            }
            content.extend(encode_item_header(little, body.len() as u32));
            content.extend(body);
        }
        let mut out = encode_header(n.tag, n.vr.as_bytes(), form, little, content.len() as u32);
        out.extend(content);
        return out;
    }
    let value = match set_text(n.vr, &n.value, cs) {
        Outcome::Set(v) => v,
        _ => Vec::new(),
    };
    let mut out = Vec::with_capacity(12 + value.len());
    encode_header_into(
        &mut out,
        n.tag,
        n.vr.as_bytes(),
        form,
        little,
        value.len() as u32,
    );
    out.extend_from_slice(&value);
    out
}

/// Preamble (zeroed), `DICM` and a fresh File Meta Information group.
fn build_head(
    parsed: &ParsedFile,
    file: &mut dyn Source,
    plan: &Plan,
    top: &TopValues,
    stats: &mut Stats,
) -> Result<Vec<u8>> {
    let cs = Charset::default_repertoire();
    // (tag, vr, value) in tag order
    let mut elems: Vec<(Tag, VR, Vec<u8>)> = Vec::new();
    for i in parsed.meta.children(None) {
        let e = &parsed.meta.elements[i];
        if e.tag == tag::FILE_META_GROUP_LENGTH {
            continue;
        }
        let (off, n) = e.value_range();
        let raw = file.read_vec(off, n)?;
        let value = match e.tag {
            tag::TRANSFER_SYNTAX_UID | tag::FILE_META_VERSION => raw,
            tag::MEDIA_STORAGE_SOP_INSTANCE_UID if stats.sop_instance_uid.is_some() => pad(
                stats
                    .sop_instance_uid
                    .clone()
                    .unwrap_or_default()
                    .into_bytes(),
                VR::UI,
            ),
            tag::IMPLEMENTATION_CLASS_UID | tag::IMPLEMENTATION_VERSION_NAME => continue,
            t => match plan.resolve(t, e.vr, None, top) {
                Action::Keep => raw,
                Action::Remove => continue,
                Action::Uid if e.vr == VR::UI => {
                    let old = String::from_utf8_lossy(&raw);
                    let new: Vec<String> = old.split('\\').map(|u| plan.keys.uid(u)).collect();
                    pad(new.join("\\").into_bytes(), VR::UI)
                }
                Action::Replace(v) => match set_text(e.vr, v, &cs) {
                    Outcome::Set(b) => b,
                    _ => raw,
                },
                Action::Dummy => match plan.dummies.get(&e.vr).map(|d| set_text(e.vr, d, &cs)) {
                    Some(Outcome::Set(b)) => b,
                    _ => Vec::new(),
                },
                Action::Empty => Vec::new(),
                _ => raw,
            },
        };
        elems.push((e.tag, e.vr, value));
    }
    let has = |elems: &Vec<(Tag, VR, Vec<u8>)>, t: Tag| elems.iter().any(|e| e.0 == t);
    if !has(&elems, tag::FILE_META_VERSION) {
        elems.push((tag::FILE_META_VERSION, VR::OB, vec![0, 1]));
    }
    if !has(&elems, tag::TRANSFER_SYNTAX_UID) {
        elems.push((
            tag::TRANSFER_SYNTAX_UID,
            VR::UI,
            pad(parsed.transfer_syntax.uid.clone().into_bytes(), VR::UI),
        ));
    }
    if !has(&elems, tag::MEDIA_STORAGE_SOP_INSTANCE_UID) {
        if let Some(u) = &stats.sop_instance_uid {
            elems.push((
                tag::MEDIA_STORAGE_SOP_INSTANCE_UID,
                VR::UI,
                pad(u.clone().into_bytes(), VR::UI),
            ));
        }
    }
    if !has(&elems, tag::MEDIA_STORAGE_SOP_CLASS_UID) {
        if let Some(v) = sop_class_value(parsed, file)? {
            elems.push((tag::MEDIA_STORAGE_SOP_CLASS_UID, VR::UI, v));
        }
    }
    elems.push((
        tag::IMPLEMENTATION_CLASS_UID,
        VR::UI,
        pad(IMPLEMENTATION_CLASS_UID.into(), VR::UI),
    ));
    elems.push((
        tag::IMPLEMENTATION_VERSION_NAME,
        VR::SH,
        pad(IMPLEMENTATION_VERSION_NAME.into(), VR::SH),
    ));
    elems.sort_by_key(|e| e.0);
    let mut group = Vec::new();
    for (t, vr, v) in &elems {
        group.extend(encode_header(
            *t,
            vr.as_bytes(),
            form_for(*vr, true),
            true,
            v.len() as u32,
        ));
        group.extend_from_slice(v);
    }
    let mut head = vec![0u8; 128];
    head.extend_from_slice(b"DICM");
    head.extend(encode_header(
        tag::FILE_META_GROUP_LENGTH,
        *b"UL",
        HeaderForm::Explicit16,
        true,
        4,
    ));
    head.extend_from_slice(&(group.len() as u32).to_le_bytes());
    head.extend(group);
    Ok(head)
}

/// SOP Class UID of the data set (for a File Meta built from scratch); only the plain, not
/// deflated, case reads from the file (a deflated file always has a File Meta). Asks the syntax,
/// not `parsed.inflated`: callers may have moved the inflated buffer out already.
fn sop_class_value(parsed: &ParsedFile, file: &mut dyn Source) -> Result<Option<Vec<u8>>> {
    if parsed.transfer_syntax.deflated {
        return Ok(None);
    }
    match parsed.dataset.find(None, tag::SOP_CLASS_UID) {
        Some(i) => {
            let (off, n) = parsed.dataset.elements[i].value_range();
            Ok(Some(file.read_vec(off, n)?))
        }
        None => Ok(None),
    }
}
