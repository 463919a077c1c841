"""The hot modules compiled with mypyc: which they are, how they are built, and the guard that runs
them all compiled or all from source.

Why (docs/benchmarks.md, twenty-seventh round): after twenty-six rounds of changes the API's
profiles were flat — no frame above ~5 % — and our own Python was ~60 % of a read's CPU, the rest
the HTTP server, Starlette and the drivers. mypyc (part of mypy, the project's type checker)
compiles type-checked modules into C extensions that run the same code without the interpreter's
per-operation work.

* :data:`MODULES` names them: the build, the guard and the tests read this one list.
* ``solomo compile`` (``make compile``; ``make run``, ``make test``,
  ``make bench`` and ``make soak`` run it first) compiles them in place: an extension module beside
  each source, which Python's import system prefers to the ``.py``, and their shared library
  (``solomo/_compiled__mypyc…``). Then it writes :data:`MANIFEST`: the SHA-256 of each source it
  compiled. It does nothing when the manifest already matches the sources. Without a C compiler
  it says so and leaves every module in Python; a compiler that fails is an error.
* :func:`guard`, run by ``solomo/__init__.py`` before any listed module can be imported (every
  package holding one imports ``solomo`` first), looks at what is on disk. When extensions are
  there but do not match the sources (a source edited since the build, the list changed, a build
  that did not finish), every listed module is loaded from its source for the life of the process,
  and a warning says so. All or none: compiled modules call each other inside their shared
  library, so one stale extension beside fresh sources would run two versions of the code.

What mypyc changes, and why some hot modules are not listed:

* a compiled module calls a function or method of the group directly, so replacing it from outside
  (a test's ``monkeypatch``) does not reach those calls: modules whose functions the tests replace to
  watch or steer a path stay Python (``geo.reach.widen``, ``search.listings.scores_of``,
  ``solomo.core.idloader``'s loads); a compiled module's call into one of them is an ordinary call;
* a class attribute of a compiled class is an instance attribute's default unless annotated
  ``ClassVar`` (``solomo.accounts.TokenCache.PREFIX``);
* a tuple is unboxed into a C struct, so two reads of one tuple are not the same object (``is``);
* async generators are not compiled (``search.tiers``, ``offers.gate``); mypyc's C did not build
  for the modules with pydantic models (``solomo.http``, the API modules); Starlette reads an
  endpoint's signature, which a compiled function has not (``solomo.observability`` defines
  ``/metrics``: its middleware is compiled from ``solomo.middleware``); ``solomo.core.redisio``'s
  connection class inherits redis-py's, which has slots, so it could only be a Python class, whose
  compiled methods then refused a subclass's instance, and a pipeline cancelled mid-read leaked its
  cancellation (docs/benchmarks.md, twenty-eighth round);
* annotations are checked at run time: a value that contradicts its annotation fails where it
  enters a compiled function.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
"""The folder holding the project's packages (the checkout, or site-packages once installed)."""

MANIFEST = ROOT / "solomo" / "_compiled.json"
"""What the last finished build compiled: ``{"modules": {module: sha256 of its source}}``."""

GROUP = "solomo._compiled"
"""mypyc's shared library of the group: ``solomo/_compiled__mypyc`` + the extension suffix."""

MODULES: tuple[str, ...] = (
    # a page's paging, loading, hydration and rendering
    "feed.hydrate", "feed.paging", "feed.home", "feed.postcache", "feed.likedset", "feed.blocks",
    "feed.timeline", "feed.local", "feed.localcells", "feed.cellrows", "feed.posts", "feed.topics",
    # what every request shares
    "solomo.core.viewcache", "solomo.core.autopipe", "solomo.core.cache", "solomo.core.keys",
    "solomo.core.ttlrefresh", "solomo.core.ids", "solomo.core.httpseries", "solomo.core.jsonio",
    "solomo.routing", "solomo.accounts", "solomo.middleware", "solomo.core.logline",
    # stores near a point, distances, public positions
    "checkins.geoindex", "checkins.stores", "checkins.storeviews", "checkins.nearby",
    "geo.privacy", "geo.cells", "geo.distance",
    # search
    "search.stores", "search.posts", "search.query", "search.keyflags", "solomo.core.searchkeys",
)


def source_of(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def extension_of(module: str, root: Path = ROOT) -> Path | None:
    """The module's extension built for this interpreter, if there is one."""
    base = root.joinpath(*module.split("."))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = base.with_name(base.name + suffix)
        if path.exists():
            return path
    return None


def built(modules: Sequence[str] = MODULES, root: Path = ROOT) -> set[str]:
    """The modules that have an extension beside their source in the listed modules' packages:
    the listed ones built, and any left by a build of a longer list (which Python would load too).
    Reads the listings of the packages' folders only (not of a data folder such as
    ``solomo/.solomo``)."""
    found: set[str] = set()
    for package in sorted({m.split(".")[0] for m in modules}):
        for folder, subfolders, names in os.walk(root / package):
            subfolders[:] = [d for d in subfolders if os.path.exists(os.path.join(folder, d, "__init__.py"))]
            present = set(names)
            prefix = Path(folder).relative_to(root).parts
            for name in names:
                for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                    stem = name[:-len(suffix)]
                    if name.endswith(suffix) and stem + ".py" in present:
                        found.add(".".join((*prefix, stem)))
    return found


def digests(modules: Sequence[str] = MODULES, root: Path = ROOT) -> dict[str, str]:
    return {m: hashlib.sha256(source_of(m, root).read_bytes()).hexdigest() for m in modules}


def state(modules: Sequence[str] = MODULES, root: Path = ROOT, manifest: Path = MANIFEST) -> str:
    """``compiled`` (an extension for every listed module and no other, built from the sources as
    they are), ``source`` (no extension: everything runs as Python) or ``stale`` (anything else)."""
    extensions = built(modules, root)
    if not extensions:
        return "source"
    try:
        recorded = json.loads(manifest.read_text())["modules"]
    except (OSError, ValueError, KeyError, TypeError):
        return "stale"
    if extensions != set(modules) or recorded != digests(modules, root):
        return "stale"
    return "compiled"


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds these modules' sources ahead of their extensions."""

    def __init__(self, modules: Iterable[str], root: Path) -> None:
        self.modules = frozenset(modules)
        self.root = root

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in self.modules:
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname, self.root))


def guard(modules: Sequence[str] = MODULES, root: Path = ROOT, manifest: Path = MANIFEST) -> str:
    """Runs every listed module (and any other with an extension) from its source when the
    extensions are stale (see the module); returns the :func:`state`. Call it before any of them
    is imported."""
    found = state(modules, root, manifest)
    if found != "stale" or any(isinstance(f, _FromSource) for f in sys.meta_path):
        return found
    chosen = set(modules) | built(modules, root)
    loaded = sorted(m for m in chosen if m in sys.modules)
    if loaded:  # too late to choose: some already run compiled
        raise RuntimeError(f"imported before solomo.core.compiled.guard(): {', '.join(loaded)}")
    sys.meta_path.insert(0, _FromSource(chosen, root))
    print("solomo: the compiled modules are older than their sources, so they run as Python "
          "(`make compile` builds them again)", file=sys.stderr)
    return found


def compiler() -> str | None:
    """The C compiler Python builds extensions with, if this machine has it."""
    cc = str(sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc)


def clean() -> None:
    """Removes every extension and the manifest (the sources run as Python)."""
    MANIFEST.unlink(missing_ok=True)
    for module in (*built(), GROUP + "__mypyc"):
        while (path := extension_of(module)) is not None:
            path.unlink()


def build() -> int:
    """Compiles :data:`MODULES` in place unless they are up to date (see the module)."""
    if state() == "compiled":
        print("compiled modules: up to date")
        return 0
    if compiler() is None:
        print("compiled modules: no C compiler here, so every module runs as Python", file=sys.stderr)
        clean()
        return 0
    clean()  # a build that fails leaves the sources to run
    wanted = digests()
    done = subprocess.run([sys.executable, "-c", _SETUP, *(str(source_of(m).relative_to(ROOT)) for m in MODULES)],
                          cwd=ROOT, check=False)
    if done.returncode != 0:
        clean()
        print("compiled modules: the build failed (above)", file=sys.stderr)
        return done.returncode
    MANIFEST.write_text(json.dumps({"modules": wanted}, indent=1, sort_keys=True) + "\n")
    print(f"compiled modules: {len(MODULES)} built")
    return 0


# mypyc's own build through setuptools, in a process of its own (it imports the whole of mypy). One C
# file per module (multi_file), compiled two at a time. The group's headers are written under
# build/solomo/ (its name has a dot) while the modules' C files include them by bare name.
_SETUP = f"""
import sys
GROUP = {GROUP!r}
from setuptools import setup
from mypyc.build import mypycify
extensions = mypycify(sys.argv[1:], group_name=GROUP, multi_file=True)
for extension in extensions:
    extension.include_dirs.append("build/solomo")
setup(name="solomo-compiled", ext_modules=extensions,
      script_args=["--quiet", "build_ext", "--inplace", "--parallel", "2", "--build-temp", "build/compiled"])
"""

