//! dicomscrub-core: a zero-copy DICOM parser and rewriter for de-identification.
//!
//! Bytes in, bytes out, no Python: [`parse`] indexes a file (offsets, never decoded pixel data),
//! [`rewrite`] applies a [`plan::Plan`] and yields pieces (verbatim copies and new bytes), [`io`]
//! writes them atomically, [`batch`] runs many files in parallel.

pub mod batch;
pub mod charset;
pub mod clean;
pub mod dates;
pub mod dictionary;
pub mod dump;
pub mod error;
pub mod fasthash;
pub mod io;
pub mod keyed;
pub mod parse;
pub mod plan;
pub mod rewrite;
pub mod source;
pub mod tag;
pub mod transfer_syntax;
pub mod vr;

use std::fs::File;
use std::path::Path;

pub use error::{Error, ParseError, ParseErrorKind, Result};
pub use parse::{Limits, ParsedFile};
pub use plan::Plan;
pub use rewrite::Stats;
pub use tag::Tag;
pub use vr::VR;

/// An in-memory rewrite, ready to be written into a buffer of `len()` bytes (so a caller can
/// allocate the final buffer once, e.g. a Python `bytes`, and have it filled without a copy).
pub struct Prepared {
    rw: rewrite::Rewritten,
    /// The inflated data set of a deflated input (the copies refer to it).
    inflated: Option<Vec<u8>>,
    /// The re-deflated body of a deflated input.
    deflated_body: Option<Vec<u8>>,
}

impl Prepared {
    pub fn len(&self) -> usize {
        self.rw.head.len()
            + self
                .deflated_body
                .as_ref()
                .map_or(self.rw.body.len as usize, Vec::len)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn stats(&self) -> &Stats {
        &self.rw.stats
    }
    /// Write the output into `out` (exactly `len()` bytes); `data` is the input.
    pub fn write_to(&self, data: &[u8], out: &mut [u8]) -> Result<()> {
        let (head, rest) = out.split_at_mut(self.rw.head.len());
        head.copy_from_slice(&self.rw.head);
        match &self.deflated_body {
            Some(b) => rest.copy_from_slice(b),
            None => io::fill_body(&self.rw, self.inflated.as_deref().unwrap_or(data), rest)?,
        }
        Ok(())
    }
}

/// Parse and plan the rewrite of an in-memory file; `None` when the plan changes nothing (the
/// input is still parsed, so damaged input is refused either way).
pub fn prepare_bytes(data: &[u8], plan: &Plan, limits: &Limits) -> Result<Option<Prepared>> {
    let mut src: &[u8] = data;
    let mut parsed = parse::parse(&mut src, limits)?;
    if plan.identity {
        return Ok(None);
    }
    let mut file_src: &[u8] = data;
    let inflated = parsed.inflated.take();
    let body: &[u8] = inflated.as_deref().unwrap_or(data);
    let mut body_src: &[u8] = body;
    let rw = rewrite::rewrite(&parsed, &mut file_src, &mut body_src, plan)?;
    let deflated_body = if rw.deflate {
        Some(io::deflated_body(&rw, body)?)
    } else {
        None
    };
    Ok(Some(Prepared {
        rw,
        inflated,
        deflated_body,
    }))
}

/// Anonymize an in-memory file. A plan that changes nothing returns the input bytes.
pub fn anonymize_bytes(data: &[u8], plan: &Plan, limits: &Limits) -> Result<(Vec<u8>, Stats)> {
    match prepare_bytes(data, plan, limits)? {
        None => Ok((data.to_vec(), Stats::default())),
        Some(p) => {
            let mut out = vec![0u8; p.len()];
            p.write_to(data, &mut out)?;
            Ok((out, p.rw.stats))
        }
    }
}

/// What one file took and gave.
#[derive(Debug, Default, Clone)]
pub struct FileOutcome {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub stats: Stats,
}

/// Anonymize `src` into `dst` (atomic; never over an existing file unless `overwrite`).
/// Errors carry the source path.
pub fn anonymize_file(
    src: &Path,
    dst: &Path,
    plan: &Plan,
    overwrite: bool,
    limits: &Limits,
) -> Result<FileOutcome> {
    anonymize_file_inner(src, dst, plan, overwrite, limits).map_err(|e| e.in_file(src))
}

fn anonymize_file_inner(
    src: &Path,
    dst: &Path,
    plan: &Plan,
    overwrite: bool,
    limits: &Limits,
) -> Result<FileOutcome> {
    let file = File::open(src)?;
    let mut fsrc = source::FileSource::new(&file)?;
    let bytes_in = source::Source::len(&fsrc);
    let parsed = parse::parse(&mut fsrc, limits)?;
    if plan.identity {
        let n = io::copy_file(&file, bytes_in, dst, overwrite)?;
        return Ok(FileOutcome {
            bytes_in,
            bytes_out: n,
            stats: Stats::default(),
        });
    }
    let (rw, body_mem);
    if let Some(inflated) = parsed.inflated.as_deref() {
        let mut body_src: &[u8] = inflated;
        rw = rewrite::rewrite(&parsed, &mut fsrc, &mut body_src, plan)?;
        body_mem = Some(inflated);
    } else {
        let mut body_src = source::FileSource::new(&file)?;
        rw = rewrite::rewrite(&parsed, &mut fsrc, &mut body_src, plan)?;
        body_mem = None;
    }
    let body = match body_mem {
        Some(m) => io::BodySource::Memory(m),
        None => io::BodySource::File(&file),
    };
    let bytes_out = io::write_file(&rw, body, dst, overwrite)?;
    Ok(FileOutcome {
        bytes_in,
        bytes_out,
        stats: rw.stats,
    })
}
