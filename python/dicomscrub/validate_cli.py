"""The ``dicomscrub verify`` and ``dicomscrub scan`` commands (click), over
:mod:`dicomscrub.validate`.

Both exit with 0 when every pair passed, 1 when a pair failed (a difference, an invalid output,
an identifying value found), 2 on a usage error (unknown option, unreadable key or profile).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from dicomscrub.errors import DicomScrubError
from dicomscrub.keys import ENV_KEY_FILE, Key, default_key_path, load_key_file
from dicomscrub.profiles import Profile
from dicomscrub.validate import FileCheck, ScanReport, VerifyReport, scan_pairs, verify_pairs
from dicomscrub.validate import pair_files as _pair_files
from dicomscrub.validate import sample_pairs as _sample_pairs

__all__ = ["scan", "verify"]


class _UsageFailure(click.ClickException):
    exit_code = 2


def _profile(name: str, options: Sequence[str]) -> Profile:
    """The profile as ``dicomscrub run`` reads it: ``basic``, ``keep-all`` or a TOML file."""
    from dicomscrub.cli import load_profile  # here: dicomscrub.cli imports this module

    try:
        return load_profile(name, options)
    except DicomScrubError as exc:
        raise _UsageFailure(str(exc)) from None


def _key(key_file: str | None) -> Key:
    """The key of the run being checked: never generated (a new key would fail every file)."""
    try:
        if key_file is not None:
            return load_key_file(key_file)
        env = os.environ.get(ENV_KEY_FILE)
        if env:
            return load_key_file(env)
        path = default_key_path()
        if path.exists():
            return load_key_file(path)
    except DicomScrubError as exc:
        raise _UsageFailure(str(exc)) from None
    raise _UsageFailure(
        f"no project key: give --key-file, set {ENV_KEY_FILE}, or create {path} "
        "(verify needs the key the outputs were made with)"
    )


def _pairs(src: str, dst: str, sample: int | None, seed: int) -> tuple[list, int, Path | None]:
    try:
        pairs = _pair_files(src, dst)
    except OSError as exc:
        raise _UsageFailure(str(exc)) from None
    root = Path(src) if Path(src).is_dir() else None
    todo = pairs if sample is None else _sample_pairs(pairs, sample, root, seed)
    return todo, len(pairs), (Path(dst) if root is not None else None)


def _printer(as_json: bool) -> Callable[[FileCheck], None] | None:
    if as_json:
        return None

    def show(result: FileCheck) -> None:
        for line in result.lines():
            click.echo(line)

    return show


_common = [
    click.argument("src", type=click.Path(exists=True)),
    click.argument("dst", type=click.Path()),
    click.option(
        "--profile",
        "profile_name",
        default="basic",
        show_default=True,
        metavar="basic|keep-all|FILE.toml",
        help="The profile the outputs were made with: a built-in one or a TOML file.",
    ),
    click.option(
        "--option",
        "options",
        multiple=True,
        metavar="NAME",
        help="A profile option (repeatable), e.g. retain-uids.",
    ),
    click.option(
        "--sample",
        type=click.IntRange(min=0),
        default=None,
        metavar="N",
        help="Check N pairs chosen deterministically (same tree, same sample).",
    ),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed of --sample."),
    click.option(
        "--paths",
        is_flag=True,
        help="Also search the output paths (folders, file names) for identifying values.",
    ),
    click.option("--json", "as_json", is_flag=True, help="Print the report as JSON."),
]


def _with_common(f: Callable) -> Callable:
    for decorator in reversed(_common):
        f = decorator(f)
    return f


@click.command("verify")
@_with_common
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"The project key file (default: ${ENV_KEY_FILE}, then ~/.config/dicomscrub/key; "
    "never created: verify needs the key the outputs were made with).",
)
def verify(
    src: str,
    dst: str,
    profile_name: str,
    options: tuple[str, ...],
    sample: int | None,
    seed: int,
    paths: bool,
    as_json: bool,
    key_file: str | None,
) -> None:
    """Check that DST is what the profile makes of SRC (two files, or two folders mirrored by
    relative path): every element equals the pure-Python reference's, the outputs are valid
    DICOM with the source's pixel data, and no identifying value of a source is left in its
    output. Exits with 1 on any difference."""
    profile = _profile(profile_name, options)
    key = _key(key_file)
    todo, total, root = _pairs(src, dst, sample, seed)
    report = verify_pairs(
        todo, profile, key, progress=_printer(as_json), paths=paths, dst_root=root
    )
    report.src, report.dst, report.total, report.sample = src, dst, total, sample
    _finish(report, as_json)


@click.command("scan")
@_with_common
def scan(
    src: str,
    dst: str,
    profile_name: str,
    options: tuple[str, ...],
    sample: int | None,
    seed: int,
    paths: bool,
    as_json: bool,
) -> None:
    """Search each output of DST for the identifying values of its source in SRC (names and
    their components, IDs, birth date, addresses, phone numbers, institutions, original UIDs
    and shifted dates) that the profile removes or replaces: in every element at every depth,
    private ones included, and in the raw bytes. Exits with 1 on any hit."""
    profile = _profile(profile_name, options)
    todo, total, root = _pairs(src, dst, sample, seed)
    report = scan_pairs(todo, profile, progress=_printer(as_json), paths=paths, dst_root=root)
    report.src, report.dst, report.total, report.sample = src, dst, total, sample
    _finish(report, as_json)


def _finish(report: VerifyReport | ScanReport, as_json: bool) -> None:
    if as_json:
        click.echo(report.to_json())
    else:
        click.echo(report.summary())
    click.get_current_context().exit(0 if report.ok else 1)
