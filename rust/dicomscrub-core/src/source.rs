//! Byte sources the reader scans: a slice in memory, or a file read through a window so that
//! large values (pixel data) are skipped, never read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Random access to the bytes of one input.
pub trait Source {
    fn len(&self) -> u64;
    /// Fill `buf` from `offset`; `UnexpectedEof` past the end.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// The bytes of `[offset, offset + len)`.
    fn read_vec(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut v = vec![0; len];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Source for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let src = self.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "read past the end of the input",
    )
}

/// Window size of file reads: headers are read through it, large values skipped.
pub const WINDOW: usize = 64 * 1024;

/// A file read through a sliding window.
pub struct FileSource<'f> {
    pub file: &'f File,
    len: u64,
    win_start: u64,
    win: Vec<u8>,
}

impl<'f> FileSource<'f> {
    pub fn new(file: &'f File) -> io::Result<FileSource<'f>> {
        let len = file.metadata()?.len();
        Ok(FileSource {
            file,
            len,
            win_start: 0,
            win: Vec::new(),
        })
    }
}

impl Source for FileSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64).ok_or_else(eof)?;
        if end > self.len {
            return Err(eof());
        }
        let win_end = self.win_start + self.win.len() as u64;
        if offset >= self.win_start && end <= win_end {
            let s = (offset - self.win_start) as usize;
            buf.copy_from_slice(&self.win[s..s + buf.len()]);
            return Ok(());
        }
        if buf.len() >= WINDOW {
            return self.file.read_exact_at(buf, offset);
        }
        let want = (self.len - offset).min(WINDOW as u64) as usize;
        self.win.resize(want, 0);
        self.file.read_exact_at(&mut self.win, offset)?;
        self.win_start = offset;
        buf.copy_from_slice(&self.win[..buf.len()]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_bounds() {
        let data = [1u8, 2, 3, 4];
        let mut s: &[u8] = &data;
        let mut b = [0u8; 2];
        s.read_at(2, &mut b).unwrap();
        assert_eq!(b, [3, 4]);
        assert!(s.read_at(3, &mut b).is_err());
        assert!(s.read_at(u64::MAX, &mut b).is_err());
    }
}
