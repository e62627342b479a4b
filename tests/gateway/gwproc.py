"""``dicomscrub serve`` as a subprocess (tests and benchmarks)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

GATEWAY_AET = "DICOMSCRUB"
SENDER_AET = "MODALITY"


class Serve:
    """``dicomscrub serve ...`` as a subprocess; ready once it answers a C-ECHO."""

    def __init__(
        self,
        port: int,
        args: list[str],
        workdir: Path,
        *,
        aet: str = GATEWAY_AET,
        sender_aet: str = SENDER_AET,
    ) -> None:
        self.port = port
        self.aet = aet
        self.sender_aet = sender_aet
        self.argv = [
            sys.executable,
            "-m",
            "dicomscrub",
            "serve",
            "--listen",
            f"{aet}@127.0.0.1:{port}",
            *args,
        ]
        self.workdir = workdir
        self.log_path = workdir / f"serve-{port}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Serve:
        from dicomscrub.gateway.address import Address
        from dicomscrub.gateway.dimse import VERIFICATION, DestinationUnavailable, Requestor

        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + timeout
        addr = Address(self.aet, "127.0.0.1", self.port)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited ({self.proc.returncode}): {self.log()}")
            req = Requestor(
                addr,
                [(VERIFICATION, "1.2.840.10008.1.2")],
                calling_aet=self.sender_aet,
                connect_timeout=1,
            )
            try:
                if req.echo() == 0:
                    return self
            except DestinationUnavailable:
                pass
            finally:
                req.close()
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"serve did not answer a C-ECHO: {self.log()}")
            time.sleep(0.1)

    @property
    def address(self):  # type: ignore[no-untyped-def]
        from dicomscrub.gateway.address import Address

        return Address(self.aet, "127.0.0.1", self.port)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM: a clean stop (summary written); the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        """SIGKILL: the gateway dies on the spot."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Serve:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
