"""``.env.example`` checked against the environment variables the settings read.

The settings (``config/settings/*.py``) read every variable through one
django-environ ``env`` object; this module finds each such read by parsing
their source (no settings module is imported, so nothing here depends on the
environment it runs in) and compares ``.env.example`` with them: every variable
read must be listed, set to the value the settings fall back to when it is
unset. Each value is compared after django-environ has parsed it with the same
call the settings make, so ``1`` and ``true`` or ``5`` and ``5.0`` are equal.

A variable may be listed commented out (``# NAME=``) when it has no single
default: none at all (required), ``None``, or different ones in different
settings modules (``DEBUG`` is on in ``local``, off elsewhere).

    python -m config.envdoc            # report what is missing or wrong; exit 1 if anything is
    python -m config.envdoc --write    # correct wrong values; append missing variables, with
                                       # the comment above their read in the settings

Entries the settings do not read (the Procfile's and the stack runner's
variables) are checked only for being read somewhere: see ``unread_entries``.
"""
from __future__ import annotations

import argparse
import ast
import operator
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import environ

REPO = Path(__file__).resolve().parent.parent
SETTINGS_DIR = REPO / "config" / "settings"
ENV_EXAMPLE = REPO / ".env.example"
# base first: the others import it and override some of its reads.
SETTINGS_MODULES = ("base", "local", "production", "test")
# Where the variables read outside the settings are read.
OTHER_READERS = ("Procfile", "stack/*.py", "config/*.py", "core/*.py")

NO_DEFAULT = object()
ENTRY = re.compile(r"^(#\s?)?([A-Z][A-Z0-9_]*)=(.*)$")


@dataclass
class Read:
    """One variable as the settings read it: how it is cast, and its default in each module."""

    name: str
    cast: str  # the env method ("__call__" for env(...)), e.g. "int", "bool", "db"
    defaults: dict[str, Any] = field(default_factory=dict)  # module -> default (NO_DEFAULT: required)
    comment: str = ""

    @property
    def distinct_defaults(self) -> list[Any]:
        values: list[Any] = []
        for value in self.defaults.values():
            if not any(value is seen or (value is not NO_DEFAULT and seen is not NO_DEFAULT and value == seen)
                       for seen in values):
                values.append(value)
        return values

    @property
    def default(self) -> Any:
        """The one default, or NO_DEFAULT when there is none or several."""
        values = self.distinct_defaults
        return values[0] if len(values) == 1 else NO_DEFAULT

    def parse(self, value: str | None) -> Any:
        """What the settings' own call makes of ``value`` (None: the variable unset)."""
        reader = environ.Env()
        reader.ENVIRON = {} if value is None else {self.name: value}
        method = getattr(reader, self.cast)
        default = self.default
        return method(self.name) if default is NO_DEFAULT else method(self.name, default=default)


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
              ast.FloorDiv: operator.floordiv, ast.Div: operator.truediv}


def _evaluate(node: ast.expr, names: dict[str, Any]) -> Any:
    """A default's value: literals, arithmetic on them, and names bound earlier in the module."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_evaluate(item, names) for item in node.elts]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left, names), _evaluate(node.right, names))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, names)
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    raise ValueError(f"line {node.lineno}: a default the check cannot evaluate: {ast.unparse(node)}")


def _env_call(node: ast.AST) -> tuple[str, str, ast.expr | None] | None:
    """(variable, env method, default expression) when ``node`` is ``env(...)`` or ``env.<cast>(...)``."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id == "env":
        cast = "__call__"
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env":
        cast = func.attr
    else:
        return None
    first = node.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        raise ValueError(f"line {node.lineno}: an env read whose variable is not a literal name")
    default = next((kw.value for kw in node.keywords if kw.arg == "default"), None)
    # By position: env.int("X", 3), but env("X", cast, default).
    position = 2 if cast == "__call__" else 1
    if default is None and len(node.args) > position:
        default = node.args[position]
    return first.value, cast, default


def _comment_above(lines: list[str], lineno: int) -> str:
    """The block of ``#`` lines right above line ``lineno`` (1-based), without the marks."""
    block: list[str] = []
    index = lineno - 2
    while index >= 0 and lines[index].lstrip().startswith("#"):
        block.insert(0, lines[index].strip().lstrip("#").strip())
        index -= 1
    return " ".join(block)


def settings_reads(settings_dir: Path = SETTINGS_DIR) -> dict[str, Read]:
    """Every variable the settings read, in the order of first reading."""
    reads: dict[str, Read] = {}
    for module in SETTINGS_MODULES:
        path = settings_dir / f"{module}.py"
        source = path.read_text()
        lines = source.splitlines()
        names: dict[str, Any] = {}
        for statement in ast.parse(source, str(path)).body:
            for node in ast.walk(statement):
                found = _env_call(node)
                if found is None:
                    continue
                name, cast, default_node = found
                try:
                    default = NO_DEFAULT if default_node is None else _evaluate(default_node, names)
                except ValueError as exc:
                    raise ValueError(f"{path.relative_to(REPO)}, {exc}") from None
                read = reads.setdefault(name, Read(name, cast, comment=_comment_above(lines, statement.lineno)))
                # A guarded re-read without a default (``if env("X", default=""): env.db("X")``)
                # does not make a variable required.
                if module not in read.defaults or read.defaults[module] is NO_DEFAULT:
                    read.defaults[module] = default
            # Module-level names a later default may refer to (CELERY_BROKER_URL defaults to REDIS_URL).
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                    and isinstance(statement.targets[0], ast.Name):
                target = statement.targets[0].id
                found = _env_call(statement.value)
                if found is not None:
                    names[target] = reads[found[0]].defaults.get(module, NO_DEFAULT)
                else:
                    try:
                        names[target] = _evaluate(statement.value, names)
                    except ValueError:
                        pass
    return reads


def example_entries(text: str) -> dict[str, tuple[str, bool]]:
    """``.env.example``'s entries: name -> (value, commented out)."""
    entries: dict[str, tuple[str, bool]] = {}
    for line in text.splitlines():
        match = ENTRY.match(line.strip())
        if match:
            entries.setdefault(match.group(2), (match.group(3), bool(match.group(1))))
    return entries


def render(value: Any) -> str:
    """A default as .env.example writes it."""
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def problems(text: str, reads: dict[str, Read]) -> list[str]:
    """What is wrong with ``.env.example`` (its ``text``), one sentence each."""
    entries = example_entries(text)
    found: list[str] = []
    for name, read in reads.items():
        if name not in entries:
            found.append(f"{name} is read by the settings but missing from .env.example")
            continue
        value, commented = entries[name]
        default = read.default
        if commented:
            if default is not NO_DEFAULT and default is not None:
                found.append(f"{name} is commented out in .env.example, but has one default: "
                             f"{name}={render(default)}")
            continue
        if default is NO_DEFAULT:
            found.append(f"{name} has no single default ({_defaults_sentence(read)}): "
                         f"list it commented out, '# {name}='")
        elif default is None:
            found.append(f"{name} defaults to None: list it commented out, '# {name}='")
        elif read.parse(value) != read.parse(None):
            found.append(f"{name}={value} in .env.example, but the settings default to {render(default)}")
    return found


def unread_entries(text: str, reads: dict[str, Read], repo: Path = REPO) -> list[str]:
    """Entries of ``.env.example`` that neither the settings nor the Procfile, the stack
    runner or the other configuration modules read."""
    sources = "\n".join(path.read_text() for pattern in OTHER_READERS for path in sorted(repo.glob(pattern))
                        if path.resolve() != Path(__file__).resolve())
    return [name for name in example_entries(text)
            if name not in reads and not re.search(rf"\b{name}\b", sources)]


def _defaults_sentence(read: Read) -> str:
    return ", ".join(f"{module}: {'required' if value is NO_DEFAULT else render(value)}"
                     for module, value in read.defaults.items())


def corrected(text: str, reads: dict[str, Read]) -> str:
    """``text`` with wrong values set to the defaults and missing variables appended."""
    entries = example_entries(text)
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = ENTRY.match(line.strip())
        if not match or match.group(2) not in reads:
            continue
        read = reads[match.group(2)]
        if read.default is not NO_DEFAULT and read.default is not None and \
                (match.group(1) or read.parse(match.group(3)) != read.parse(None)):
            lines[index] = f"{read.name}={render(read.default)}"
    missing = [read for name, read in reads.items() if name not in entries]
    if missing:
        lines += ["", "# Read by the settings (config/settings/), with their defaults."]
        for read in missing:
            if read.comment:
                lines.append(f"# {read.comment}")
            if read.default is NO_DEFAULT or read.default is None:
                lines.append(f"# Default: {_defaults_sentence(read)}.")
                lines.append(f"# {read.name}=")
            else:
                lines.append(f"{read.name}={render(read.default)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.envdoc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="correct .env.example in place")
    args = parser.parse_args(argv)
    reads = settings_reads()
    text = ENV_EXAMPLE.read_text()
    if args.write:
        text = corrected(text, reads)
        ENV_EXAMPLE.write_text(text)
    found = problems(text, reads) + [f"{name} is listed in .env.example, but nothing reads it"
                                     for name in unread_entries(text, reads)]
    for sentence in found:
        print(sentence)
    if not found:
        print(f".env.example lists all {len(reads)} variables the settings read, with their defaults.")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
