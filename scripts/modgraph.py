#!/usr/bin/env python3
"""Print the import graph between vaultctl's top-level modules (from `crate::x`
paths in src/, test-only code excluded) and any cycles in it."""
import os, re, sys
from collections import defaultdict

root = sys.argv[1] if len(sys.argv) > 1 else "src"
edges = defaultdict(lambda: defaultdict(int))
# files that are test-only as a whole: `#[cfg(test)] mod name;`
test_files = set()
for d, _, files in os.walk(root):
    for f in files:
        if f.endswith(".rs"):
            path = os.path.join(d, f)
            base = d if f in ("mod.rs", "lib.rs", "main.rs") else path[:-3]
            for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\(\w+\))? )?mod (\w+);", open(path).read()):
                test_files.add(os.path.join(base, m.group(1) + ".rs"))
                test_files.add(os.path.join(base, m.group(1), "mod.rs"))
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(d, f)
        if path in test_files:
            continue
        rel = os.path.relpath(path, root)
        top = rel.split(os.sep)[0].removesuffix(".rs")
        if top in ("lib", "main"):
            continue
        text = open(path).read()
        # drop `#[cfg(test)] mod ... { ... }` blocks and test-only items (up to the next blank line at depth 0)
        out, i, lines = [], 0, text.split("\n")
        while i < len(lines):
            if lines[i].strip() == "#[cfg(test)]":
                depth, j, started = 0, i + 1, False
                while j < len(lines):
                    depth += lines[j].count("{") - lines[j].count("}")
                    started = started or "{" in lines[j] or lines[j].rstrip().endswith(";")
                    j += 1
                    if started and depth <= 0:
                        break
                i = j
                continue
            out.append(re.sub(r"//.*", "", lines[i]))
            i += 1
        for m in re.finditer(r"crate::(\w+)", "\n".join(out)):
            if m.group(1) != top:
                edges[top][m.group(1)] += 1

mods = sorted(set(edges) | {t for s in edges.values() for t in s})
for m in mods:
    print(f"{m:10} -> " + ", ".join(f"{t}({n})" for t, n in sorted(edges[m].items())))
# strongly connected components (Tarjan)
index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        if len(c) > 1: sccs.append(sorted(c))
for m in mods:
    if m not in index: visit(m)
print("cycles:", "; ".join(" <-> ".join(c) for c in sccs) if sccs else "none")
sys.exit(1 if sccs else 0)
