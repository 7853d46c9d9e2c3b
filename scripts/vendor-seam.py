#!/usr/bin/env python3
"""The vendor seam holds: commands, the engine and the reports name no vendor.

- Nothing in src/commands/, src/engine/ or src/report/ imports from `providers` or names a
  pair kind (`PairKind::`) or a vendor (`Vendor::`): they reach vendors only through
  src/registry.rs and the engine's traits. (The engine's own unit tests may name a vendor for
  their in-memory target.)
- Outside src/providers/, src/sandbox/ and src/mapping/, only src/registry.rs names a vendor's
  types: no other file reaches into `providers::` or a pair's planner
  (`providers::bifrost::plan`, `providers::descope::plan`), names a pair kind, or names a vendor-prefixed
  type (`WorkatoConfig`, `BifrostProfile`, …); and none compares a vendor's name as a string.
- Every command file stays under 250 lines: commands orchestrate.

Exit 1 with one line per breach.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "src"
NEUTRAL = ["commands", "engine", "report"]
FORBIDDEN = re.compile(r"\bproviders::|\bPairKind::|\bVendor::(Workato|Descope|Bifrost)\b")
MAX_COMMAND_LINES = 250

breaches = []
for layer in NEUTRAL:
    for path in sorted((ROOT / layer).rglob("*.rs")):
        rel = path.relative_to(ROOT.parent)
        if rel.as_posix() == "src/engine/tests.rs":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//", 1)[0]
            if FORBIDDEN.search(code):
                breaches.append(f"{rel}:{n}: names a vendor or pair: {line.strip()}")
VENDOR_DIRS = {"providers", "sandbox", "mapping"}
VENDOR_TYPES = re.compile(
    r"\bproviders::|\bmapping::(bifrost|descope)\b|\bPairKind::|\b(Workato|Bifrost|Descope)[A-Z]\w*"
    r"|[=!]= *\"(workato|bifrost|descope)\"|\"(workato|bifrost|descope)\" *=>"
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

for path in sorted((ROOT / "commands").glob("*.rs")):
    lines = len(path.read_text().splitlines())
    if lines >= MAX_COMMAND_LINES:
        rel = path.relative_to(ROOT.parent)
        breaches.append(f"{rel}: {lines} lines (a command orchestrates: under {MAX_COMMAND_LINES})")

for b in breaches:
    print(b)
if breaches:
    sys.exit(1)
print("vendor seam holds: commands, engine and reports name no vendor; outside providers, "
      "sandbox and mapping only src/registry.rs names a vendor's type; every command file under "
      f"{MAX_COMMAND_LINES} lines")
