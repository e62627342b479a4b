//! Error types. Every parse error says where (byte offset, tag); the file layer adds the path.

use std::fmt;
use std::path::PathBuf;

use crate::tag::Tag;

/// What went wrong while reading a data set.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    NotDicom(&'static str),
    Truncated {
        declared: u64,
        available: u64,
    },
    OverrunsContainer {
        declared: u64,
        available: u64,
    },
    NestingTooDeep {
        limit: usize,
    },
    TooManyElements {
        limit: usize,
    },
    HeaderTooLarge {
        limit: u64,
    },
    InflateLimit {
        limit: u64,
    },
    InflateFailed(String),
    UnexpectedDelimiter,
    ExpectedItem {
        found: Tag,
    },
    MetaElementInDataSet,
    InvalidValue(&'static str),
    /// Rewriting: an implicit VR element of an explicit VR data set would be written first.
    ImplicitFirst,
}

/// A parse error with its position: offset in the stream the data set is read from (the inflated
/// stream for deflated files, `in_inflated` says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: u64,
    pub tag: Option<Tag>,
    pub in_inflated: bool,
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.tag {
            Some(t) => format!("element {t}"),
            None => "data".to_string(),
        };
        let at = if self.in_inflated {
            format!("offset {:#x} of the inflated data set", self.offset)
        } else {
            format!("offset {:#x}", self.offset)
        };
        match &self.kind {
            ParseErrorKind::NotDicom(why) => write!(f, "not a DICOM file: {why} (at {at})"),
            ParseErrorKind::Truncated { declared, available } => write!(
                f,
                "truncated {what} at {at}: declared {declared} bytes, {available} available"
            ),
            ParseErrorKind::OverrunsContainer { declared, available } => write!(
                f,
                "{what} at {at} overruns its item or sequence: declared {declared} bytes, \
                 {available} left in the container"
            ),
            ParseErrorKind::NestingTooDeep { limit } => {
                write!(f, "sequences nested deeper than {limit} levels at {what}, {at}")
            }
            ParseErrorKind::TooManyElements { limit } => {
                write!(f, "more than {limit} elements at {what}, {at}")
            }
            ParseErrorKind::HeaderTooLarge { limit } => {
                write!(f, "header larger than {limit} bytes at {what}, {at}")
            }
            ParseErrorKind::InflateLimit { limit } => write!(
                f,
                "deflated data set inflates past the limit ({limit} bytes) at {at}: refused as a deflate bomb"
            ),
            ParseErrorKind::InflateFailed(why) => {
                write!(f, "deflated data set is damaged at {at}: {why}")
            }
            ParseErrorKind::UnexpectedDelimiter => {
                write!(f, "unexpected delimiter {what} at {at}")
            }
            ParseErrorKind::ExpectedItem { found } => {
                write!(f, "expected an item tag (FFFE,E000) in sequence, found {found} at {at}")
            }
            ParseErrorKind::MetaElementInDataSet => {
                write!(f, "File Meta element {what} inside the data set at {at}")
            }
            ParseErrorKind::InvalidValue(why) => write!(f, "invalid value of {what} at {at}: {why}"),
            ParseErrorKind::ImplicitFirst => write!(
                f,
                "{what} at {at} is implicit VR inside an explicit VR data set and would be written \
                 first once the elements before it are removed: refused, a reader would then \
                 read the whole data set as implicit VR"
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0}")]
    Parse(ParseError),
    #[error("unsupported transfer syntax {uid}: {why}")]
    UnsupportedTransferSyntax { uid: String, why: &'static str },
    #[error("invalid plan: {0}")]
    Plan(String),
    #[error("output exists already: {}", path.display())]
    OutputExists { path: PathBuf },
    #[error("cannot write output {}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{source}")]
    Io {
        #[from]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: Box<Error> },
    #[error("internal error (a bug, please report it): {0}")]
    Panic(String),
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::Parse(e)
    }
}

impl Error {
    /// Wrap with the path of the file the error happened in (once).
    pub fn in_file(self, path: impl Into<PathBuf>) -> Error {
        match self {
            e @ Error::File { .. } => e,
            e => Error::File {
                path: path.into(),
                source: Box::new(e),
            },
        }
    }

    /// The innermost error, without the file wrapper.
    pub fn root(&self) -> &Error {
        match self {
            Error::File { source, .. } => source.root(),
            e => e,
        }
    }

    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Error::File { path, .. } => Some(path),
            Error::OutputExists { path } | Error::Output { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Message without the path prefix (the path is reported in its own field).
    pub fn message(&self) -> String {
        self.root().to_string()
    }

    /// The stable name of the error class (the Python exception's name).
    pub fn kind(&self) -> &'static str {
        match self.root() {
            Error::Parse(_) => "InvalidDicomError",
            Error::UnsupportedTransferSyntax { .. } => "UnsupportedTransferSyntaxError",
            Error::Plan(_) => "ProfileError",
            Error::OutputExists { .. } | Error::Output { .. } => "OutputError",
            Error::Io { .. } => "OSError",
            // root() never returns the File wrapper; a panic is the base class
            Error::File { .. } | Error::Panic(_) => "DicomScrubError",
        }
    }

    pub fn offset(&self) -> Option<u64> {
        match self.root() {
            Error::Parse(p) => Some(p.offset),
            _ => None,
        }
    }

    pub fn tag(&self) -> Option<Tag> {
        match self.root() {
            Error::Parse(p) => p.tag,
            _ => None,
        }
    }

    pub fn is_not_dicom(&self) -> bool {
        matches!(
            self.root(),
            Error::Parse(ParseError {
                kind: ParseErrorKind::NotDicom(_),
                ..
            })
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
