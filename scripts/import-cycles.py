#!/usr/bin/env python3
"""Import circles between keyshift's source files, and arrows that run back up.

Every `crate::…`, `super::…` and `self::…` path in a file under src/ (in `use` lines and
inline) is resolved to the file of the longest module prefix that exists; a file that names
another depends on it. A module naming one of its own ancestors (the `mod.rs` that declares
it, and that one's parents) is Rust's module tree, not an arrow between layers, and is not
counted: a parent that declares children and shares a type with them is no circle. Prints each circle (a strongly connected set of two or more files) and
each file outside src/commands/ that names `crate::commands`; exits 1 if there is any.

    python3 scripts/import-cycles.py        # from the repository root
"""
import os
import re
import sys

SRC = "src"


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def files():
    out = {}
    for root, _, names in os.walk(SRC):
        for n in names:
            if n.endswith(".rs"):
                p = os.path.join(root, n)
                out[module_of(p)] = p
    return out


PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::\w+)*)::\{([^;]*)\}", re.S)


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def strip_tests(text):
    # `#[cfg(test)] mod tests { … }` at the end of a file: tests may reach anywhere.
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: m.start()] if m else text


def resolve(base, parts, mods):
    best = None
    for i in range(len(parts), 0, -1):
        cand = tuple(parts[:i])
        if cand in mods:
            best = cand
            break
    return best


def deps(mod, path, mods):
    text = strip_tests(strip_comments(open(path, encoding="utf-8").read()))
    found = set()
    is_dir_module = os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs")
    here = mod if is_dir_module else mod[:-1]

    def target(head, tail):
        parts = [p for p in tail.split("::") if p]
        if head == "crate":
            base = []
        elif head == "self":
            base = list(here) if is_dir_module else list(mod)
        else:  # super
            base = list(here[:-1]) if is_dir_module else list(mod[:-2]) if False else list(here)
            base = list(mod[:-1])
        # extra leading `super`s
        while parts and parts[0] == "super":
            base = base[:-1]
            parts = parts[1:]
        return resolve(base, base + parts, mods)

    for m in PATH.finditer(text):
        t = target(m.group(1), m.group(2))
        if t is not None:
            found.add(t)
    for m in USE_GROUP.finditer(text):
        head, prefix, group = m.group(1), m.group(2), m.group(3)
        for item in re.split(r"[,\s]+", group):
            item = item.split("::")[0].strip("{} ")
            if item and item != "self" and re.match(r"^\w+$", item):
                t = target(head, f"{prefix}::{item}")
                if t is not None:
                    found.add(t)
    found.discard(mod)
    found.discard(())
    return {t for t in found if mod[: len(t)] != t}


def sccs(graph):
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    mods = files()
    graph = {m: deps(m, p, mods) for m, p in mods.items()}
    bad = 0
    for comp in sccs(graph):
        bad += 1
        print("circle:", " <-> ".join(mods[m] for m in comp))
    for m, ds in sorted(graph.items()):
        if m[:1] != ("commands",) and any(d[:1] == ("commands",) for d in ds) and m != ():
            bad += 1
            print(f"arrow back up: {mods[m]} imports from src/commands/")
    if bad:
        sys.exit(1)
    print(f"no import circle among {len(mods)} files; nothing outside src/commands/ imports it")


if __name__ == "__main__":
    main()
