"""The ``serve`` and ``send`` commands (registered through ``dicomscrub.cli.EXTENSIONS``).

pynetdicom (the ``gateway`` extra) is imported only when one of them runs.
"""

from __future__ import annotations

import logging
import os
import signal
import ssl
import sys
import threading
from typing import Any, NoReturn

import click

from dicomscrub.gateway.address import Address, check_aet, parse_address

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

__all__ = ["register", "send", "serve"]


class _Usage(click.ClickException):
    exit_code = EXIT_USAGE


def _fail(message: str) -> NoReturn:
    raise _Usage(message)


def _need_pynetdicom() -> None:
    try:
        import pynetdicom  # noqa: F401
    except ModuleNotFoundError:
        _fail("the gateway needs pynetdicom: pip install 'dicomscrub[gateway]'")


def _address(text: str, what: str, *, allow_port_zero: bool = False) -> Address:
    try:
        return parse_address(text, allow_port_zero=allow_port_zero)
    except ValueError as exc:
        _fail(f"{what}: {exc}")


def _state_home() -> str:
    base = os.environ.get("XDG_STATE_HOME") or ""
    if not (base and os.path.isabs(base)):
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "dicomscrub")


def _setup_logging(level: str) -> None:
    logger = logging.getLogger("dicomscrub")
    if not any(getattr(h, "_dicomscrub", False) for h in logger.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s dicomscrub: %(levelname)s %(message)s"))
        h._dicomscrub = True  # type: ignore[attr-defined]
        logger.addHandler(h)
    logger.setLevel(getattr(logging, level.upper()))
    logger.propagate = False
    # pynetdicom's own errors ("connection refused"...) repeat what the gateway logs itself;
    # its debug output would print data sets: never below warnings
    quiet = logging.WARNING if level == "debug" else logging.CRITICAL
    logging.getLogger("pynetdicom").setLevel(quiet)


def _server_tls(cert: str | None, key: str | None, ca: str | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        if ca is not None:
            _fail("--tls-ca needs --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        _fail("TLS needs both --tls-cert and --tls-key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
        if ca is not None:
            ctx.load_verify_locations(ca)
            ctx.verify_mode = ssl.CERT_REQUIRED  # callers must show a certificate signed by CA
    except (OSError, ssl.SSLError) as exc:
        _fail(f"TLS: {exc}")
    return ctx


def _client_tls(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if ca is None and cert is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    try:
        if cert is not None:
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        _fail(f"TLS: {exc}")
    return ctx


# -- serve -------------------------------------------------------------------------------------


@click.command()
@click.option(
    "--listen",
    "listen",
    required=True,
    metavar="AET@HOST:PORT",
    help="The gateway's AE title and the address it listens on (port 0: any free).",
)
@click.option(
    "--forward", "forward", metavar="AET@HOST:PORT", help="Destination: C-STORE to this PACS."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Destination: this folder (patient/study/series layout, journal).",
)
@click.option(
    "--stow",
    "stow_url",
    metavar="URL",
    help="Destination: DICOMweb STOW-RS (e.g. http://pacs/dicom-web/studies).",
)
@click.option(
    "--profile",
    default="basic",
    show_default=True,
    metavar="basic|keep-all|FILE.toml",
    help="The profile: a built-in one or a TOML file.",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="NAME",
    help="A PS3.15 option (repeatable): see `dicomscrub profile list`.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    help="The project key file (default: $DICOMSCRUB_KEY_FILE, else ~/.config/dicomscrub/key).",
)
@click.option(
    "--allow-aet",
    "allow_aets",
    multiple=True,
    metavar="AET",
    help="A calling AE title allowed to send (repeatable); others are rejected.",
)
@click.option(
    "--allow-any-aet", is_flag=True, help="Accept any calling AE title (instead of --allow-aet)."
)
@click.option(
    "--spool",
    type=click.Path(file_okay=False),
    help="The durable queue's folder (default: $XDG_STATE_HOME/dicomscrub/spool/AET).",
)
@click.option(
    "--calling-aet",
    metavar="AET",
    help="The AE title used towards the PACS (default: the --listen one).",
)
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Anonymization threads.")
@click.option("--max-associations", type=click.IntRange(min=1), default=16, show_default=True)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS on the listening side: the certificate (PEM).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS: the private key of --tls-cert (PEM).",
)
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS: require client certificates signed by this CA (PEM).",
)
@click.option(
    "--forward-tls-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS towards the PACS or STOW server: trust this CA (PEM).",
)
@click.option(
    "--forward-tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS towards the PACS: the gateway's client certificate (PEM), for a PACS that "
    "requires one.",
)
@click.option(
    "--forward-tls-key",
    type=click.Path(exists=True, dir_okay=False),
    help="The private key of --forward-tls-cert (PEM).",
)
@click.option(
    "--retry-min",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Seconds before retrying a destination that is down (doubles each time).",
)
@click.option(
    "--retry-max",
    type=click.FloatRange(min=0.01),
    default=60.0,
    show_default=True,
    help="Longest wait between retries.",
)
@click.option(
    "--forward-timeout",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="Seconds to wait for the destination's answer to one instance.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="A queued instance the destination leaves unanswered this many times (while it takes "
    "others) is given up: kept in SPOOL/dead, logged and reported.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="The JSON Lines report (appended; default SPOOL/report.jsonl, or "
    "DIR/.dicomscrub/report.jsonl with --out).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Live progress on stderr (default: only when stderr is a terminal).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def serve(
    listen: str,
    forward: str | None,
    out_dir: str | None,
    stow_url: str | None,
    profile: str,
    options: tuple[str, ...],
    key_file: str | None,
    allow_aets: tuple[str, ...],
    allow_any_aet: bool,
    spool: str | None,
    calling_aet: str | None,
    jobs: int | None,
    max_associations: int,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
    forward_tls_ca: str | None,
    forward_tls_cert: str | None,
    forward_tls_key: str | None,
    retry_min: float,
    retry_max: float,
    forward_timeout: float,
    max_attempts: int,
    report_path: str | None,
    progress: bool | None,
    log_level: str,
) -> None:
    """Receive over DICOM (Storage SCP), anonymize each instance in memory, forward it.

    Exactly one destination: --forward (a PACS), --out (a folder) or --stow (DICOMweb). The
    sender gets Success only once the anonymized instance is stored, forwarded, or durably
    queued (destination down: retried with backoff, across restarts). Stop with Ctrl-C or
    SIGTERM.
    """
    _need_pynetdicom()
    if sum(x is not None for x in (forward, out_dir, stow_url)) != 1:
        _fail("give exactly one destination: --forward, --out or --stow")
    if not allow_aets and not allow_any_aet:
        _fail("name the calling AE titles allowed to send: --allow-aet AET (or --allow-any-aet)")
    if allow_aets and allow_any_aet:
        _fail("--allow-aet and --allow-any-aet exclude each other")
    try:
        allowed = [check_aet(a) for a in allow_aets]
        calling = check_aet(calling_aet) if calling_aet else None
    except ValueError as exc:
        _fail(str(exc))
    if retry_max < retry_min:
        _fail("--retry-max must be at least --retry-min")
    addr = _address(listen, "--listen", allow_port_zero=True)
    to = _address(forward, "--forward") if forward is not None else None
    _setup_logging(log_level)

    from dicomscrub.anonymizer import Anonymizer
    from dicomscrub.cli import load_profile
    from dicomscrub.errors import DicomScrubError, KeyFileError, ProfileError
    from dicomscrub.gateway.destinations import (
        DicomDestination,
        DirDestination,
        StowDestination,
    )
    from dicomscrub.gateway.server import Gateway, GatewayOptions
    from dicomscrub.gateway.spool import Spool

    try:
        anon = Anonymizer(load_profile(profile, options), key_file=key_file)
    except (ProfileError, KeyFileError) as exc:
        _fail(str(exc))
    server_tls = _server_tls(tls_cert, tls_key, tls_ca)
    if (forward_tls_cert is None) != (forward_tls_key is None):
        _fail("--forward-tls-cert and --forward-tls-key go together")
    if forward_tls_cert is not None and forward_tls_ca is None:
        _fail("--forward-tls-cert needs --forward-tls-ca (the CA of the PACS's certificate)")
    client_tls = _client_tls(forward_tls_ca, forward_tls_cert, forward_tls_key)

    spool_obj = None
    try:
        if out_dir is not None:
            dest: Any = DirDestination(out_dir, anon, source=addr.url)
        else:
            spool_dir = spool or os.path.join(_state_home(), "spool", addr.aet)
            spool_obj = Spool(spool_dir)
            if to is not None:
                dest = DicomDestination(
                    to,
                    calling_aet=calling or addr.aet,
                    spool=spool_obj,
                    tls=client_tls,
                    dimse_timeout=forward_timeout,
                )
            else:
                assert stow_url is not None
                dest = StowDestination(stow_url, tls=client_tls, timeout=forward_timeout)
        gw = Gateway(
            anon,
            dest,
            GatewayOptions(
                listen=addr,
                allow_aets=allowed or None,
                jobs=jobs,
                max_associations=max_associations,
                tls=server_tls,
                retry_min=retry_min,
                retry_max=retry_max,
                max_attempts=max_attempts,
                report_path=report_path,
                progress=progress,
            ),
            spool=spool_obj,
        )
        gw.start()
    except (DicomScrubError, OSError, ValueError) as exc:
        if spool_obj is not None:
            spool_obj.close()
        _fail(str(exc))

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    while not stop.wait(0.5):
        pass
    report = gw.stop()
    click.echo(
        f"received {report.files}  ok {report.ok}  failed {report.failed}  "
        f"queued {report.queued}  delivered from queue {report.delivered_from_queue}  "
        f"still queued {report.queue_depth}",
        err=True,
    )


# -- send --------------------------------------------------------------------------------------


@click.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.option("--to", "to", required=True, metavar="AET@HOST:PORT", help="The PACS.")
@click.option(
    "--associations",
    "-n",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Associations in parallel.",
)
@click.option(
    "--calling-aet",
    default="DICOMSCRUB",
    show_default=True,
    metavar="AET",
    help="This side's AE title.",
)
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS: trust this CA (PEM) for the PACS's certificate.",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS: a client certificate (PEM).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS: the client certificate's key (PEM).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="Write a JSON Lines report (one line per file, then a summary).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Live progress on stderr (default: only when stderr is a terminal).",
)
def send(
    src: str,
    to: str,
    associations: int,
    calling_aet: str,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    report_path: str | None,
    progress: bool | None,
) -> None:
    """Send every DICOM file under SRC to a PACS (C-STORE), each in its own transfer syntax.

    Exit codes: 0 all sent (non-DICOM files skipped are not failures), 1 some file failed,
    2 usage error.
    """
    _need_pynetdicom()
    peer = _address(to, "--to")
    try:
        calling = check_aet(calling_aet)
    except ValueError as exc:
        _fail(str(exc))
    tls = _client_tls(tls_ca, tls_cert, tls_key)
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)  # failures are reported per file

    from dicomscrub.gateway.send import send_tree
    from dicomscrub.progress import Progress, should_show
    from dicomscrub.report import ReportWriter
    from dicomscrub.walk import walk

    writer = ReportWriter(report_path) if report_path else None
    stream = sys.stderr
    bar = Progress(stream, enabled=should_show(stream, progress))
    bar.count_in_background(lambda: (e.size for e in walk(src)))

    def on_result(item: Any, r: Any) -> None:
        if writer is not None:
            writer.file(r)
        bar.advance(1, item.size)

    try:
        report = send_tree(
            src, peer, calling_aet=calling, associations=associations, tls=tls,
            on_result=on_result,
        )  # fmt: skip
    finally:
        bar.close()
    if writer is not None:
        report.report_path = writer.path
        writer.summary(report)
        writer.close()
    for line in report.summary_lines():
        click.echo(line)
    for r in report.failures[:10]:
        click.echo(f"failed: {r.src}: {r.message}", err=True)
    sys.exit(EXIT_OK if report.success else EXIT_FAILED)


def register(cli: click.Group) -> None:
    """Add ``serve`` and ``send`` to the ``dicomscrub`` group."""
    cli.add_command(serve)
    cli.add_command(send)
