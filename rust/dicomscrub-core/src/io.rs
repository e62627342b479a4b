//! Output: atomic writes (temp file in the destination folder, then rename) and the copy of
//! untouched byte ranges, with the kernel's copy_file_range for large ones.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::rewrite::{Piece, Rewritten};

/// Copies at least this large go through copy_file_range (no trip through user space).
const KERNEL_COPY_MIN: u64 = 64 << 10;
const BUF: usize = 256 * 1024;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where the data set copies come from.
pub enum BodySource<'a> {
    File(&'a File),
    Memory(&'a [u8]),
}

/// A temporary output beside `dst`, removed on drop unless committed.
pub struct TempOutput {
    pub path: PathBuf,
    pub file: Option<File>,
    committed: bool,
}

impl TempOutput {
    pub fn new(dst: &Path) -> Result<TempOutput> {
        let dir = dst
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = dst
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp_name = format!(
            ".{}.{}-{}.dicomscrub-tmp",
            String::from_utf8_lossy(&name),
            std::process::id(),
            n
        );
        let path = dir.join(tmp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(|e| Error::Output {
                path: dst.to_path_buf(),
                source: e,
            })?;
        Ok(TempOutput {
            path,
            file: Some(file),
            committed: false,
        })
    }

    /// Move into place: never over an existing file unless `overwrite`.
    pub fn commit(mut self, dst: &Path, overwrite: bool) -> Result<()> {
        drop(self.file.take());
        let r = if overwrite {
            fs::rename(&self.path, dst)
        } else {
            rename_noreplace(&self.path, dst)
        };
        match r {
            Ok(()) => {
                self.committed = true;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::OutputExists {
                path: dst.to_path_buf(),
            }),
            Err(e) => Err(Error::Output {
                path: dst.to_path_buf(),
                source: e,
            }),
        }
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.committed {
            drop(self.file.take());
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// rename(2) that fails with AlreadyExists instead of replacing: renameat2(RENAME_NOREPLACE),
/// or link + unlink where the filesystem lacks it.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let c_from = std::ffi::CString::new(from.as_os_str().as_bytes())?;
    let c_to = std::ffi::CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both paths are valid NUL-terminated strings for the duration of the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            c_from.as_ptr(),
            libc::AT_FDCWD,
            c_to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::ENOTSUP) => {
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        _ => Err(err),
    }
}

/// Write `pieces` to `out`, copies read from `body`.
fn write_pieces<W: Write + AsRawFd>(
    out: &mut BufWriter<W>,
    pieces: &[Piece],
    body: &BodySource<'_>,
) -> io::Result<u64> {
    let mut written = 0u64;
    let mut buf = Vec::new();
    for p in pieces {
        match p {
            Piece::New(b) => {
                out.write_all(b)?;
                written += b.len() as u64;
            }
            Piece::Copy { start, len } => {
                match body {
                    BodySource::Memory(m) => {
                        let s = usize::try_from(*start).map_err(io::Error::other)?;
                        let e = s + usize::try_from(*len).map_err(io::Error::other)?;
                        let slice = m
                            .get(s..e)
                            .ok_or_else(|| io::Error::other("copy out of range"))?;
                        out.write_all(slice)?;
                    }
                    BodySource::File(f) => {
                        if *len >= KERNEL_COPY_MIN {
                            out.flush()?;
                            kernel_copy(f, *start, out.get_ref(), *len)?;
                        } else {
                            buf.resize(*len as usize, 0);
                            f.read_exact_at(&mut buf, *start)?;
                            out.write_all(&buf)?;
                        }
                    }
                }
                written += len;
            }
        }
    }
    Ok(written)
}

/// copy_file_range from `src` at `offset` to the current position of `dst`, with a plain
/// read/write fallback where the kernel refuses (cross-filesystem on old kernels, special files).
fn kernel_copy<W: AsRawFd>(src: &File, offset: u64, dst: &W, len: u64) -> io::Result<()> {
    let mut off_in = offset as libc::loff_t;
    let mut left = len;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        // SAFETY: valid fds; off_in points to a live loff_t; a null off_out uses the file position.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                std::ptr::null_mut(),
                chunk,
                0,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EXDEV)
                | Some(libc::EINVAL)
                | Some(libc::ENOSYS)
                | Some(libc::EOPNOTSUPP) => fallback_copy(src, off_in as u64, dst, left),
                _ => Err(err),
            };
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "input shrank while copying",
            ));
        }
        left -= n as u64;
    }
    Ok(())
}

fn fallback_copy<W: AsRawFd>(
    src: &File,
    mut offset: u64,
    dst: &W,
    mut left: u64,
) -> io::Result<()> {
    // SAFETY: borrow the fd as a File without taking ownership (ManuallyDrop prevents close).
    let out = std::mem::ManuallyDrop::new(unsafe {
        <File as std::os::fd::FromRawFd>::from_raw_fd(dst.as_raw_fd())
    });
    let mut buf = vec![0u8; BUF];
    while left > 0 {
        let n = left.min(BUF as u64) as usize;
        src.read_exact_at(&mut buf[..n], offset)?;
        (&*out).write_all(&buf[..n])?;
        offset += n as u64;
        left -= n as u64;
    }
    Ok(())
}

/// Copy the body pieces into `out` (exactly `rw.body.len` bytes).
pub fn fill_body(rw: &Rewritten, body: &[u8], out: &mut [u8]) -> Result<()> {
    let mut at = 0usize;
    for p in &rw.body.list {
        let src: &[u8] = match p {
            Piece::New(b) => b,
            Piece::Copy { start, len } => {
                let s = *start as usize;
                body.get(s..s + *len as usize).ok_or_else(|| Error::Io {
                    source: io::Error::other("copy out of range"),
                })?
            }
        };
        out.get_mut(at..at + src.len())
            .ok_or_else(|| Error::Io {
                source: io::Error::other("output buffer too small"),
            })?
            .copy_from_slice(src);
        at += src.len();
    }
    Ok(())
}

fn assemble_body(rw: &Rewritten, body: &[u8]) -> Result<Vec<u8>> {
    let mut out = vec![0u8; rw.body.len as usize];
    fill_body(rw, body, &mut out)?;
    Ok(out)
}

/// The body of a deflated output: assembled, then deflated.
pub fn deflated_body(rw: &Rewritten, body: &[u8]) -> Result<Vec<u8>> {
    deflate(&assemble_body(rw, body)?)
}

fn deflate(data: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data)?;
    let mut v = enc.finish()?;
    if v.len() % 2 == 1 {
        v.push(0); // even length, as pydicom writes it
    }
    Ok(v)
}

/// Write a rewrite to `dst` atomically; returns the bytes written.
pub fn write_file(
    rw: &Rewritten,
    body: BodySource<'_>,
    dst: &Path,
    overwrite: bool,
) -> Result<u64> {
    let mut tmp = TempOutput::new(dst)?;
    let file = tmp
        .file
        .take()
        .ok_or_else(|| Error::Panic("temp file missing".into()))?;
    let mut out = BufWriter::with_capacity(BUF, file);
    let wrap = |e: io::Error| Error::Output {
        path: dst.to_path_buf(),
        source: e,
    };
    out.write_all(&rw.head).map_err(wrap)?;
    let mut n = rw.head.len() as u64;
    if rw.deflate {
        let BodySource::Memory(m) = body else {
            return Err(Error::Panic("deflated body must be in memory".into()));
        };
        let b = deflated_body(rw, m)?;
        out.write_all(&b).map_err(wrap)?;
        n += b.len() as u64;
    } else {
        n += write_pieces(&mut out, &rw.body.list, &body).map_err(wrap)?;
    }
    let file = out.into_inner().map_err(|e| wrap(e.into_error()))?;
    tmp.file = Some(file);
    tmp.commit(dst, overwrite)?;
    Ok(n)
}

/// Copy a file as it is (a plan that changes nothing), atomically.
pub fn copy_file(src: &File, len: u64, dst: &Path, overwrite: bool) -> Result<u64> {
    let mut tmp = TempOutput::new(dst)?;
    let file = tmp
        .file
        .take()
        .ok_or_else(|| Error::Panic("temp file missing".into()))?;
    kernel_copy(src, 0, &file, len).map_err(|e| Error::Output {
        path: dst.to_path_buf(),
        source: e,
    })?;
    tmp.file = Some(file);
    tmp.commit(dst, overwrite)?;
    Ok(len)
}

/// Flush everything written so far on the filesystem holding `dir` (group commit: one call per
/// batch instead of one fsync per file).
pub fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let f = File::open(dir)?;
    // SAFETY: a valid open fd.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
