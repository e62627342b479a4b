"""End-to-end tests of ``dicomscrub serve`` and ``dicomscrub send`` against a real PACS.

Orthanc (Debian's package, started on loopback by the session fixture) is the destination;
its REST API (and DICOMweb, with the plugin) tells what it stored. A sender proposing each
file's own transfer syntax sends real corpus files to the gateway, run as a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pydicom
import pytest
from gwproc import GATEWAY_AET, SENDER_AET
from helpers import ENCAPSULATED_PREFIXES, dataset_differences, identities, pick_corpus
from orthanc import Orthanc, free_port

from dicomscrub import _core
from dicomscrub.anonymizer import Anonymizer
from dicomscrub.gateway.address import Address
from dicomscrub.gateway.dimse import (
    VERIFICATION,
    ConnectFailed,
    Requestor,
    read_meta,
    read_meta_file,
)
from dicomscrub.gateway.send import prepare, send_items
from dicomscrub.gateway.spool import Spool

from corpus import readable_files

KEY_GATEWAY = b"gateway e2e key 4f1c: not a secret"
KEY_DIRECT = b"gateway direct key 9a07: not a secret"
DAMAGED = "MR_truncated.dcm"  # truncated Pixel Data: the core refuses it


def _key_file(tmp: Path, secret: bytes) -> Path:
    p = tmp / "project.key"
    p.write_bytes(secret + b"\n")
    return p


def _send(paths: list[Path], to: Address, *, aet: str = SENDER_AET, n: int = 3) -> list[Any]:
    items = prepare([(str(p), p.stat().st_size) for p in paths])
    return send_items(items, to, calling_aet=aet, associations=n, dimse_timeout=30)


def _report(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


#: every corpus file a sender can send (File Meta, a storage SOP class), each SOP Instance UID
#: once (pydicom ships the same image in many transfer syntaxes under one UID; a PACS keeps one)
WHOLE_CORPUS = 10_000


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    return pick_corpus(readable_files(), WHOLE_CORPUS, max_size=256 << 20)


@pytest.fixture(scope="module")
def direct(
    orthanc: Orthanc, corpus: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> SimpleNamespace:
    """The selection anonymized (another key) into a tree, pushed straight into Orthanc with
    ``dicomscrub send``: what Orthanc accepts when sent to it directly."""
    tmp = tmp_path_factory.mktemp("direct")
    anon = Anonymizer(key=KEY_DIRECT)
    tree = tmp / "tree"
    outputs = []
    for k, src in enumerate(corpus["files"]):
        dst = tree / f"s{k // 8}" / f"{k:03d}.dcm"
        anon.anonymize_file(src, dst)
        outputs.append(dst)
    report = tmp / "send.jsonl"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dicomscrub",
            "send",
            str(tree),
            "--to",
            f"ORTHANC@127.0.0.1:{orthanc.dicom_port}",
            "--associations",
            "3",
            "--report",
            str(report),
            "--calling-aet",
            "DIRECT",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = _report(report)
    by_path = {r["src"]: r for r in lines if r["type"] == "file"}
    return SimpleNamespace(
        outputs=outputs,
        proc=proc,
        lines=lines,
        seconds=time.perf_counter() - t0,
        accepted=[by_path[str(p)]["status"] == "ok" for p in outputs],
        results=[by_path[str(p)] for p in outputs],
    )


@pytest.fixture(scope="module")
def forwarded(
    orthanc: Orthanc,
    gateway_port: int,
    corpus: dict[str, Any],
    direct: SimpleNamespace,
    tmp_path_factory: pytest.TempPathFactory,
) -> SimpleNamespace:
    """The selection (and one damaged file) sent through ``dicomscrub serve --forward`` into
    Orthanc; the gateway stopped cleanly afterwards."""
    from gwproc import Serve

    tmp = tmp_path_factory.mktemp("forward")
    key = _key_file(tmp, KEY_GATEWAY)
    spool, report = tmp / "spool", tmp / "report.jsonl"
    gw = Serve(
        gateway_port,
        [
            "--forward",
            f"ORTHANC@127.0.0.1:{orthanc.dicom_port}",
            "--allow-aet",
            SENDER_AET,
            "--allow-aet",
            "OTHER",
            "--spool",
            str(spool),
            "--key-file",
            str(key),
            "--report",
            str(report),
            "--forward-timeout",
            "10",
            "--progress",
        ],
        tmp,
    ).start()
    damaged = next(p for p in _all_corpus() if p.name == DAMAGED)
    files = [*corpus["files"], damaged]
    t0 = time.perf_counter()
    results = _send(files, gw.address)
    seconds = time.perf_counter() - t0
    intruder = Requestor(gw.address, [(VERIFICATION, "1.2.840.10008.1.2")], calling_aet="INTRUDER")
    try:
        intruder.open()
        rejected = False
    except ConnectFailed as exc:
        rejected = "rejected" in str(exc)
    finally:
        intruder.close()
    code = gw.stop()
    return SimpleNamespace(
        files=files,
        results=results,
        seconds=seconds,
        code=code,
        log=gw.log(),
        report=_report(report),
        spool=spool,
        key=key,
        rejected=rejected,
    )


def _all_corpus() -> list[Path]:
    from corpus import corpus_files

    return list(corpus_files())


# -- the selection -------------------------------------------------------------------------------


def test_selection_covers_transfer_syntaxes(corpus: dict[str, Any]) -> None:
    syntaxes = {read_meta_file(p).transfer_syntax for p in corpus["files"]}
    encapsulated = {ts for ts in syntaxes if ts.startswith(ENCAPSULATED_PREFIXES)}
    uids = {read_meta_file(p).sop_instance for p in corpus["files"]}
    assert len(uids) == len(corpus["files"]) >= 150
    assert len(syntaxes) >= 12, syntaxes
    assert len(encapsulated) >= 8, syntaxes
    # the corpus files a sender cannot send as they are (no File Meta, a DICOMDIR) are few
    total = corpus["sendable"] + len(corpus["unsendable"])
    assert len(corpus["unsendable"]) <= 0.1 * total, corpus["unsendable"]


# -- send ----------------------------------------------------------------------------------------


def test_send_pushes_an_anonymized_tree(orthanc: Orthanc, direct: SimpleNamespace) -> None:
    assert direct.proc.returncode in (0, 1), direct.proc.stderr
    files = [r for r in direct.lines if r["type"] == "file"]
    assert len(files) == len(direct.outputs)
    summary = direct.lines[-1]
    assert summary["type"] == "summary" and summary["files"] == len(direct.outputs)
    # Orthanc refuses a few instances on its own (no Patient ID or Study/Series UID): those
    # are failures with Orthanc's status, never silent
    assert sum(direct.accepted) >= 0.75 * len(direct.outputs)
    assert direct.proc.returncode == (0 if all(direct.accepted) else 1)
    for r in files:
        if r["status"] != "ok":
            assert r["error_kind"] == "DestinationRefused" and "0x" in r["message"], r
    for path, ok in zip(direct.outputs, direct.accepted, strict=True):
        if not ok:
            continue
        sent = path.read_bytes()
        oid = orthanc.lookup_instance(read_meta(sent).sop_instance)
        assert oid is not None, path
        stored = orthanc.get(f"/instances/{oid}/file")
        assert dataset_differences(sent, stored) == [], path


# -- serve --forward -----------------------------------------------------------------------------


def test_gateway_answers_like_the_pacs(forwarded: SimpleNamespace, direct: SimpleNamespace) -> None:
    """Success exactly for the instances Orthanc accepts when sent directly; its refusals come
    back to the sender as they were; the damaged file fails with 0xC000 and a reason."""
    *sel, damaged = forwarded.results
    for r, ok, d in zip(sel, direct.accepted, direct.results, strict=True):
        assert (r.status == "ok") == ok, (r, d)
        if not ok:
            assert r.error_kind == "DestinationRefused"
            assert d["message"].split("answered ")[-1] in r.message, (r.message, d["message"])
    assert damaged.status == "failed"
    assert "0xC000" in damaged.message
    assert forwarded.code == 0, forwarded.log


def test_gateway_report_and_log(forwarded: SimpleNamespace, direct: SimpleNamespace) -> None:
    lines = forwarded.report
    files = [r for r in lines if r["type"] == "file"]
    assert len(files) == len(forwarded.files)
    summary = lines[-1]
    assert summary["type"] == "summary"
    n_ok = sum(direct.accepted)
    assert summary["ok"] == n_ok and summary["failed"] == len(forwarded.files) - n_ok
    assert summary["gateway"]["forwarded"] == n_ok and summary["gateway"]["queued"] == 0
    assert summary["key_fingerprint"] == Anonymizer(key=KEY_GATEWAY).key.fingerprint
    bad = [r for r in files if r["error_kind"] == "InvalidDicomError"]
    assert len(bad) == 1 and "truncated" in bad[0]["message"] and bad[0]["offset"] is not None
    assert "truncated" in forwarded.log and "0xC000" in forwarded.log  # the reason, logged
    assert "received" in forwarded.log and "destination up" in forwarded.log  # progress lines
    # the key never appears: log, report, queue
    secret = KEY_GATEWAY.decode()
    assert secret not in forwarded.log
    blobs = [p.read_bytes() for p in forwarded.spool.rglob("*") if p.is_file()]
    assert all(KEY_GATEWAY not in b for b in blobs)
    assert secret not in json.dumps(lines)


def test_disallowed_calling_aet_is_rejected(forwarded: SimpleNamespace) -> None:
    assert forwarded.rejected
    assert "'INTRUDER'" in forwarded.log and "rejected" in forwarded.log


def test_orthanc_holds_what_the_core_makes(orthanc: Orthanc, forwarded: SimpleNamespace) -> None:
    """Every accepted instance arrived; its data set is the core's output of its source (the
    PACS writes its own File Meta); UIDs are the keyed ones; no identity reached Orthanc."""
    anon = Anonymizer(key=KEY_GATEWAY)
    sources = [p for p, r in zip(forwarded.files, forwarded.results, strict=True) if r.ok]
    assert sources
    stored_blobs = []
    for src in sources:
        expected = anon.anonymize_bytes(src.read_bytes())
        meta = read_meta(expected)
        oid = orthanc.lookup_instance(meta.sop_instance)
        assert oid is not None, f"{src.name} did not arrive"
        stored = orthanc.get(f"/instances/{oid}/file")
        stored_blobs.append(stored)
        assert dataset_differences(expected, stored) == [], src.name
        tags = orthanc.get_json(f"/instances/{oid}/simplified-tags")
        ds = pydicom.dcmread(src, stop_before_pixels=True, force=True)
        for kw in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            assert tags[kw] == _core.keyed_uid(KEY_GATEWAY, str(ds[kw].value)), (src.name, kw)
        for ident in identities(src):
            assert not _leaks(ident, tags), (src.name, ident)
            assert len(ident) < 8 or ident.encode() not in stored, (src.name, ident)
    # studies and series group as in the source
    study_of = {}
    for src in sources:
        ds = pydicom.dcmread(src, stop_before_pixels=True, force=True)
        study_of[str(ds.SeriesInstanceUID)] = str(ds.StudyInstanceUID)
    for series, study in study_of.items():
        oid = orthanc.lookup_instance(_core.keyed_uid(KEY_GATEWAY, series))
        assert oid is None  # a series UID is not an instance
        found = json.loads(
            orthanc.request("/tools/lookup", data=_core.keyed_uid(KEY_GATEWAY, series).encode())
        )
        assert [f["Type"] for f in found] == ["Series"]
        parent = orthanc.get_json(f"/series/{found[0]['ID']}/study")
        assert parent["MainDicomTags"]["StudyInstanceUID"] == _core.keyed_uid(KEY_GATEWAY, study)
    patients = orthanc.get_json("/patients?expand")
    for src in sources:
        for ident in identities(src):
            assert not _leaks(ident, patients), (src.name, ident)


def _leaks(ident: str, tree: Any) -> bool:
    """Whether a JSON answer of Orthanc holds ``ident``: as a whole value or a component of one
    (``^``, ``=``, ``\\``, spaces); a long identity also inside any value (a short one, such as
    Patient ID ``0010``, would match inside dates and UIDs)."""
    values: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, str):
            values.append(x)

    walk(tree)
    for v in values:
        parts = {v.strip(), *(w for w in re.split(r"[\^=\\\s]+", v) if w)}
        if ident in parts or (len(ident) >= 8 and ident in v):
            return True
    return False


def test_dicomweb_gives_back_the_pixels_and_scan_finds_no_phi(
    orthanc: Orthanc, forwarded: SimpleNamespace, tmp_path: Path
) -> None:
    """Through Orthanc's DICOMweb: QIDO-RS finds every instance that arrived, WADO-RS gives back
    pixel data byte-identical to the source's; ``scan`` finds no PHI in what Orthanc stores."""
    from dicomscrub.validate import scan_pairs

    if orthanc.dicomweb is None:
        pytest.fail("Orthanc's DICOMweb plugin is missing: apt-get install -y orthanc-dicomweb")
    anon = Anonymizer(key=KEY_GATEWAY)
    pairs, pixels = [], 0
    for k, (src, r) in enumerate(zip(forwarded.files, forwarded.results, strict=True)):
        if not r.ok:
            continue
        m = read_meta(anon.anonymize_bytes(src.read_bytes()))
        found = orthanc.get_json(f"/dicom-web/instances?SOPInstanceUID={m.sop_instance}")
        assert len(found) == 1, src.name
        study, series = (found[0][t]["Value"][0] for t in ("0020000D", "0020000E"))
        wado = _wado_instance(orthanc, study, series, m.sop_instance)
        got = pydicom.dcmread(BytesIO(wado), force=True)
        source = pydicom.dcmread(src, force=True)
        for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            if kw in source:
                assert got[kw].value == source[kw].value, (src.name, kw)
                pixels += 1
        stored = tmp_path / f"{k:03d}.dcm"
        stored.write_bytes(
            orthanc.get(f"/instances/{orthanc.lookup_instance(m.sop_instance)}/file")
        )
        pairs.append((src, stored))
    assert pixels >= 80
    report = scan_pairs(pairs)
    assert report.checked == len(pairs) and report.findings == 0, report.to_json()[:3000]


def test_orthanc_renders_every_image_that_went_through_the_gateway(
    orthanc: Orthanc, forwarded: SimpleNamespace, direct: SimpleNamespace
) -> None:
    """A viewer can show what went through the gateway: Orthanc (with its GDCM plugin for
    JPEG 2000 and JPEG-LS) renders a preview of every image instance that arrived, except the
    few it cannot decode when the same image is sent to it directly (they are printed; the
    answer must then be the same both ways)."""
    if orthanc.gdcm is None:
        pytest.fail("Orthanc's GDCM plugin is missing: apt-get install -y orthanc-gdcm")
    anon = Anonymizer(key=KEY_GATEWAY)
    images, undecodable = 0, []
    pairs = zip(forwarded.files, forwarded.results, direct.outputs, strict=False)
    for src, r, sent_direct in pairs:
        if not r.ok:
            continue
        out = anon.anonymize_bytes(src.read_bytes())
        if not any(e["tag"] == 0x7FE00010 for e in _core.dump(out)["dataset"]):
            continue  # not an image (a structured report, a waveform, RT structures...)
        images += 1
        via = orthanc.lookup_instance(read_meta(out).sop_instance)
        assert via is not None, src.name
        if _preview(orthanc, via) == 200:
            continue
        straight = orthanc.lookup_instance(read_meta(sent_direct.read_bytes()).sop_instance)
        assert straight is not None, src.name
        assert _preview(orthanc, straight) != 200, f"{src.name}: rendered only when sent directly"
        undecodable.append(f"{src.name} ({read_meta(out).transfer_syntax})")
    print(f"{images} image instances, no preview for {len(undecodable)}: {undecodable}")
    assert images >= 80
    assert len(undecodable) <= 0.1 * images, undecodable


def _preview(o: Orthanc, oid: str) -> int:
    try:
        body = o.get(f"/instances/{oid}/preview")
    except urllib.error.HTTPError as exc:
        return exc.code
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    return 200


# -- destination down ----------------------------------------------------------------------------


def test_destination_down_queue_survives_a_restart(
    tmp_path: Path, corpus: dict[str, Any], direct: SimpleNamespace
) -> None:
    """Destination down: instances are queued durably before the sender hears Success; the
    gateway killed (SIGKILL) and restarted drains the queue once the PACS is up (an instance
    the PACS refuses then is kept aside, logged and reported); the PACS stopped later: queued
    again, delivered when it is back. Every instance arrives once."""
    from gwproc import Serve

    from conftest import make_orthanc

    pacs = make_orthanc(tmp_path / "pacs")  # not started: its port refuses connections
    key = _key_file(tmp_path, KEY_GATEWAY + b"-down")
    spool = tmp_path / "spool"
    port = free_port()
    args = [
        "--forward",
        f"ORTHANC@127.0.0.1:{pacs.dicom_port}",
        "--allow-aet",
        SENDER_AET,
        "--spool",
        str(spool),
        "--key-file",
        str(key),
        "--retry-min",
        "0.2",
        "--retry-max",
        "1",
        "--forward-timeout",
        "5",
    ]
    accepted = [p for p, ok in zip(corpus["files"], direct.accepted, strict=True) if ok]
    refused = [p for p, ok in zip(corpus["files"], direct.accepted, strict=True) if not ok]
    assert refused, "the selection should hold an instance Orthanc refuses"
    files = [*accepted[:5], refused[0]]
    later = accepted[5:8]
    gw = Serve(port, args, tmp_path).start()
    try:
        results = _send(files, gw.address, n=2)
        assert [r.status for r in results] == ["ok"] * len(files)
    finally:
        gw.kill()  # on the spot: what the sender heard must be on disk already
    anon = Anonymizer(key=KEY_GATEWAY + b"-down")
    expected = {}
    for src in files:
        out = anon.anonymize_bytes(src.read_bytes())
        expected[read_meta(out).sop_instance] = out
    with sqlite3.connect(spool / "queue.sqlite") as db:
        rows = db.execute("SELECT sop_instance, file, state FROM queue").fetchall()
    assert sorted(r[0] for r in rows) == sorted(expected) and {r[2] for r in rows} == {"queued"}
    for uid, name, _ in rows:
        queued = (spool / "files" / name).read_bytes()
        assert (
            queued[read_meta(queued).dataset_offset :]
            == expected[uid][read_meta(expected[uid]).dataset_offset :]
        )
    assert "destination unavailable" in gw.log()

    pacs.start()
    try:
        gw2 = Serve(port, args, tmp_path).start()
        try:
            ids = pacs.wait_for_instances(len(files) - 1, timeout=20)
            assert len(ids) == len(files) - 1, gw2.log()
            for uid, out in expected.items():
                oid = pacs.lookup_instance(uid)
                if oid is None:  # the refused one
                    continue
                assert dataset_differences(out, pacs.get(f"/instances/{oid}/file")) == []
            deadline = time.monotonic() + 10
            while _depth(spool) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _depth(spool) == 0
            assert len(list((spool / "dead").iterdir())) == 1
            assert "refused by the destination after it was queued" in gw2.log()
            # the PACS goes down while the gateway runs, then comes back
            pacs.stop()
            results = _send(later, gw2.address, n=1)
            assert [r.status for r in results] == ["ok"] * len(later)
            assert _depth(spool) == len(later)
            pacs.start()
            total = len(files) - 1 + len(later)
            ids = pacs.wait_for_instances(total, timeout=20)
            assert len(ids) == total, gw2.log()
        finally:
            assert gw2.stop() == 0
        report = _report(spool / "report.jsonl")
        notes = [r.get("note") for r in report if r["type"] == "file"]
        assert notes.count("queued") == len(files) + len(later)
        assert notes.count("delivered-from-queue") == total
        assert notes.count("refused-after-queueing") == 1
        summary = report[-1]
        assert summary["type"] == "summary" and summary["gateway"]["queue_depth"] == 0
        assert summary["gateway"]["dead"] == 1
        assert len(pacs.instances()) == total  # each once
    finally:
        pacs.stop()


def test_destination_stopped_during_a_transfer(
    tmp_path: Path, corpus: dict[str, Any], direct: SimpleNamespace
) -> None:
    """The PACS goes down (SIGKILL) while a sender streams instances through the gateway, then
    starts again: the sender hears Success for every instance, and every instance arrives once (one
    delivery per SOP Instance UID in the report; the PACS holds each)."""
    import threading

    from gwproc import Serve

    from conftest import make_orthanc

    small = [
        p
        for p, ok in zip(corpus["files"], direct.accepted, strict=True)
        if ok and p.stat().st_size < 200_000
    ]
    tree = tmp_path / "tree"
    files = []
    for i in range(240):  # distinct instances: each copy under its own key (new UIDs)
        dst = tree / f"{i:04d}.dcm"
        Anonymizer(key=f"stream copy {i // len(small)}".encode()).anonymize_file(
            small[i % len(small)], dst
        )
        files.append(dst)
    pacs = make_orthanc(tmp_path / "pacs").start()
    key = _key_file(tmp_path, KEY_GATEWAY + b"-stream")
    spool = tmp_path / "spool"
    gw = Serve(
        free_port(),
        ["--forward", f"ORTHANC@127.0.0.1:{pacs.dicom_port}", "--allow-aet", SENDER_AET,
         "--spool", str(spool), "--key-file", str(key), "--retry-min", "0.2",
         "--retry-max", "1", "--forward-timeout", "5"],
        tmp_path,
    ).start()  # fmt: skip
    results: list[Any] = []
    sender = threading.Thread(target=lambda: results.extend(_send(files, gw.address, n=1)))
    try:
        sender.start()
        deadline = time.monotonic() + 60
        while len(pacs.instances()) < 40:
            assert time.monotonic() < deadline and sender.is_alive(), gw.log()
            time.sleep(0.02)
        pacs.kill()  # mid-stream, on the spot
        stopped_at = time.monotonic()
        while time.monotonic() - stopped_at < 2 and sender.is_alive():
            time.sleep(0.05)
        pacs.start()
        sender.join(timeout=120)
        assert not sender.is_alive()
        assert [r.status for r in results] == ["ok"] * len(files)
        ids = pacs.wait_for_instances(len(files), timeout=60)
        deadline = time.monotonic() + 20
        while _depth(spool) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _depth(spool) == 0
    finally:
        code = gw.stop()
        pacs.stop()
    assert code == 0
    assert len(ids) == len(files), gw.log()
    assert "destination unavailable" in gw.log()  # the stop was felt, not missed
    report = _report(spool / "report.jsonl")
    delivered: dict[str, int] = {}
    queued = 0
    for r in report:
        if r["type"] != "file":
            continue
        assert r["status"] == "ok", r
        if r.get("note") == "queued":
            queued += 1
            continue
        delivered[r["sop_instance_uid"]] = delivered.get(r["sop_instance_uid"], 0) + 1
    assert queued >= 1
    assert len(delivered) == len(files) and set(delivered.values()) == {1}


def _depth(spool: Path) -> int:
    with sqlite3.connect(spool / "queue.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM queue WHERE state='queued'").fetchone()[0])


def test_spool_recovery_keeps_rows_and_drops_orphans(tmp_path: Path) -> None:
    s = Spool(tmp_path / "sp")
    e = s.put(
        sop_class="1.2", sop_instance="1.2.3", transfer_syntax="1.2.840.10008.1.2.1", data=b"x" * 10
    )
    (tmp_path / "sp" / "files" / "orphan.dcm").write_bytes(b"y")
    (tmp_path / "sp" / "tmp" / "staged.dcm").write_bytes(b"z")
    s.close()
    s = Spool(tmp_path / "sp")
    try:
        assert s.recovered == {"removed_files": 2, "missing": 0, "queued": 1}
        assert [x.sop_instance for x in s.due()] == ["1.2.3"]
        assert os.path.exists(e.path)
        with pytest.raises(Exception, match="another dicomscrub run"):
            Spool(tmp_path / "sp")  # one gateway per spool
    finally:
        s.close()


# -- serve --out, --stow -------------------------------------------------------------------------


def test_serve_out_dir_writes_layout_and_journal(
    tmp_path: Path, corpus: dict[str, Any], serve: Any
) -> None:
    key = _key_file(tmp_path, KEY_GATEWAY)
    out = tmp_path / "out"
    gw = serve(free_port(), ["--out", str(out), "--allow-aet", SENDER_AET, "--key-file", str(key)])
    files = corpus["files"][:5]
    results = _send(files, gw.address, n=2)
    assert [r.status for r in results] == ["ok"] * len(files)
    # an AE title that is not allowed cannot associate
    with pytest.raises(ConnectFailed, match="rejected"):
        Requestor(gw.address, [(VERIFICATION, "1.2.840.10008.1.2")], calling_aet="NOPE").open()
    assert gw.stop() == 0
    anon = Anonymizer(key=KEY_GATEWAY)
    written = sorted(p for p in out.rglob("*.dcm") if ".dicomscrub" not in p.parts)
    assert len(written) == len(files)
    for src in files:
        exp = anon.anonymize_bytes(src.read_bytes())
        m = read_meta(exp)
        match = [p for p in written if p.name == f"{m.sop_instance}.dcm"]
        assert len(match) == 1, src.name
        got = match[0].read_bytes()
        assert got[read_meta(got).dataset_offset :] == exp[m.dataset_offset :]
        rel = match[0].relative_to(out).parts
        assert len(rel) == 4  # patient/study/series/sop.dcm
    with sqlite3.connect(out / ".dicomscrub" / "journal.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM files WHERE status='ok'").fetchone()[0] == 5
        assert db.execute("SELECT layout FROM runs").fetchall() == [("patient/study/series",)]
    lines = _report(out / ".dicomscrub" / "report.jsonl")
    assert lines[-1]["type"] == "summary" and lines[-1]["ok"] == 5


def test_serve_stow_rs_into_orthanc_dicomweb(
    orthanc: Orthanc, tmp_path: Path, corpus: dict[str, Any], serve: Any
) -> None:
    if orthanc.dicomweb is None:
        pytest.fail(
            "the orthanc-dicomweb plugin is not installed: apt-get install -y orthanc-dicomweb",
            pytrace=False,
        )
    secret = KEY_GATEWAY + b"-stow"
    key = _key_file(tmp_path, secret)
    gw = serve(
        free_port(),
        [
            "--stow",
            f"{orthanc.dicomweb}/studies",
            "--allow-aet",
            SENDER_AET,
            "--spool",
            str(tmp_path / "spool"),
            "--key-file",
            str(key),
        ],
    )
    files = corpus["files"][:6]
    results = _send(files, gw.address, n=2)
    assert gw.stop() == 0
    anon = Anonymizer(key=secret)
    stored = 0
    for src, r in zip(files, results, strict=True):
        exp = anon.anonymize_bytes(src.read_bytes())
        m = read_meta(exp)
        oid = orthanc.lookup_instance(m.sop_instance)
        assert (oid is not None) == r.ok, (src.name, r)
        if oid is None:
            continue
        stored += 1
        # QIDO-RS finds it; WADO-RS gives back the same data set (pixel data included)
        tags = orthanc.get_json(f"/instances/{oid}/simplified-tags")
        found = orthanc.get_json(f"/dicom-web/instances?SOPInstanceUID={m.sop_instance}")
        assert len(found) == 1
        wado = _wado_instance(
            orthanc, tags["StudyInstanceUID"], tags["SeriesInstanceUID"], m.sop_instance
        )
        assert dataset_differences(exp, wado) == [], src.name
    assert stored >= 4


def _wado_instance(o: Orthanc, study: str, series: str, sop: str) -> bytes:
    body = o.request(
        f"/dicom-web/studies/{study}/series/{series}/instances/{sop}",
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
    )
    boundary = body.split(b"\r\n", 1)[0]
    part = body.split(boundary)[1]
    return part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]


# -- TLS -----------------------------------------------------------------------------------------


def _self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (openssl)."""
    import shutil

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail(
            "openssl is not installed (it makes the test certificates): apt-get install -y openssl"
        )
    cert, pkey = tmp / f"{name}-cert.pem", tmp / f"{name}-key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN=127.0.0.1/O={name}", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(pkey), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, pkey


def test_serve_over_tls(tmp_path: Path, serve: Any) -> None:
    import ssl

    cert, pkey = _self_signed(tmp_path, "gateway")
    port = free_port()
    from gwproc import Serve

    gw = Serve(
        port,
        [
            "--out",
            str(tmp_path / "out"),
            "--allow-aet",
            SENDER_AET,
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(pkey),
            "--key-file",
            str(_key_file(tmp_path, KEY_GATEWAY)),
        ],
        tmp_path,
    )
    gw.proc = None
    # readiness through TLS (the plain C-ECHO of Serve.start would fail)
    log = open(gw.log_path, "wb")
    gw.proc = subprocess.Popen(gw.argv, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    ctx = ssl.create_default_context(cafile=str(cert))
    addr = Address(GATEWAY_AET, "127.0.0.1", port)
    try:
        deadline = time.monotonic() + 20
        while True:
            req = Requestor(
                addr,
                [(VERIFICATION, "1.2.840.10008.1.2")],
                calling_aet=SENDER_AET,
                tls=ctx,
                connect_timeout=1,
            )
            try:
                assert req.echo() == 0
                break
            except ConnectFailed:
                assert time.monotonic() < deadline, gw.log()
                time.sleep(0.2)
            finally:
                req.close()
        plain = Requestor(
            addr,
            [(VERIFICATION, "1.2.840.10008.1.2")],
            calling_aet=SENDER_AET,
            connect_timeout=2,
            dimse_timeout=2,
        )
        with pytest.raises(ConnectFailed):
            plain.open()
        plain.close()
    finally:
        assert gw.stop() == 0


def test_forward_over_tls_into_orthanc(tmp_path: Path, corpus: dict[str, Any]) -> None:
    """TLS towards the PACS: Orthanc speaks DICOM over TLS only and requires a client
    certificate it trusts; the gateway (``--forward-tls-ca/-cert/-key``) forwards into it."""
    from gwproc import Serve

    from conftest import make_orthanc

    pacs_cert, pacs_key = _self_signed(tmp_path, "pacs")
    gw_cert, gw_key = _self_signed(tmp_path, "gateway-client")
    pacs = make_orthanc(
        tmp_path / "pacs",
        extra_config={
            "DicomTlsEnabled": True,
            "DicomTlsCertificate": str(pacs_cert),
            "DicomTlsPrivateKey": str(pacs_key),
            "DicomTlsTrustedCertificates": str(gw_cert),
            "DicomTlsRemoteCertificateRequired": True,
        },
    ).start()
    files = corpus["files"][:6]
    key = _key_file(tmp_path, KEY_GATEWAY + b"-tls")
    common = ["--allow-aet", SENDER_AET, "--key-file", str(key), "--forward-timeout", "10"]
    try:
        # without the client certificate Orthanc refuses the TLS handshake: queued, not lost
        plain = Serve(
            free_port(),
            ["--forward", f"ORTHANC@127.0.0.1:{pacs.dicom_port}", "--spool",
             str(tmp_path / "spool-plain"), "--forward-tls-ca", str(pacs_cert), *common],
            tmp_path,
        ).start()  # fmt: skip
        try:
            results = _send(files[:1], plain.address, n=1)
            assert [r.status for r in results] == ["ok"]
            assert "destination unavailable" in plain.log()
        finally:
            plain.kill()
        assert pacs.instances() == []
        gw = Serve(
            free_port(),
            ["--forward", f"ORTHANC@127.0.0.1:{pacs.dicom_port}", "--spool",
             str(tmp_path / "spool"), "--forward-tls-ca", str(pacs_cert),
             "--forward-tls-cert", str(gw_cert), "--forward-tls-key", str(gw_key), *common],
            tmp_path,
        ).start()  # fmt: skip
        try:
            results = _send(files, gw.address, n=2)
        finally:
            assert gw.stop() == 0
        assert "destination unavailable" not in gw.log(), gw.log()
        anon = Anonymizer(key=KEY_GATEWAY + b"-tls")
        for src, r in zip(files, results, strict=True):
            expected = anon.anonymize_bytes(src.read_bytes())
            oid = pacs.lookup_instance(read_meta(expected).sop_instance)
            assert (oid is not None) == r.ok, (src.name, r)
            if oid is not None:
                assert dataset_differences(expected, pacs.get(f"/instances/{oid}/file")) == []
        assert sum(r.ok for r in results) >= 4
    finally:
        pacs.stop()


def test_private_sop_class_goes_through(
    orthanc: Orthanc, tmp_path: Path, corpus: dict[str, Any]
) -> None:
    """A vendor's private storage SOP class (Siemens CSA Non-Image) is accepted, anonymized and
    forwarded like a public one (Orthanc takes unknown SOP classes in the tests' set-up)."""
    from gwproc import Serve
    from pydicom.uid import generate_uid

    private = "1.3.12.2.1107.5.9.1"
    ds = pydicom.dcmread(next(p for p in corpus["files"] if p.name == "CT_small.dcm"))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = private
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    src = tmp_path / "private.dcm"
    ds.save_as(src, enforce_file_format=True)
    key = _key_file(tmp_path, KEY_GATEWAY + b"-private")
    gw = Serve(
        free_port(),
        ["--forward", f"ORTHANC@127.0.0.1:{orthanc.dicom_port}", "--allow-aet", SENDER_AET,
         "--spool", str(tmp_path / "spool"), "--key-file", str(key)],
        tmp_path,
    ).start()  # fmt: skip
    try:
        results = _send([src], gw.address, n=1)
    finally:
        assert gw.stop() == 0
    assert [r.status for r in results] == ["ok"], results
    expected = Anonymizer(key=KEY_GATEWAY + b"-private").anonymize_bytes(src.read_bytes())
    oid = orthanc.lookup_instance(read_meta(expected).sop_instance)
    assert oid is not None, gw.log()
    stored = orthanc.get(f"/instances/{oid}/file")
    assert read_meta(stored).sop_class == private
    assert dataset_differences(expected, stored) == []
