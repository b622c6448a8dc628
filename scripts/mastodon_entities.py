"""Read Mastodon's entity documentation into the machine-readable form the API tests check against.

    .venv/bin/python scripts/mastodon_entities.py DOCS_CHECKOUT > tests/mastoapi/mastodon_entities.json

``DOCS_CHECKOUT`` is a clone of ``github.com/mastodon/documentation``. Each page
``content/en/entities/<Page>.md`` lists its attributes as headings
(``### `name` ``, nested ones as ``#### `parent[child]` ``), each with a
``**Type:**`` line (``{{<nullable>}}`` when it may be null) and a version
history; a heading marked ``{{%optional%}}`` may be left out. The output keeps,
for each entity (``Page``, or ``Page#Anchor`` for one a page defines in a
section of its own, as ``Status#Mention``), each attribute's type (string,
integer, number, boolean, hash or array), whether it is nullable and required,
the entity it holds (``ref``), and the versions it was added and removed in.
Only the entities reachable from the ones this server answers are kept.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

# The entities this server answers, the roots of what is kept.
ROOTS = ("Account", "Account#CredentialAccount", "Status", "MediaAttachment", "Relationship", "Marker",
         "Application", "Application#CredentialApplication", "Token", "Instance", "V1_Instance", "Context",
         "Preferences", "Error")

_SECTION = re.compile(r"^## (?P<title>.*?)\s*(?:\{#(?P<anchor>[^}]+)\})?\s*$")
_ATTRIBUTE = re.compile(r"^#{3,5} `(?P<name>[^`]+)`(?P<marks>.*)$")
_VERSION = re.compile(r"^(?P<version>\d+\.\d+\.\d+)\b.*? - (?P<what>.*?)\\?$")
_RELREF = re.compile(r'relref "entities/(?P<page>[A-Za-z_]+)(?:#[^"]*)?"')
_ANCHOR_REF = re.compile(r"\]\(#(?P<anchor>[A-Za-z_]+)\)")
_TYPES = {"String": "string", "Integer": "integer", "Number": "number", "Float": "number",
          "Boolean": "boolean", "Hash": "hash", "Array": "array"}


def _type_of(text: str, *, page: str, pages: dict[str, str]) -> dict:
    nullable = "{{<nullable>}}" in text
    text = text.replace("{{<nullable>}}", "").strip()
    first = re.match(r"\[?[A-Za-z_]*", text).group(0)
    kind = _TYPES.get(first.capitalize(), "hash" if first.startswith("[") else None)
    if kind is None:
        print(f"{page}: unknown type {text!r}", file=sys.stderr)
    out = {"type": kind, "nullable": nullable}
    ref = _RELREF.search(text)
    anchor = _ANCHOR_REF.search(text)
    if ref and ref.group("page").lower() in pages:
        out["ref"] = pages[ref.group("page").lower()]
    elif anchor:
        out["ref"] = f"{page}#{anchor.group('anchor')}"
    if "," in text.split(" or ")[0] or text.count("relref") > 1:
        out.pop("ref", None)  # one of several entities: its type is all that is checked
    return out


def parse(page: str, text: str, pages: dict[str, str]) -> dict[str, dict]:
    entities: dict[str, dict] = {}
    entity, attribute, in_history, fence = None, None, False, False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        if fence:
            continue
        section = _SECTION.match(line)
        if section:
            title = section.group("title")
            entity = page if title == "Attributes" else (
                f"{page}#{section.group('anchor')}" if section.group("anchor") and "attributes" in title
                or "entity" in title else None)
            attribute = None
            continue
        found = _ATTRIBUTE.match(line)
        if found and entity is not None:
            marks = found.group("marks")
            attribute = {"required": "optional" not in marks and "removed" not in marks}
            entities.setdefault(entity, {})[found.group("name")] = attribute
            in_history = False
            continue
        if attribute is None:
            continue
        if line.startswith("**Type:**"):
            attribute.update(_type_of(line.removeprefix("**Type:**"), page=page, pages=pages))
        elif line.startswith("**Version history:**"):
            in_history = True
        elif in_history and not line.strip():
            in_history = False
        elif in_history and (version := _VERSION.match(line.strip())):
            what = version.group("what")
            if what.startswith("added") and "added" not in attribute:
                attribute["added"] = version.group("version")
            elif what.startswith("removed"):
                attribute["removed"] = version.group("version")
    return entities


def main(checkout: Path) -> dict:
    folder = checkout / "content/en/entities"
    texts = {path.stem: path.read_text() for path in sorted(folder.glob("*.md"))}
    pages = {name.lower(): name for name in texts}
    entities: dict[str, dict] = {}
    for page, text in texts.items():
        entities.update(parse(page, text, pages))
    kept, todo = {}, list(ROOTS)
    while todo:
        name = todo.pop()
        if name in kept or name not in entities:
            continue
        kept[name] = entities[name]
        todo += [attribute["ref"] for attribute in entities[name].values() if "ref" in attribute]
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return {"source": {"repository": "https://github.com/mastodon/documentation", "commit": commit,
                       "paths": sorted({f"content/en/entities/{n.split('#')[0]}.md" for n in kept})},
            "entities": dict(sorted(kept.items()))}


if __name__ == "__main__":
    json.dump(main(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
