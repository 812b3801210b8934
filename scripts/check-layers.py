#!/usr/bin/env python3
"""Checks the house's layout: no import cycle between the files of src/, and each part
imports only the parts below it (token < telemetry < store < registry < bearer, sign_in <
magento; bearer and sign_in do not import each other).

A `use` is followed to the file that *defines* the item, through re-exports, so a file
that imports a sibling's item through `mod.rs` still depends on that sibling. `mod`
declarations, re-exports (`pub use`: a module's interface) and doc comments are not
imports. Prints the graph's size; exits 1 on a
cycle or a layering breach.
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
RANK = {"token": 0, "telemetry": 1, "store": 2, "registry": 3, "bearer": 4, "sign_in": 4,
        "magento": 5}
ITEM = re.compile(
    r"^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?"
    r"(?:struct|enum|fn|const|static|type|trait|mod|macro_rules!)\s+([A-Za-z_][A-Za-z0-9_]*)",
    re.M)


def module_path(file):
    rel = file.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def code_of(text):
    """The code of a file as built: no comments, string literals, unit-test module (by this
    crate's habit, the `#[cfg(test)]` module closes the file) or imports for doc links only
    (`#[cfg(doc)]`)."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = text.split("#[cfg(test)]")[0]
    text = re.sub(r"#\[cfg\(doc\)\]\s*use[^;]*;", "", text)
    return text


def use_trees(code, exported):
    """Every path a `use` statement names, braces expanded: the re-exports (`pub use`,
    `pub(crate) use`: a module's interface) when `exported`, else the private imports (what
    the module itself depends on)."""
    paths = []
    for match in re.finditer(r"(\bpub(?:\([^)]*\))?\s+)?\buse\s+([^;]+);", code):
        if bool(match.group(1)) == exported:
            paths.extend(expand(match.group(2).replace("\n", " ").replace(" ", "")))
    return paths


def expand(tree):
    depth, start = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1:i], tree[i + 1:]
                out = []
                for part in split_top(inner):
                    for sub in expand(part):
                        out.append(prefix + sub + rest if sub != "self" else prefix.rstrip(":") + rest)
                return out
    return [tree.split(" as ")[0].split("as")[0] if False else re.sub(r"as[A-Za-z_][A-Za-z0-9_]*$", "", tree)]


def split_top(inner):
    parts, depth, current = [], 0, ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current:
        parts.append(current)
    return [p for p in parts if p]


def main():
    files = {module_path(f): f for f in SRC.rglob("*.rs")}
    codes = {m: code_of(f.read_text()) for m, f in files.items()}
    defined = {m: set(ITEM.findall(code)) for m, code in codes.items()}
    exports = {m: use_trees(code, True) for m, code in codes.items()}
    imports = {m: use_trees(code, False) for m, code in codes.items()}

    def absolute(module, path):
        segments = [s for s in path.split("::") if s]
        if not segments:
            return None
        base = list(module)
        if segments[0] == "crate":
            base, segments = [], segments[1:]
        elif segments[0] == "self":
            segments = segments[1:]
        elif segments[0] == "super":
            while segments and segments[0] == "super":
                base, segments = base[:-1], segments[1:]
        else:
            return None  # an external crate
        return tuple(base), segments

    def resolve(module, path, seen=()):
        """The module that defines what `path` (used in `module`) names."""
        found = absolute(module, path)
        if found is None:
            return None
        base, segments = found
        # Walk down while the segments name module files.
        while segments and base + (segments[0],) in files:
            base, segments = base + (segments[0],), segments[1:]
        if base not in files:
            return None
        if not segments or segments[0] in defined[base] or segments[0] == "*":
            return base
        if (base, segments[0]) in seen:
            return base
        # A re-export: follow the `use` in `base` that brings the name in.
        for used in exports[base] + imports[base]:
            if used.split("::")[-1] == segments[0]:
                target = resolve(base, used, seen + ((base, segments[0]),))
                if target is not None:
                    return target
        return base

    edges = {m: set() for m in files}
    for module, paths in imports.items():
        for path in paths:
            target = resolve(module, path)
            if target is not None and target != module and target != ():
                edges[module].add(target)

    failures = []
    for module, targets in edges.items():
        for target in targets:
            own = module[0] if module else None
            other = target[0] if target else None
            if own in RANK and other in RANK and own != other:
                if RANK[other] >= RANK[own]:
                    failures.append(f"layering: {'/'.join(module)} imports {'/'.join(target)}")

    # Cycles between files (Tarjan's strongly connected components).
    index, low, stack, on_stack, counter, cycles = {}, {}, [], set(), [0], []

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(component)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    for component in cycles:
        failures.append("cycle: " + " -> ".join("/".join(m) or "lib" for m in component))

    edge_count = sum(len(t) for t in edges.values())
    print(f"check-layers: {len(files)} files, {edge_count} imports between them")
    for failure in failures:
        print(failure)
    if "--edges" in sys.argv:
        for module in sorted(edges):
            for target in sorted(edges[module]):
                print("  " + ("/".join(module) or "lib") + " -> " + ("/".join(target) or "lib"))
    if failures:
        sys.exit(1)
    print("check-layers: no import cycle; every part imports only the parts below it")


if __name__ == "__main__":
    main()
