"""The modules mypyc compiles run all compiled or all from source (solomo.core.compiled).

The guard's cases run on a throw-away package whose "extensions" are not extensions at all: a
process that tried to load one would fail to import it, so a test passing means the guard chose the
sources — or, when the build matches, left the import system alone."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from solomo.core import compiled

TOY = ("compiled_toy.first", "compiled_toy.second")


@pytest.fixture()
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    package = tmp_path / "compiled_toy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module in TOY:
        compiled.source_of(module, tmp_path).write_text('WHERE = "source"\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # the guard's finder goes with the test
    for name in [n for n in sys.modules if n.startswith("compiled_toy")]:
        monkeypatch.delitem(sys.modules, name)
    yield tmp_path
    for name in [n for n in sys.modules if n.startswith("compiled_toy")]:
        del sys.modules[name]


def _fake_extension(root: Path, module: str) -> None:
    base = root.joinpath(*module.split("."))
    base.with_name(base.name + importlib.machinery.EXTENSION_SUFFIXES[0]).write_bytes(b"not an extension")


def _manifest(root: Path, digests: dict[str, str]) -> Path:
    path = root / "manifest.json"
    path.write_text(json.dumps({"modules": digests}))
    return path


def test_extensions_older_than_their_sources_leave_every_listed_module_to_its_source(toy: Path) -> None:
    for module in TOY:
        _fake_extension(toy, module)
    manifest = _manifest(toy, {m: "0" * 64 for m in TOY})  # built from other sources
    with pytest.raises(ImportError):  # what an unguarded process would load
        importlib.import_module(TOY[0])
    del sys.modules["compiled_toy"]

    assert compiled.guard(TOY, toy, manifest) == "stale"
    assert [importlib.import_module(m).WHERE for m in TOY] == ["source", "source"]


def test_a_build_that_matches_its_sources_is_left_to_the_import_system(toy: Path) -> None:
    for module in TOY:
        _fake_extension(toy, module)
    manifest = _manifest(toy, compiled.digests(TOY, toy))
    assert compiled.guard(TOY, toy, manifest) == "compiled"
    with pytest.raises(ImportError):  # the (fake) extension is what Python loads
        importlib.import_module(TOY[0])


def test_a_build_missing_a_module_or_edited_since_is_stale(toy: Path) -> None:
    manifest = _manifest(toy, compiled.digests(TOY, toy))
    assert compiled.state(TOY, toy, manifest) == "source"
    _fake_extension(toy, TOY[0])
    assert compiled.state(TOY, toy, manifest) == "stale"  # the second was not built
    _fake_extension(toy, TOY[1])
    assert compiled.state(TOY, toy, manifest) == "compiled"
    compiled.source_of(TOY[1], toy).write_text('WHERE = "edited"\n')
    assert compiled.state(TOY, toy, manifest) == "stale"
    assert compiled.state(TOY, toy, toy / "missing.json") == "stale"


def test_an_extension_left_by_a_longer_list_is_stale_and_runs_from_source(toy: Path) -> None:
    """A module taken off the list keeps the extension of the build that had it, and Python would
    load it (against a shared library that no longer has it)."""
    listed = TOY[:1]
    for module in TOY:
        _fake_extension(toy, module)
    manifest = _manifest(toy, compiled.digests(listed, toy))
    assert compiled.built(listed, toy) == set(TOY)
    assert compiled.guard(listed, toy, manifest) == "stale"
    assert [importlib.import_module(m).WHERE for m in TOY] == ["source", "source"]


def test_the_guard_refuses_to_choose_once_a_listed_module_runs(toy: Path) -> None:
    for module in TOY:
        _fake_extension(toy, module)
    manifest = _manifest(toy, {m: "0" * 64 for m in TOY})
    sys.modules[TOY[1]] = sys.modules[__name__]  # as if it had been imported (compiled) already
    with pytest.raises(RuntimeError, match=TOY[1]):
        compiled.guard(TOY, toy, manifest)


def test_this_checkouts_modules_run_as_one_kind() -> None:
    """Every listed module, imported in a fresh process as the service imports it, comes from an
    extension when the build matches the sources and from its source otherwise — never a mix."""
    probe = ("import json, importlib, solomo; from solomo.core import compiled; "
             "print(json.dumps([compiled.state(), [importlib.import_module(m).__file__ for m in compiled.MODULES]]))")
    state, files = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                             check=True, timeout=120).stdout)
    from_source = [f.endswith(".py") for f in files]
    assert from_source == [state != "compiled"] * len(files)


def test_the_build_this_suite_runs_on_matches_the_sources() -> None:
    """``make test`` compiles first (``make compile``): the suite must exercise what production runs.
    Only a machine without a C compiler runs everything as Python."""
    if compiled.compiler() is None:
        assert compiled.state() == "source"
    else:
        assert compiled.state() == "compiled", "run `make compile` (solomo compile)"
