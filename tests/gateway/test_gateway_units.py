"""The gateway's parts without a PACS: addresses, File Meta, statuses, STOW-RS answers, the
spool, and the queue worker's rules (in-process gateway, a scripted destination)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pydicom.data
import pytest
from orthanc import free_port

from dicomscrub.anonymizer import Anonymizer
from dicomscrub.gateway.address import Address, parse_address
from dicomscrub.gateway.destinations import Destination, Outgoing, Result, Session, _stow_result
from dicomscrub.gateway.dimse import (
    ConnectFailed,
    NoAnswer,
    is_accepted,
    is_transient,
    read_meta,
    read_meta_file,
    status_text,
)
from dicomscrub.gateway.send import prepare, send_items
from dicomscrub.gateway.server import Gateway, GatewayOptions
from dicomscrub.gateway.spool import Spool

KEY = b"gateway unit key: not a secret"


def test_parse_address() -> None:
    assert parse_address("PACS@127.0.0.1:104") == Address("PACS", "127.0.0.1", 104)
    assert parse_address("A@[::1]:11112") == Address("A", "::1", 11112)
    assert str(Address("A", "::1", 11112)) == "A@[::1]:11112"
    assert parse_address("GW@localhost:0", allow_port_zero=True).port == 0
    for bad in (
        "PACS:104",
        "PACS@host",
        "@h:1",
        "A@h:0",
        "A@h:70000",
        "ABCDEFGHIJKLMNOPQ@h:1",
        "A\\B@h:1",
    ):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_read_meta() -> None:
    path = pydicom.data.get_testdata_file("CT_small.dcm")
    m = read_meta_file(path)
    ds = pydicom.dcmread(path)
    assert m.sop_class == ds.file_meta.MediaStorageSOPClassUID
    assert m.sop_instance == ds.file_meta.MediaStorageSOPInstanceUID
    assert m.transfer_syntax == ds.file_meta.TransferSyntaxUID
    data = Path(path).read_bytes()
    assert data[m.dataset_offset : m.dataset_offset + 2] == b"\x08\x00"
    with pytest.raises(ValueError, match="DICM"):
        read_meta(b"\x00" * 200)
    with pytest.raises(ValueError):
        read_meta(data[:150])


def test_statuses() -> None:
    assert is_accepted(0) and is_accepted(0xB000) and not is_accepted(0xA700)
    assert is_transient(0xA700) and not is_transient(0xC000)
    assert status_text(0xC000) == "failure 0xC000 (cannot understand)"
    assert status_text(0x0122) == "failure 0x0122 (SOP class not supported)"


def _sq(tag: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {tag: {"vr": "SQ", "Value": items}}


def test_stow_answers() -> None:
    ok = _sq("00081199", [{"00081155": {"vr": "UI", "Value": ["1.2.3"]}}])
    assert _stow_result(200, json.dumps(ok).encode(), "1.2.3", "u").status == 0
    failed = _sq(
        "00081198",
        [
            {
                "00081155": {"vr": "UI", "Value": ["1.2.3"]},
                "00081197": {"vr": "US", "Value": [0xA700]},
            }
        ],
    )
    r = _stow_result(409, json.dumps(failed).encode(), "1.2.3", "u")
    assert r.status == 0xA700 and "0xA700" in (r.message or "")
    assert _stow_result(400, b"bad request", "1.2.3", "u").status == 0xC000
    assert _stow_result(415, b"", "1.2.3", "u").status == 0x0122
    warn = _sq(
        "00081199",
        [
            {
                "00081155": {"vr": "UI", "Value": ["1.2.3"]},
                "00081196": {"vr": "US", "Value": [0xB000]},
            }
        ],
    )
    assert _stow_result(202, json.dumps(warn).encode(), "1.2.3", "u").status == 0xB000


def test_spool_order_of_outcomes(tmp_path: Path) -> None:
    s = Spool(tmp_path / "sp")
    try:
        a = s.put(
            sop_class="1.2", sop_instance="1.1", transfer_syntax="1.2.840.10008.1.2", data=b"a"
        )
        b = s.put(
            sop_class="1.2", sop_instance="1.2", transfer_syntax="1.2.840.10008.1.2", data=b"b"
        )
        assert [e.id for e in s.due()] == [a.id, b.id] and s.depth() == 2
        s.postpone_all(time.time() + 60, "down")
        assert s.due() == [] and s.next_due() is not None
        assert [e.attempts for e in s.entries()] == [0, 0]  # the destination's fault, not theirs
        s.defer([a], "no answer", time.time() - 1)
        assert [(e.id, e.attempts) for e in s.due()] == [(a.id, 1)]
        dead = s.kill(a, "refused")
        assert Path(dead).read_bytes() == b"a" and s.dead_count() == 1
        s.delivered([b])
        assert s.depth() == 0 and not Path(b.path).exists()
    finally:
        s.close()


# -- the queue worker, in process ----------------------------------------------------------------


class Scripted(Destination):
    """A destination whose answers the test decides: ``down`` refuses connections; a SOP
    Instance UID in ``hang`` is never answered; ``refuse`` maps UIDs to failure statuses."""

    label = "scripted://pacs"

    def __init__(self) -> None:
        self.down = False
        self.hang: set[str] = set()
        self.refuse: dict[str, int] = {}
        self.stored: list[str] = []

    def session(self, pairs: list[tuple[str, str]]) -> Session:
        return _ScriptedSession(self)


class _ScriptedSession(Session):
    def __init__(self, dest: Scripted) -> None:
        self.dest = dest

    def send(self, item: Outgoing) -> Result:
        d = self.dest
        if d.down:
            raise ConnectFailed("connection refused")
        if item.sop_instance in d.hang:
            raise NoAnswer("no answer")
        if item.sop_instance in d.refuse:
            return Result(d.refuse[item.sop_instance], "refused")
        d.stored.append(item.sop_instance)
        return Result(0)


def _gateway(tmp_path: Path, dest: Scripted) -> Gateway:
    spool = Spool(tmp_path / "spool")
    gw = Gateway(
        Anonymizer(key=KEY),
        dest,
        GatewayOptions(
            listen=Address("GW", "127.0.0.1", free_port()),
            allow_aets=["MODALITY"],
            retry_min=0.05,
            retry_max=0.2,
            max_attempts=3,
            report_path=str(tmp_path / "report.jsonl"),
            progress=False,
        ),
        spool=spool,
    )
    gw.start()
    return gw


FILES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm"]


def _send(gw: Gateway, names: list[str]) -> list[Any]:
    paths = [pydicom.data.get_testdata_file(n) for n in names]
    items = prepare([(p, Path(p).stat().st_size) for p in paths])
    return send_items(items, gw.address, calling_aet="MODALITY", associations=1)


def _out_uid(name: str) -> str:
    data = Path(pydicom.data.get_testdata_file(name)).read_bytes()
    return read_meta(Anonymizer(key=KEY).anonymize_bytes(data)).sop_instance


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_refusals_come_back_and_down_means_queued(tmp_path: Path) -> None:
    dest = Scripted()
    dest.refuse[_out_uid("MR_small.dcm")] = 0xA900
    gw = _gateway(tmp_path, dest)
    try:
        r = _send(gw, FILES[:2])
        assert [x.status for x in r] == ["ok", "failed"] and "0xA900" in (r[1].message or "")
        dest.down = True
        r = _send(gw, FILES[2:])
        assert [x.status for x in r] == ["ok", "ok"]  # queued: Success
        assert gw.destination_down
        dest.down = False
        _wait(lambda: gw.spool is not None and gw.spool.depth() == 0)
        _wait(lambda: not gw.destination_down)
        assert sorted(dest.stored) == sorted(_out_uid(n) for n in (FILES[0], *FILES[2:]))
    finally:
        report = gw.stop()
    assert (report.ok, report.failed, report.queued, report.delivered_from_queue) == (3, 1, 2, 2)


def test_an_instance_never_answered_is_set_aside_while_others_go(tmp_path: Path) -> None:
    dest = Scripted()
    poison = _out_uid("JPEG2000.dcm")
    dest.hang.add(poison)
    gw = _gateway(tmp_path, dest)
    try:
        r = _send(gw, FILES)
        assert all(x.ok for x in r)  # the hanging one: queued (Success), the rest forwarded
        assert gw.spool is not None
        _wait(lambda: gw.spool.dead_count() == 1)
        assert gw.spool.depth() == 0
        assert poison not in dest.stored and len(dest.stored) == 3
    finally:
        report = gw.stop()
    assert report.dead == 1
    lines = [json.loads(x) for x in (tmp_path / "report.jsonl").read_text().splitlines()]
    dead = [x for x in lines if x.get("note") == "refused-after-queueing"]
    assert len(dead) == 1 and "no answer" in dead[0]["message"]


def test_serve_usage_errors(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dicomscrub.cli import cli

    runner = CliRunner()
    base = ["serve", "--listen", "GW@127.0.0.1:0"]
    cases = [
        ([], "exactly one destination"),
        (["--out", str(tmp_path), "--stow", "http://x/"], "exactly one destination"),
        (["--out", str(tmp_path)], "--allow-aet"),
        (["--out", str(tmp_path), "--allow-aet", "A", "--allow-any-aet"], "exclude each other"),
        (["--forward", "PACS:104", "--allow-aet", "A"], "AET@HOST:PORT"),
        (["--out", str(tmp_path), "--allow-aet", "A", "--tls-cert", __file__], "both"),
    ]
    for args, message in cases:
        result = runner.invoke(cli, [*base, *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
