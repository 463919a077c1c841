"""Every Lua script gets every key it touches in KEYS (cluster-safe: a key built inside a script may
live on another node of a Redis Cluster, and works in a small test only by luck).

Reads every script declared through :class:`solomo.core.scripts.LuaScript` (importing every module
that may declare one) and the source of the code base for scripts declared any other way.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from solomo.core.scripts import LuaScript

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["solomo", "feed", "geo", "offers", "checkins", "moderation", "workers"]

# redis.call('CMD', <first key argument> ...): the key argument of every command a script runs
CALL = re.compile(r"redis\.p?call\(\s*'(?P<cmd>[A-Za-z]+)'\s*(?:,\s*(?P<arg>[^,)]+))?")
# commands whose first argument is not a key
KEYLESS = {"PUBLISH", "TIME", "PING", "ECHO"}


def _import_everything() -> None:
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            importlib.import_module(info.name)


def key_problems(source: str) -> list[str]:
    """The commands of ``source`` whose key argument is not taken from KEYS."""
    # names bound from KEYS: `local a, b = KEYS[1], KEYS[2]`, `local d = cond and KEYS[1] or nil`
    from_keys = {m.group(1) for m in re.finditer(r"^\s*(?:local\s+)?([\w, ]+?)\s*=(?!=)[^\n]*\bKEYS\[",
                                                          source, re.M)}
    names: set[str] = set()
    for group in from_keys:
        names.update(n.strip() for n in group.split(","))
    problems = []
    for match in CALL.finditer(source):
        cmd, arg = match.group("cmd").upper(), (match.group("arg") or "").strip()
        if cmd in KEYLESS or not arg:
            continue
        if arg.startswith("KEYS[") or arg in names:
            continue
        problems.append(f"{cmd} {arg}")
    if ".." in source:
        for line in source.splitlines():
            if re.search(r"'[\w{}-]*:[\w{}:-]*'\s*\.\.|\.\.\s*'[\w{}-]*:[\w{}:-]*'", line):
                problems.append(f"concatenates a key-like name: {line.strip()}")
    return problems


def test_every_script_takes_its_keys_from_KEYS():
    _import_everything()
    assert len(LuaScript.declared) >= 10  # the import above really found them
    bad = {s.name: p for s in LuaScript.declared if (p := key_problems(s.source))}
    assert bad == {}


def test_no_script_is_declared_another_way():
    """register_script / eval on a client would bypass the check above (and EVALSHA in cluster pipelines)."""
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            if path.name == "scripts.py" and path.parent.name == "core":
                continue
            if re.search(r"register_script\(|\.eval(sha)?\(", text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_checker_catches_built_keys():
    """The checker itself fails on the shapes it exists to catch."""
    assert key_problems("redis.call('DEL', 'rt:proc:' .. p .. ':users')")
    assert key_problems("local key = 'events:' .. uid\nredis.call('XADD', key, '*', 'a', 1)")
    assert key_problems("for _, h in ipairs(x) do redis.call('DEL', prefix .. h) end")
    assert not key_problems("local a, b = KEYS[1], KEYS[2]\nredis.call('SADD', a, 1)\nredis.call('DEL', b)")
    assert not key_problems("redis.call('PUBLISH', ARGV[1], 'x')\nredis.call('ZADD', KEYS[3], 1, 'm')")
