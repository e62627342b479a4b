"""Benchmark: instances sent by DCMTK's ``storescu`` through ``dicomscrub serve`` into a real
PACS (Orthanc) against the same files sent by ``storescu`` straight into it (one association
per transfer syntax, serial, as a modality or a PACS export sends; the issue's target: the
gateway adds under 25 % to the wall time). Also printed: pynetdicom straight into Orthanc, the
cost of the gateway's forward leg on its own.

Both DCMTK programs (storescu, Orthanc) run with ``TCP_NODELAY=1``: Debian's DCMTK leaves
Nagle's algorithm on, which makes every C-STORE wait ~40 ms and would hide any gateway cost.

    pytest benches/test_bench_gateway.py --benchmark-disable -s    # smoke: 40 instances
    DICOMSCRUB_BENCH_GATEWAY_INSTANCES=1000 pytest benches/test_bench_gateway.py -s
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dicomscrub.anonymizer import Anonymizer
from dicomscrub.bench import load_benches
from dicomscrub.gateway.address import Address
from dicomscrub.gateway.send import prepare, send_items

corpus, _engines = load_benches(Path(__file__).resolve().parent)
_GATEWAY_TESTS = Path(__file__).resolve().parent.parent / "tests" / "gateway"

SMOKE_INSTANCES = 40
FULL_INSTANCES = 600
TARGET_OVERHEAD = 0.25


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


orthanc_mod = _load("dicomscrub_bench_orthanc", _GATEWAY_TESTS / "orthanc.py")
gwproc = _load("dicomscrub_bench_gwproc", _GATEWAY_TESTS / "gwproc.py")
helpers = _load("dicomscrub_bench_gwhelpers", _GATEWAY_TESTS / "helpers.py")


def _disabled(config: pytest.Config) -> bool:
    try:
        return bool(config.getoption("benchmark_disable"))
    except ValueError:
        return True


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def instances(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``n`` distinct instances (anonymized copies of the corpus files Orthanc accepts, each
    copy under its own key: new UIDs) in a tree."""
    if orthanc_mod.find_orthanc() is None:
        pytest.fail(orthanc_mod.INSTALL_HINT, pytrace=False)
    default = SMOKE_INSTANCES if _disabled(request.config) else FULL_INSTANCES
    n = int(os.environ.get("DICOMSCRUB_BENCH_GATEWAY_INSTANCES") or default)
    tmp = tmp_path_factory.mktemp("bench-gateway")
    picked = helpers.pick_corpus(tuple(corpus.real_corpus()), 60, max_size=1_000_000)["files"]
    # keep what Orthanc takes when sent directly
    probe_dir = tmp / "probe"
    probe = orthanc_mod.Orthanc(tmp / "probe-pacs").start()
    try:
        anon = Anonymizer(key=b"bench probe")
        paths = []
        for k, src in enumerate(picked):
            dst = probe_dir / f"{k:03d}.dcm"
            anon.anonymize_file(src, dst)
            paths.append(dst)
        items = prepare([(str(p), p.stat().st_size) for p in paths])
        to = Address(probe.aet, "127.0.0.1", probe.dicom_port)
        results = send_items(items, to, calling_aet="PROBE", associations=2)
    finally:
        probe.stop()
    accepted = [src for src, r in zip(picked, results, strict=True) if r.ok]
    assert len(accepted) >= 10, results
    tree = tmp / "tree"
    files = []
    for i in range(n):
        src = accepted[i % len(accepted)]
        dst = tree / f"{i // 100:03d}" / f"{i:05d}.dcm"
        Anonymizer(key=f"bench copy {i // len(accepted)}".encode()).anonymize_file(src, dst)
        files.append(dst)
    return files


def _send(files: list[Path], to: Address) -> tuple[float, list[Any]]:
    """pynetdicom, as the gateway's forward leg sends (one association, file by file)."""
    items = prepare([(str(p), p.stat().st_size) for p in files])
    t0 = time.perf_counter()
    results = send_items(items, to, calling_aet=gwproc.SENDER_AET, associations=1)
    return time.perf_counter() - t0, results


def _storescu(files: list[Path], aec: str, port: int) -> float:
    """DCMTK's storescu, one association per transfer syntax: the wall time; every instance
    must succeed."""
    t0 = time.perf_counter()
    runs = orthanc_mod.storescu(files, aec, port, aet=gwproc.SENDER_AET)
    seconds = time.perf_counter() - t0
    for proc in runs:
        assert proc.returncode == 0 and "E:" not in proc.stderr, proc.stderr[-2000:]
    return seconds


#: a Storage SCP that answers Success and does nothing else, set up as the gateway's listener
#: (the same contexts, TCP_NODELAY, the same pynetdicom loop delay): the floor of any gateway
#: built on pynetdicom
_NOOP_SCP = """
import sys
from pynetdicom import AE, evt, _config
from dicomscrub.gateway.dimse import NO_DELAY, VERIFICATION, storage_sop_classes, transfer_syntaxes
_config.UNRESTRICTED_STORAGE_SERVICE = True
ae = AE("NOOP")
for uid in storage_sop_classes():
    ae.add_supported_context(uid, transfer_syntaxes())
ae.add_supported_context(VERIFICATION, transfer_syntaxes()[:4])
ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True,
                evt_handlers=[NO_DELAY, (evt.EVT_C_STORE, lambda event: 0x0000)])
"""


def _storescu_into(argv: list[str], files: list[Path], port: int) -> float:
    """Start a receiver (``argv``), wait until it listens on ``port``, time storescu into it."""
    import subprocess

    proc = subprocess.Popen(
        argv, env=orthanc_mod.dcmtk_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:  # listening yet?
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, argv
                time.sleep(0.05)
        return _storescu(files, "NOOP", port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _noop_scp_seconds(files: list[Path]) -> float:
    port = orthanc_mod.free_port()
    return _storescu_into([sys.executable, "-c", _NOOP_SCP, str(port)], files, port)


def _storescp_seconds(files: list[Path]) -> float:
    """storescu into DCMTK's storescp that receives and discards (``--ignore``): storescu's own
    cost and the transport, without any PACS work."""
    import shutil

    binary = shutil.which("storescp")
    assert binary is not None, "storescp (DCMTK) is not installed: apt-get install -y dcmtk"
    port = orthanc_mod.free_port()
    return _storescu_into([binary, "--ignore", "+xa", "-aet", "NOOP", str(port)], files, port)


def test_gateway_vs_direct_into_orthanc(
    instances: list[Path],
    tmp_path: Path,
    benchmark: Any,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    if orthanc_mod.find_storescu() is None:
        pytest.fail("storescu (DCMTK) is not installed: apt-get install -y dcmtk", pytrace=False)
    n = len(instances)
    mb = sum(p.stat().st_size for p in instances) / 1e6

    direct_pacs = orthanc_mod.Orthanc(tmp_path / "direct-pacs").start()
    try:
        pacs_cpu0 = _cpu_seconds(direct_pacs.proc.pid)
        t_direct = _storescu(instances, direct_pacs.aet, direct_pacs.dicom_port)
        pacs_cpu_direct = _cpu_seconds(direct_pacs.proc.pid) - pacs_cpu0
        assert len(direct_pacs.instances()) == n
        direct_pacs.delete_everything()
        to = Address(direct_pacs.aet, "127.0.0.1", direct_pacs.dicom_port)
        t_pynetdicom, results = _send(instances, to)
        assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
        assert len(direct_pacs.instances()) == n
    finally:
        direct_pacs.stop()

    t_noop = _noop_scp_seconds(instances)
    t_storescp = _storescp_seconds(instances)
    pacs = orthanc_mod.Orthanc(tmp_path / "gateway-pacs").start()
    key = tmp_path / "key"
    key.write_text("bench gateway key\n")
    gw = gwproc.Serve(
        orthanc_mod.free_port(),
        ["--forward", f"{pacs.aet}@127.0.0.1:{pacs.dicom_port}", "--allow-aet",
         gwproc.SENDER_AET, "--spool", str(tmp_path / "spool"), "--key-file", str(key)],
        tmp_path,
    )  # fmt: skip
    gw.start()
    figures: dict[str, float] = {}
    try:
        assert gw.proc is not None

        def through_gateway() -> None:
            cpu0, pacs0 = _cpu_seconds(gw.proc.pid), _cpu_seconds(pacs.proc.pid)
            figures["wall"] = _storescu(instances, gw.aet, gw.port)
            figures["gateway_cpu"] = _cpu_seconds(gw.proc.pid) - cpu0
            figures["pacs_cpu"] = _cpu_seconds(pacs.proc.pid) - pacs0

        benchmark.group = "gateway"
        benchmark.pedantic(through_gateway, rounds=1, iterations=1)
        assert len(pacs.wait_for_instances(n, timeout=30)) == n  # forwarded, not just queued
        assert "destination unavailable" not in gw.log()
    finally:
        gw.stop()
        pacs.stop()

    t_gw = figures["wall"]
    overhead = t_gw / t_direct - 1
    floor = (t_noop + max(t_direct - t_storescp, 0.0)) / t_direct - 1
    benchmark.extra_info.update(
        instances=n,
        megabytes=round(mb, 2),
        direct_s=round(t_direct, 3),
        pynetdicom_direct_s=round(t_pynetdicom, 3),
        noop_scp_s=round(t_noop, 3),
        storescp_s=round(t_storescp, 3),
        gateway_s=round(t_gw, 3),
        overhead=round(overhead, 3),
        pynetdicom_floor=round(floor, 3),
        gateway_cpu_s=round(figures["gateway_cpu"], 3),
    )

    def line(label: str, t: float) -> str:
        rate = f"{n / t:7.1f} inst/s {mb / t:6.1f} MB/s {t / n * 1e3:6.2f} ms/inst"
        return f"  {label:<38} {t:6.2f} s {rate}"

    lines = [
        f"gateway benchmark: {n} instances, {mb:.1f} MB, one association per transfer syntax, "
        "Orthanc (storescu and Orthanc with TCP_NODELAY=1)",
        line("storescu straight to Orthanc", t_direct) + f"  (Orthanc CPU {pacs_cpu_direct:.2f} s)",
        line("pynetdicom straight to Orthanc", t_pynetdicom) + "  (the gateway's forward leg)",
        line("storescu into a no-op pynetdicom SCP", t_noop) + "  (the gateway's receive leg)",
        line("storescu into DCMTK storescp --ignore", t_storescp)
        + "  (storescu's own cost and the transport)",
        line("storescu through the gateway", t_gw)
        + f"  (gateway CPU {figures['gateway_cpu']:.2f} s; "
        f"Orthanc CPU {figures['pacs_cpu']:.2f} s)",
        f"  overhead of the gateway: {overhead:+.0%} wall time against storescu straight to "
        f"Orthanc (target < +{TARGET_OVERHEAD:.0%})",
        f"  floor of any gateway receiving with pynetdicom and forwarding before it answers: "
        f"{floor:+.0%} (no-op pynetdicom SCP + Orthanc's own share, direct - storescp)",
    ]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    if overhead > TARGET_OVERHEAD and not _disabled(request.config):
        warnings.warn(f"the gateway adds {overhead:.0%} to the wall time", stacklevel=1)
