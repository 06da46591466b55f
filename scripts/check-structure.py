#!/usr/bin/env python3
"""The repository's structure rules, checked (docs/ARCHITECTURE.md, "Rules
to keep"):

- no Rust source file over --max-file-lines (450) lines;
- no function over --max-fn-lines (80) lines, route tables excepted (a
  `// structure: route table` comment on the line above the `fn`);
- no import circle between the modules (files) of one crate: a module and
  its own ancestors or descendants do not count;
- stored JSON is parsed only in a store's row mapping: `serde_json::from_str`
  outside `store/` (and tests) is listed for review, not failed, since
  request bodies and config files are parsed the same way.

Exit status 1 when a rule is broken. Usage:
    scripts/check-structure.py [--repo DIR] [--max-file-lines N] [--max-fn-lines N]
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

FN_RE = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?"
    r"(?:extern\s+\"[^\"]*\"\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)"
)
EXEMPT = "structure: route table"


def rust_files(repo: Path) -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.rs"],
            cwd=repo, check=True, capture_output=True, text=True,
        ).stdout.split()
        files = [repo / f for f in out]
    except (subprocess.CalledProcessError, FileNotFoundError):
        files = list(repo.rglob("*.rs"))
    return sorted(
        f for f in files
        if f.exists() and "target" not in f.parts and not f.relative_to(repo).parts[0] == "fuzz"
    )


def strip_code(text: str) -> str:
    """Blanks out comments, strings and char literals (keeping newlines), so
    braces inside them do not count."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + len(m.group(0)))
            j = n if j < 0 else j + len(close)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def long_functions(path: Path, limit: int) -> list[tuple[str, int, int]]:
    raw = path.read_text(encoding="utf-8", errors="replace")
    raw_lines = raw.split("\n")
    lines = strip_code(raw).split("\n")
    found = []
    for i, line in enumerate(lines):
        m = FN_RE.match(line)
        if not m:
            continue
        if i > 0 and EXEMPT in raw_lines[i - 1]:
            continue
        depth, opened, end = 0, False, None
        for j in range(i, len(lines)):
            for ch in lines[j]:
                if ch == "{":
                    depth, opened = depth + 1, True
                elif ch == "}":
                    depth -= 1
                elif ch == ";" and not opened and depth == 0:
                    end = -1  # a declaration without a body
                    break
            if end == -1 or (opened and depth == 0):
                end = j if end is None else end
                break
        if end is not None and end >= 0:
            length = end - i + 1
            if length > limit:
                found.append((m.group(1), i + 1, length))
    return found


def module_of(src: Path, file: Path) -> tuple[str, ...]:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def use_paths(text: str, start: int) -> list[list[str]]:
    """The paths of a `crate::` use tree (or expression path) at `start`."""
    def parse(i: int, prefix: list[str]) -> tuple[list[list[str]], int]:
        paths, seg = [], list(prefix)
        while i < len(text):
            m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*", text[i:])
            if text[i:].lstrip().startswith("{"):
                i = text.index("{", i) + 1
                while True:
                    sub, i = parse(i, seg)
                    paths.extend(sub)
                    rest = text[i:].lstrip()
                    i = len(text) - len(rest)
                    if rest.startswith(","):
                        i += 1
                        if text[i:].lstrip().startswith("}"):
                            i = text.index("}", i) + 1
                            return paths, i
                        continue
                    if rest.startswith("}"):
                        return paths, i + 1
                    return paths, i
            if not m:
                break
            seg.append(m.group(1))
            i += len(m.group(0))
            if text.startswith("::", i):
                i += 2
                continue
            break
        paths.append(seg)
        return paths, i

    return parse(start, [])[0]


def circles(repo: Path) -> list[list[str]]:
    found = []
    for cargo in sorted(repo.glob("*/Cargo.toml")) + [repo / "Cargo.toml"]:
        src = cargo.parent / "src"
        if not src.is_dir() or "fuzz" in src.parts:
            continue
        files = sorted(src.rglob("*.rs"))
        mods = {module_of(src, f): f for f in files}
        edges: dict[tuple, set] = {m: set() for m in mods}
        for m, f in mods.items():
            text = strip_code(f.read_text(encoding="utf-8", errors="replace"))
            refs = []
            for hit in re.finditer(r"\bcrate::", text):
                refs += use_paths(text, hit.end())
            for hit in re.finditer(r"\b((?:super::)+)", text):
                ups = hit.group(1).count("super")
                base = list(m if f.stem not in ("mod", "lib", "main") else m)
                base = base[: max(0, len(base) - ups)]
                refs += [base + p for p in use_paths(text, hit.end())]
            for path in refs:
                target = None
                for k in range(len(path), 0, -1):
                    if tuple(path[:k]) in mods:
                        target = tuple(path[:k])
                        break
                if target is None or target == m:
                    continue
                if target[: len(m)] == m or m[: len(target)] == target:
                    continue  # ancestor or descendant
                edges[m].add(target)
        found += [
            [f"{cargo.parent.name}::{'::'.join(x) or 'crate'}" for x in scc]
            for scc in tarjan(edges) if len(scc) > 1
        ]
    return found


def tarjan(edges: dict) -> list[list]:
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            out.append(sorted(scc))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--max-file-lines", type=int, default=450)
    ap.add_argument("--max-fn-lines", type=int, default=80)
    args = ap.parse_args()
    repo = Path(args.repo).resolve()
    broken = 0
    files = rust_files(repo)
    for f in files:
        rel = f.relative_to(repo)
        n = f.read_text(encoding="utf-8", errors="replace").count("\n")
        if n > args.max_file_lines:
            print(f"file over {args.max_file_lines} lines: {rel} ({n})")
            broken += 1
        for name, line, length in long_functions(f, args.max_fn_lines):
            print(f"function over {args.max_fn_lines} lines: {rel}:{line} {name} ({length})")
            broken += 1
    for scc in circles(repo):
        print("import circle: " + " <-> ".join(scc))
        broken += 1
    review = []
    for f in files:
        rel = f.relative_to(repo)
        if "store" in rel.parts or "tests" in rel.parts:
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        for i, line in enumerate(text.split("\n"), 1):
            if "serde_json::from_str" in line and "#[cfg(test)]" not in text[: text.find(line)][-2000:]:
                review.append(f"{rel}:{i}")
    if review:
        print(f"to review (serde_json::from_str outside a store): {', '.join(review)}")
    print(f"{len(files)} Rust files read; {broken} rule(s) broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
