//! `dicomscrub._core`: thin PyO3 bindings over dicomscrub-core.
//!
//! Arguments are extracted first, then the core runs with the GIL released (`py.detach`) and
//! panics contained (`catch_unwind`), and errors become the classes of `dicomscrub.errors`
//! through one conversion (`CoreError`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use dicomscrub_core::batch::{self, BatchOptions, FileResult, Status};
use dicomscrub_core::dump::{dump_bytes, DumpElement};
use dicomscrub_core::keyed::Keys;
use dicomscrub_core::{Error, FileOutcome, Limits, Plan};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyPermissionError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList};

/// The one conversion of core errors into the Python hierarchy of `dicomscrub.errors`.
struct CoreError(Error);

impl From<CoreError> for PyErr {
    fn from(CoreError(e): CoreError) -> PyErr {
        Python::attach(|py| {
            if let Error::Io { source } = e.root() {
                let msg = match e.path() {
                    Some(p) => format!("{}: {source}", p.display()),
                    None => source.to_string(),
                };
                return match source.kind() {
                    std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
                    std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
                    _ => PyOSError::new_err(msg),
                };
            }
            match build_exception(py, &e) {
                Ok(err) => err,
                Err(err) => err,
            }
        })
    }
}

fn build_exception(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    let module = py.import("dicomscrub.errors")?;
    let cls = module.getattr(e.kind())?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("path", e.path().map(|p| p.to_string_lossy().into_owned()))?;
    kwargs.set_item("offset", e.offset())?;
    kwargs.set_item("tag", e.tag().map(|t| t.0))?;
    let msg = e.to_string();
    let obj = cls.call((msg,), Some(&kwargs))?;
    Ok(PyErr::from_value(obj))
}

fn contain<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(Error::Panic(msg))
        }
    }
}

/// Input bytes from bytes, bytearray or any buffer (memoryview); copied only when not bytes.
enum Input {
    Backed(PyBackedBytes),
    Owned(Vec<u8>),
}

impl Input {
    fn extract(obj: &Bound<'_, PyAny>) -> PyResult<Input> {
        if let Ok(b) = obj.extract::<PyBackedBytes>() {
            return Ok(Input::Backed(b));
        }
        let buf = PyBuffer::<u8>::get(obj)?;
        Ok(Input::Owned(buf.to_vec(obj.py())?))
    }
    fn as_slice(&self) -> &[u8] {
        match self {
            Input::Backed(b) => b,
            Input::Owned(v) => v,
        }
    }
}

/// A validated, compiled edit plan (docs/plan.md) bound to a project key.
#[pyclass(name = "Plan", module = "dicomscrub._core", frozen)]
struct PyPlan {
    inner: Arc<Plan>,
}

#[pymethods]
impl PyPlan {
    #[new]
    fn new(plan_json: &str, key: &[u8]) -> PyResult<Self> {
        let plan = Plan::from_json(plan_json, key).map_err(CoreError)?;
        Ok(PyPlan {
            inner: Arc::new(plan),
        })
    }

    #[getter]
    fn changes_anything(&self) -> bool {
        !self.inner.identity
    }

    fn __repr__(&self) -> String {
        format!("<Plan changes_anything={}>", !self.inner.identity)
    }
}

#[pyfunction]
fn anonymize_bytes<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    plan: &PyPlan,
) -> PyResult<Bound<'py, PyAny>> {
    let input = Input::extract(data)?;
    let plan = plan.inner.clone();
    let prepared = py
        .detach(|| {
            contain(|| dicomscrub_core::prepare_bytes(input.as_slice(), &plan, &Limits::default()))
        })
        .map_err(CoreError)?;
    let Some(prepared) = prepared else {
        // Nothing changes: the input itself (a bytes object is immutable: no copy needed).
        if data.is_instance_of::<PyBytes>() {
            return Ok(data.clone());
        }
        return Ok(PyBytes::new(py, input.as_slice()).into_any());
    };
    // Allocate the result once and fill it in place, without the GIL.
    let mut failure = None;
    let out = PyBytes::new_with(py, prepared.len(), |buf| {
        let r = py.detach(|| contain(|| prepared.write_to(input.as_slice(), buf)));
        if let Err(e) = r {
            failure = Some(e);
        }
        Ok(())
    })?;
    if let Some(e) = failure {
        return Err(CoreError(e).into());
    }
    Ok(out.into_any())
}

fn outcome_dict<'py>(
    py: Python<'py>,
    src: &str,
    dst: &str,
    status: &str,
    err: Option<&Error>,
    o: &FileOutcome,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("src", src)?;
    d.set_item("dst", dst)?;
    d.set_item("status", status)?;
    d.set_item(
        "error_kind",
        err.map(|e| {
            if e.is_not_dicom() {
                "NotDicom"
            } else {
                e.kind()
            }
        }),
    )?;
    d.set_item("message", err.map(Error::message))?;
    d.set_item("offset", err.and_then(Error::offset))?;
    d.set_item("tag", err.and_then(|e| e.tag()).map(|t| t.0))?;
    d.set_item("bytes_in", o.bytes_in)?;
    d.set_item("bytes_out", o.bytes_out)?;
    let actions = PyDict::new(py);
    let mut names: Vec<_> = o.stats.actions.iter().collect();
    names.sort();
    for (k, v) in names {
        actions.set_item(k, v)?;
    }
    d.set_item("actions", actions)?;
    d.set_item("sop_instance_uid", o.stats.sop_instance_uid.clone())?;
    let ids = PyDict::new(py);
    for (k, v) in &o.stats.ids {
        ids.set_item(*k, v)?;
    }
    d.set_item("ids", ids)?;
    Ok(d)
}

#[pyfunction]
#[pyo3(signature = (src, dst, plan, *, overwrite = false))]
fn anonymize_file<'py>(
    py: Python<'py>,
    src: PathBuf,
    dst: PathBuf,
    plan: &PyPlan,
    overwrite: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let plan = plan.inner.clone();
    let (s, d) = (src.clone(), dst.clone());
    let o = py
        .detach(|| {
            contain(|| {
                dicomscrub_core::anonymize_file(&s, &d, &plan, overwrite, &Limits::default())
            })
            .map_err(|e| e.in_file(&s))
        })
        .map_err(CoreError)?;
    outcome_dict(
        py,
        &src.to_string_lossy(),
        &dst.to_string_lossy(),
        "ok",
        None,
        &o,
    )
}

fn default_jobs() -> usize {
    if let Some(n) = std::env::var("DICOMSCRUB_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[pyfunction]
#[pyo3(signature = (pairs, plan, *, jobs = None, overwrite = false, sync = true))]
fn anonymize_batch<'py>(
    py: Python<'py>,
    pairs: Vec<(PathBuf, PathBuf)>,
    plan: &PyPlan,
    jobs: Option<usize>,
    overwrite: bool,
    sync: bool,
) -> PyResult<Bound<'py, PyList>> {
    let plan = plan.inner.clone();
    let opts = BatchOptions {
        jobs: jobs.unwrap_or_else(default_jobs),
        overwrite,
        sync,
        limits: Limits::default(),
    };
    let results: Vec<FileResult> = py.detach(|| batch::anonymize_batch(&pairs, &plan, &opts));
    let list = PyList::empty(py);
    for r in &results {
        let status = match r.status {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        };
        list.append(outcome_dict(
            py,
            &r.src.to_string_lossy(),
            &r.dst.to_string_lossy(),
            status,
            r.error.as_ref(),
            &r.outcome,
        )?)?;
    }
    Ok(list)
}

fn dump_list<'py>(py: Python<'py>, elems: &[DumpElement]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for e in elems {
        let d = PyDict::new(py);
        d.set_item("tag", e.tag)?;
        d.set_item("vr", e.vr.as_str())?;
        d.set_item("offset", e.offset)?;
        d.set_item("length", e.length)?;
        d.set_item("value", e.value.as_ref().map(|v| PyBytes::new(py, v)))?;
        d.set_item("text", e.text.as_deref())?;
        d.set_item("encapsulated", e.encapsulated)?;
        d.set_item("big_endian", e.big_endian)?;
        match &e.items {
            Some(items) => {
                let l = PyList::empty(py);
                for item in items {
                    l.append(dump_list(py, item)?)?;
                }
                d.set_item("items", l)?;
            }
            None => d.set_item("items", py.None())?,
        }
        list.append(d)?;
    }
    Ok(list)
}

#[pyfunction]
fn dump<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let input = Input::extract(data)?;
    let d = py
        .detach(|| contain(|| dump_bytes(input.as_slice(), &Limits::default())))
        .map_err(CoreError)?;
    let out = PyDict::new(py);
    out.set_item("transfer_syntax", &d.transfer_syntax)?;
    out.set_item("has_preamble", d.has_preamble)?;
    out.set_item("meta", dump_list(py, &d.meta)?)?;
    out.set_item("dataset", dump_list(py, &d.dataset)?)?;
    Ok(out)
}

#[pyfunction]
fn keyed_uid(key: &[u8], uid: &str) -> String {
    Keys::new(key).uid(uid)
}

#[pyfunction]
fn keyed_pseudonym(key: &[u8], value: &str) -> String {
    Keys::new(key).pseudonym(value)
}

#[pyfunction]
fn date_offset_days(key: &[u8], source: &str, max_days: u32) -> i64 {
    Keys::new(key).date_offset_days(source, max_days)
}

#[pyfunction]
fn decode_text(data: &[u8], specific_character_set: &str, is_person_name: bool) -> String {
    dicomscrub_core::charset::Charset::from_value(specific_character_set.as_bytes())
        .decode(data, is_person_name)
}

/// The data dictionary keyword of a public tag ('' when unknown), repeating groups included.
#[pyfunction]
fn keyword(tag: u32) -> &'static str {
    dicomscrub_core::dictionary::lookup(dicomscrub_core::tag::Tag(tag)).map_or("", |(_, k)| k)
}

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DICOM_EDITION", dicomscrub_core::dictionary::DICOM_EDITION)?;
    m.add(
        "IMPLEMENTATION_CLASS_UID",
        dicomscrub_core::rewrite::IMPLEMENTATION_CLASS_UID,
    )?;
    m.add(
        "IMPLEMENTATION_VERSION_NAME",
        dicomscrub_core::rewrite::IMPLEMENTATION_VERSION_NAME,
    )?;
    m.add_class::<PyPlan>()?;
    m.add_function(wrap_pyfunction!(anonymize_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(anonymize_file, m)?)?;
    m.add_function(wrap_pyfunction!(anonymize_batch, m)?)?;
    m.add_function(wrap_pyfunction!(dump, m)?)?;
    m.add_function(wrap_pyfunction!(keyed_uid, m)?)?;
    m.add_function(wrap_pyfunction!(keyed_pseudonym, m)?)?;
    m.add_function(wrap_pyfunction!(date_offset_days, m)?)?;
    m.add_function(wrap_pyfunction!(decode_text, m)?)?;
    m.add_function(wrap_pyfunction!(keyword, m)?)?;
    Ok(())
}
