//! Many files in parallel on a rayon pool: one result per file, a panic or error in one file
//! never stops the others, and durability comes from one filesystem sync per batch.

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use crate::error::Error;
use crate::parse::Limits;
use crate::plan::Plan;
use crate::{anonymize_file, FileOutcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    /// Not DICOM: reported and skipped, not an error of the run.
    Skipped,
}

#[derive(Debug)]
pub struct FileResult {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub status: Status,
    pub error: Option<Error>,
    pub outcome: FileOutcome,
}

#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub jobs: usize,
    pub overwrite: bool,
    pub sync: bool,
    pub limits: Limits,
}

fn pool(jobs: usize) -> Arc<rayon::ThreadPool> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = pools
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(jobs)
        .or_insert_with(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(jobs)
                    .thread_name(|i| format!("dicomscrub-{i}"))
                    .build()
                    .unwrap_or_else(|_| {
                        rayon::ThreadPoolBuilder::new()
                            .num_threads(1)
                            .build()
                            .unwrap_or_else(|e| panic!("cannot start a thread: {e}"))
                    }),
            )
        })
        .clone()
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

fn one(src: &Path, dst: &Path, plan: &Plan, opts: &BatchOptions) -> FileResult {
    let r = catch_unwind(AssertUnwindSafe(|| {
        anonymize_file(src, dst, plan, opts.overwrite, &opts.limits)
    }));
    let r = match r {
        Ok(r) => r,
        Err(p) => Err(Error::Panic(panic_message(&p)).in_file(src)),
    };
    match r {
        Ok(outcome) => FileResult {
            src: src.into(),
            dst: dst.into(),
            status: Status::Ok,
            error: None,
            outcome,
        },
        Err(e) => FileResult {
            src: src.into(),
            dst: dst.into(),
            status: if e.is_not_dicom() {
                Status::Skipped
            } else {
                Status::Failed
            },
            error: Some(e),
            outcome: FileOutcome::default(),
        },
    }
}

/// Anonymize each `(src, dst)` pair. Output folders are created; with `sync`, the written data
/// is flushed once per destination filesystem before returning.
pub fn anonymize_batch(
    pairs: &[(PathBuf, PathBuf)],
    plan: &Plan,
    opts: &BatchOptions,
) -> Vec<FileResult> {
    let dirs: BTreeSet<&Path> = pairs.iter().filter_map(|(_, d)| d.parent()).collect();
    for d in &dirs {
        if !d.as_os_str().is_empty() {
            let _ = std::fs::create_dir_all(d); // a failure shows up per file
        }
    }
    let jobs = opts.jobs.max(1);
    let results: Vec<FileResult> = if jobs == 1 {
        pairs.iter().map(|(s, d)| one(s, d, plan, opts)).collect()
    } else {
        pool(jobs).install(|| {
            pairs
                .par_iter()
                .map(|(s, d)| one(s, d, plan, opts))
                .collect()
        })
    };
    if opts.sync {
        // One syncfs per destination filesystem (told apart by device number).
        let mut devices = BTreeSet::new();
        for d in dirs {
            let d = if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            };
            if let Ok(m) = std::fs::metadata(d) {
                if devices.insert(std::os::unix::fs::MetadataExt::dev(&m)) {
                    let _ = crate::io::sync_filesystem(d);
                }
            }
        }
    }
    results
}
