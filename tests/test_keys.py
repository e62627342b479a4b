"""The project key: where it comes from, how it is created, and that it never shows."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from treekit import make_tree

from dicomscrub import Anonymizer, KeyFileError
from dicomscrub.keys import ENV_KEY_FILE, Key, default_key_path, load_key_file, resolve_key

SECRET = b"s3cr3t-k3y-that-must-never-leak-0123456789"


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv(ENV_KEY_FILE, raising=False)
    return home


def test_generated_once_mode_0600_announced_once(config_home: Path) -> None:
    err = io.StringIO()
    k1 = resolve_key(announce=err)
    path = config_home / "dicomscrub" / "key"
    assert default_key_path() == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert str(path) in err.getvalue()
    assert len(k1.secret) == 64  # 32 random bytes, hex
    assert k1.secret.decode() not in err.getvalue()
    err2 = io.StringIO()
    k2 = resolve_key(announce=err2)
    assert k2 == k1 and err2.getvalue() == ""


def test_sources_in_order(
    config_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f1, f2 = tmp_path / "k1", tmp_path / "k2"
    f1.write_bytes(b"one\n")  # a trailing newline is not part of the key
    f2.write_bytes(b"two")
    monkeypatch.setenv(ENV_KEY_FILE, str(f2))
    assert resolve_key(b"bytes").secret == b"bytes"
    assert resolve_key(key_file=f1).secret == b"one"
    assert resolve_key().secret == b"two"
    assert not (config_home / "dicomscrub" / "key").exists()
    with pytest.raises(ValueError):
        resolve_key(b"x", f1)


def test_bad_key_files_name_the_path_never_the_content(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    with pytest.raises(KeyFileError, match="empty"):
        load_key_file(empty)
    big = tmp_path / "big"
    big.write_bytes(SECRET * 200)
    with pytest.raises(KeyFileError) as info:
        load_key_file(big)
    assert SECRET.decode() not in str(info.value) and str(big) in str(info.value)
    with pytest.raises(KeyFileError, match="cannot read"):
        load_key_file(tmp_path / "missing")


def test_key_never_in_repr_reports_journal_or_output(tmp_path: Path) -> None:
    key = Key(SECRET)
    assert SECRET.decode() not in repr(key) and SECRET.decode() not in str(key)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(key)
    anon = Anonymizer(key=SECRET)
    assert SECRET.decode() not in repr(anon)
    assert SECRET.hex() not in repr(anon)
    src = make_tree(tmp_path / "src")
    report = anon.anonymize_tree(src, tmp_path / "out", progress=False)
    assert report.ok > 0 and report.key_fingerprint == key.fingerprint
    assert SECRET.decode() not in repr(report)
    for dirpath, _, files in os.walk(tmp_path / "out"):
        for f in files:
            data = (Path(dirpath) / f).read_bytes()
            assert SECRET not in data and SECRET.hex().encode() not in data, f


def test_key_not_in_cli_output(tmp_path: Path) -> None:
    keyfile = tmp_path / "key"
    keyfile.write_bytes(SECRET)
    src = make_tree(tmp_path / "src")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "python")}
    for args in (
        ["run", str(src), str(tmp_path / "out"), "--key-file", str(keyfile), "--progress"],
        ["run", str(src), str(tmp_path / "dry"), "--key-file", str(keyfile), "--dry-run"],
    ):
        p = subprocess.run(
            [sys.executable, "-m", "dicomscrub", *args], env=env, capture_output=True, timeout=120
        )
        assert p.returncode in (0, 1), p.stderr
        assert SECRET not in p.stdout and SECRET not in p.stderr
