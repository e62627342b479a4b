"""The ``dicomscrub`` command (also ``python -m dicomscrub``), built on click.

Commands: ``run`` (a tree), ``anonymize`` (one file), ``dump`` (a file as the core reads it),
``profile list`` / ``profile show``. Exit codes: 0 nothing failed (non-DICOM files skipped are
not failures), 1 some file failed, 2 usage, profile, key or destination error.

Extension point: every module named in :data:`EXTENSIONS` that can be imported is asked to add
its commands: it defines ``register(cli: click.Group) -> None`` (``dicomscrub.validate`` adds
``verify`` and ``scan`` that way). A missing extension module is simply not registered. A module
is imported when one of the commands :data:`EXTENSIONS` lists for it is run, or when the list of
commands is shown (``--help``), never before: ``dicomscrub run`` does not pay for pydicom, which
``verify`` and ``scan`` need (issue 6: no interpreter-heavy imports before the first file).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from dicomscrub.errors import DicomScrubError, KeyFileError, ProfileError, RunLockedError
from dicomscrub.profiles import EDITION, Profile, list_options

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: modules that add subcommands through ``register(cli)``, with the commands each adds
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "dicomscrub.validate": ("verify", "scan"),
    "dicomscrub.bench": ("bench",),
    "dicomscrub.gateway.cli": ("serve", "send"),
}
PROFILES = {
    "basic": "the PS3.15 Basic Application Level Confidentiality Profile (+ options)",
    "keep-all": "changes nothing: outputs identical to their inputs (for tests)",
}

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "EXTENSIONS", "cli", "load_profile", "main"]


class UsageFailure(click.ClickException):
    """An error of the command line, the profile, the key or the destination: exit code 2."""

    exit_code = EXIT_USAGE


def _fail(message: str) -> NoReturn:
    raise UsageFailure(message)


def load_profile(profile: str, options: Sequence[str] = ()) -> Profile:
    """``basic``, ``keep-all`` or a TOML file, with extra ``options``; ProfileError otherwise."""
    if profile == "basic":
        return Profile.basic(list(options))
    if profile == "keep-all":
        if options:
            raise ProfileError("the keep-all profile takes no option")
        return Profile.keep_all()
    if profile.endswith(".toml") or os.path.sep in profile or os.path.exists(profile):
        from dicomscrub.profiles import custom

        spec = custom.load(profile)
        return Profile(
            spec.name, (*spec.options, *options), settings=spec.settings, rules=spec.rules
        )
    raise ProfileError(f"unknown profile {profile!r}: one of {', '.join(PROFILES)}, or a TOML file")


def _profile_options(f: F) -> F:
    f = click.option(
        "--option",
        "options",
        multiple=True,
        metavar="NAME",
        help="A PS3.15 option (repeatable): see `dicomscrub profile list`.",
    )(f)
    f = click.option(
        "--profile",
        "profile",
        default="basic",
        show_default=True,
        metavar="basic|keep-all|FILE.toml",
        help="The profile: a built-in one or a TOML file.",
    )(f)
    return f


def _key_option(f: F) -> F:
    return click.option(
        "--key-file",
        type=click.Path(dir_okay=False),
        help="The project key file (default: $DICOMSCRUB_KEY_FILE, else "
        "~/.config/dicomscrub/key, created on first use).",
    )(f)


def _anonymizer(profile: str, options: Sequence[str], key_file: str | None) -> Any:
    from dicomscrub.anonymizer import Anonymizer

    try:
        return Anonymizer(load_profile(profile, options), key_file=key_file)
    except (ProfileError, KeyFileError) as exc:
        _fail(str(exc))


class _Group(click.Group):
    """The ``dicomscrub`` group: the commands of :data:`EXTENSIONS` are added on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: set[str] = set()

    def load_extension(self, name: str) -> None:
        """Import extension module ``name`` (once) and let it add its commands."""
        if name in self._loaded:
            return
        self._loaded.add(name)
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                return  # not written yet
            raise
        register = getattr(module, "register", None)
        if callable(register):
            register(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            for name, commands in EXTENSIONS.items():
                if cmd_name in commands:
                    self.load_extension(name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for name in EXTENSIONS:
            self.load_extension(name)
        return super().list_commands(ctx)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dicomscrub", message="%(prog)s %(version)s")
def cli() -> None:
    """dicomscrub: fast DICOM de-identification (PS3.15 profiles, a Rust core)."""


# -- run ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.argument("dst", type=click.Path(file_okay=False))
@_profile_options
@_key_option
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Worker threads (default: cores).")
@click.option(
    "--layout",
    type=click.Choice(["mirror", "patient/study/series"]),
    default="mirror",
    show_default=True,
    help="Output names: the source's relative paths, or from pseudonymized IDs and UIDs only.",
)
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist already.")
@click.option("--copy-non-dicom", is_flag=True, help="Copy non-DICOM files as they are.")
@click.option("--dry-run", is_flag=True, help="Write nothing; show a sample's changes.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="The JSON Lines report (default DST/.dicomscrub/report.jsonl).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Live progress on stderr (default: only when stderr is a terminal).",
)
@click.option(
    "--dask",
    "dask_address",
    metavar="ADDRESS",
    help="Run the batches on a Dask cluster (the dask extra): a scheduler address "
    "(tcp://host:8786), a scheduler file, or local:N (N local worker processes). SRC and DST "
    "must be on a file system every worker mounts at the same paths.",
)
@click.option(
    "--linkage",
    "linkage",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also write FILE (mode 0600; .csv: CSV, else JSON Lines) mapping original Patient IDs "
    "and Study/Series/SOP Instance UIDs to the pseudonymized ones. Keep it apart: refused "
    "inside DST.",
)
@click.option(
    "--allow-linkage-in-dst",
    is_flag=True,
    help="Write the --linkage file even inside DST (it would travel with the data).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, hidden=True)
def run(
    src: str,
    dst: str,
    profile: str,
    options: tuple[str, ...],
    key_file: str | None,
    jobs: int | None,
    layout: str,
    overwrite: bool,
    copy_non_dicom: bool,
    dry_run: bool,
    report_path: str | None,
    progress: bool | None,
    dask_address: str | None,
    linkage: str | None,
    allow_linkage_in_dst: bool,
    batch_size: int,
) -> None:
    """Anonymize every file under SRC into DST (resumable: run it again to finish)."""
    if dask_address and importlib.util.find_spec("distributed") is None:
        _fail("--dask needs the dask extra: pip install 'dicomscrub[dask]'")
    anon = _anonymizer(profile, options, key_file)
    try:
        report = anon.anonymize_tree(
            src,
            dst,
            jobs=jobs,
            progress="always" if progress else progress is None,
            layout=layout,
            overwrite=overwrite,
            copy_non_dicom=copy_non_dicom,
            dry_run=dry_run,
            report_path=report_path,
            batch_size=batch_size,
            cluster=dask_address or None,
            linkage=linkage,
            linkage_in_dst=allow_linkage_in_dst,
        )
    except (RunLockedError, ProfileError, KeyFileError) as exc:
        _fail(str(exc))
    except DicomScrubError as exc:  # the destination holds another plan's outputs...
        _fail(str(exc))
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    if dry_run:
        _print_dry_run(report)
    else:
        for line in report.summary_lines():
            click.echo(line)
        click.echo(f"{'output':<8}  {report.dst}")
        click.echo(f"{'report':<8}  {report.report_path}")
        if report.failed:
            click.echo(f"{'failures':<8}  {report.quarantine_path}")
        if report.linkage_path:
            click.echo(f"{'linkage':<8}  {report.linkage_path} (original identifiers: mode 0600)")
    sys.exit(EXIT_OK if report.success else EXIT_FAILED)


def _print_dry_run(report: Any) -> None:
    click.echo(
        f"dry run: {report.planned_files} files ({report.planned_bytes / 1e6:.1f} MB) under "
        f"{report.src}; nothing written"
    )
    shown = None
    for c in report.changes:
        if c.file != shown:
            shown = c.file
            click.echo(f"\n{c.file}:")
        what = {
            "removed": f"removed      {c.before}",
            "added": f"added        {c.after}",
            "emptied": f"emptied      {c.before}",
            "changed": f"changed      {c.before} -> {c.after}",
        }[c.change]
        click.echo(f"  {c.path:<28} {c.keyword:<32} {what}")
    for r in report.failures:
        click.echo(f"\nwould fail: {r.src}: {r.message}")
    for d in report.dicomdirs:
        click.echo(f"\nDICOMDIR {d.src}: {d.message}")


# -- anonymize (one file) ------------------------------------------------------------------------


@cli.command()
@click.argument("src_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst_file", type=click.Path(dir_okay=False))
@_profile_options
@_key_option
@click.option("--overwrite", is_flag=True, help="Replace DST_FILE if it exists.")
def anonymize(
    src_file: str,
    dst_file: str,
    profile: str,
    options: tuple[str, ...],
    key_file: str | None,
    overwrite: bool,
) -> None:
    """Anonymize one file."""
    anon = _anonymizer(profile, options, key_file)
    try:
        r = anon.anonymize_file(src_file, dst_file, overwrite=overwrite)
    except DicomScrubError as exc:
        click.echo(f"dicomscrub: {src_file}: {exc.message}", err=True)
        sys.exit(EXIT_FAILED)
    except OSError as exc:
        click.echo(f"dicomscrub: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    acts = ", ".join(f"{k} {v}" for k, v in sorted(r.actions.items())) or "no change"
    click.echo(f"{dst_file}: {r.bytes_in} -> {r.bytes_out} bytes ({acts})")


# -- dump ----------------------------------------------------------------------------------------


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="The DICOM JSON Model instead of a tree.")
@click.option("--meta/--no-meta", default=True, help="Include the File Meta Information.")
def dump(file: str, as_json: bool, meta: bool) -> None:
    """Show FILE as dicomscrub's parser reads it (a tree through sequences)."""
    from dicomscrub import _core
    from dicomscrub.dumpview import format_tree

    with open(file, "rb") as f:
        data = f.read()
    try:
        if as_json:
            from dicomscrub.dicomjson import dump as json_model

            click.echo(json.dumps(json_model(data, include_meta=meta), indent=2))
            return
        parsed = _core.dump(data)
    except DicomScrubError as exc:
        click.echo(f"dicomscrub: {file}: {exc.message}", err=True)
        sys.exit(EXIT_FAILED)
    if not meta:
        parsed = {**parsed, "meta": []}
    for line in format_tree(parsed):
        click.echo(line)


# -- profile -------------------------------------------------------------------------------------


@cli.group("profile")
def profile_group() -> None:
    """The available profiles and options, and the plan a profile compiles to."""


@profile_group.command("list")
def profile_list() -> None:
    """List the profiles and the PS3.15 options."""
    click.echo(f"profiles (DICOM PS3.15 edition {EDITION}):")
    for name, meaning in PROFILES.items():
        click.echo(f"  {name:<10} {meaning}")
    click.echo("  FILE.toml  a custom profile (docs/profiles.md)")
    click.echo("\noptions (--option NAME; CID 7050 code):")
    for name, meaning, code in list_options():
        click.echo(f"  {name:<34} {code:<7} {meaning}")


@profile_group.command("show")
@click.argument("profile", default="basic", metavar="[basic|keep-all|FILE.toml]")
@click.option("--option", "options", multiple=True, metavar="NAME", help="A PS3.15 option.")
def profile_show(profile: str, options: tuple[str, ...]) -> None:
    """Print the plan JSON a profile compiles to (the edition goes to stderr)."""
    try:
        p = load_profile(profile, options)
    except ProfileError as exc:
        _fail(str(exc))
    opts = ", ".join(p.options) or "none"
    click.echo(f"# profile {p.name}, options: {opts}; DICOM PS3.15 edition {EDITION}", err=True)
    click.echo(json.dumps(p.to_plan(), indent=2, ensure_ascii=False))


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: returns the exit code."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="dicomscrub")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_FAILED)
    return EXIT_OK
