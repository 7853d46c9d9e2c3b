#!/usr/bin/env python3
"""The vendor seam holds: commands, the engine, the mapping parser and the reports name no vendor.

- Nothing in src/commands/, src/engine/, src/report/ or src/mapping/ (nor src/pair.rs) imports
  from `providers` or names a vendor (`Vendor::`): they reach vendors only through
  src/registry.rs and the pair traits. (The engine's own unit tests may name a vendor for
  their in-memory target.)
- Outside src/providers/ and src/sandbox/, only src/registry.rs names a vendor's types: no
  other file reaches into `providers::` or names a vendor-prefixed type (`WorkatoConfig`,
  `BifrostProfile`, …); and none compares a vendor's name as a string.
- Outside the vendor folders (src/providers/<vendor>/, src/sandbox/) and src/registry.rs, a
  vendor's name appears in code (comments and unit tests aside) in four files only, each for
  a reason: the vendor enum (src/model.rs), the CLI's vendor flags (src/cli.rs), the list of
  vendor folders (src/providers/mod.rs) and a schema migration (src/state/schema.rs).
- Every command file stays under 250 lines: commands orchestrate.

The vendors are the folders of src/providers/ that hold a pair definition (pair.rs), so a new
pair needs no edit here.

Exit 1 with one line per breach.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "src"


def vendors():
    """The vendors: folders of src/providers/ with a pair definition (pair.rs), as declared in
    src/providers/mod.rs — a test-only one (`#[cfg(test)]`) aside."""
    decl = (ROOT / "providers" / "mod.rs").read_text().splitlines()
    out = []
    for i, line in enumerate(decl):
        m = re.match(r"pub mod (\w+);", line.strip())
        if not m or not (ROOT / "providers" / m.group(1) / "pair.rs").exists():
            continue
        if i > 0 and decl[i - 1].strip() == "#[cfg(test)]":
            continue
        out.append(m.group(1))
    return out


VENDORS = vendors()
assert VENDORS, "no vendor folder found under src/providers"
TITLES = "|".join(v.capitalize() for v in VENDORS)
NEUTRAL = ["commands", "engine", "report", "mapping", "pair.rs"]
FORBIDDEN = re.compile(rf"\bproviders::|\bVendor::({TITLES})\b")
MAX_COMMAND_LINES = 250

breaches = []
for layer in NEUTRAL:
    paths = [ROOT / layer] if layer.endswith(".rs") else sorted((ROOT / layer).rglob("*.rs"))
    for path in paths:
        rel = path.relative_to(ROOT.parent)
        if rel.as_posix() == "src/engine/tests.rs":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//", 1)[0]
            if FORBIDDEN.search(code):
                breaches.append(f"{rel}:{n}: names a vendor or pair: {line.strip()}")
VENDOR_DIRS = {"providers", "sandbox"}
NAMES = "|".join(VENDORS)
VENDOR_TYPES = re.compile(
    rf"\bproviders::|\b({TITLES})[A-Z]\w*"
    rf"|[=!]= *\"({NAMES})\"|\"({NAMES})\" *=>"
)
for path in sorted(ROOT.rglob("*.rs")):
    rel = path.relative_to(ROOT.parent)
    parts = path.relative_to(ROOT).parts
    if parts[0] in VENDOR_DIRS or rel.as_posix() == "src/registry.rs":
        continue
    for n, line in enumerate(path.read_text().splitlines(), 1):
        code = line.split("//", 1)[0]
        if VENDOR_TYPES.search(code):
            breaches.append(f"{rel}:{n}: names a vendor's type or compares its name: {line.strip()}")

VENDOR_NAME = re.compile(NAMES, re.I)
VENDOR_FOLDERS = set(VENDORS) | {"sandbox"}
ALLOWED = {"src/model.rs", "src/cli.rs", "src/providers/mod.rs", "src/state/schema.rs"}


def code_lines(text):
    # Unit tests at the end of a file (`#[cfg(test)] mod tests`) and comments aside.
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    text = text[: m.start()] if m else text
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip().startswith("//"):
            yield n, line


naming = {}
for path in sorted(ROOT.rglob("*.rs")):
    rel = path.relative_to(ROOT.parent).as_posix()
    parts = path.relative_to(ROOT).parts
    if VENDOR_FOLDERS & set(parts[:-1]) or rel == "src/registry.rs":
        continue
    if path.name == "tests.rs" or path.name.endswith("_tests.rs"):
        continue
    hits = [n for n, line in code_lines(path.read_text()) if VENDOR_NAME.search(line)]
    if hits:
        naming[rel] = hits
for rel, hits in naming.items():
    if rel not in ALLOWED:
        breaches.append(f"{rel}:{hits[0]}: names a vendor outside the vendor folders and the registry")

for path in sorted((ROOT / "commands").glob("*.rs")):
    lines = len(path.read_text().splitlines())
    if lines >= MAX_COMMAND_LINES:
        rel = path.relative_to(ROOT.parent)
        breaches.append(f"{rel}: {lines} lines (a command orchestrates: under {MAX_COMMAND_LINES})")

for b in breaches:
    print(b)
if breaches:
    sys.exit(1)
print("vendor seam holds: commands, engine, mapping and reports name no vendor; outside the "
      f"vendor folders and the registry, {len(naming)} files name one ({', '.join(sorted(naming))}); "
      f"every command file under {MAX_COMMAND_LINES} lines")
