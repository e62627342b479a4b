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

/// Anonymize an in-memory file. A plan that changes nothing returns the input bytes.
pub fn anonymize_bytes(data: &[u8], plan: &Plan, limits: &Limits) -> Result<(Vec<u8>, Stats)> {
    let mut src: &[u8] = data;
    let parsed = parse::parse(&mut src, limits)?;
    if plan.identity {
        return Ok((data.to_vec(), Stats::default()));
    }
    let mut file_src: &[u8] = data;
    let body: &[u8] = parsed.inflated.as_deref().unwrap_or(data);
    let mut body_src: &[u8] = body;
    let rw = rewrite::rewrite(&parsed, &mut file_src, &mut body_src, plan)?;
    let out = io::assemble(&rw, body)?;
    Ok((out, rw.stats))
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
