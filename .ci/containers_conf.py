"""Set keys in /etc/containers/containers.conf for CI's podman, idempotently.

    python3 .ci/containers_conf.py SECTION.KEY=VALUE ...

Each VALUE is written as given (TOML), under its [SECTION], which is added
when missing; an existing `KEY = …` in that section is replaced. The file is
written only when it changes. CONTAINERS_CONF overrides the path.
"""

import os
import re
import sys


def ensure(text: str, section: str, key: str, value: str) -> str:
    line = f"{key} = {value}"
    head = re.search(rf"^\[{re.escape(section)}\]\s*$", text, re.M)
    if not head:
        sep = "\n\n" if text.strip() else ""
        return text.rstrip("\n") + sep + f"[{section}]\n{line}\n"
    start = head.end()
    nxt = re.search(r"^\[", text[start:], re.M)
    end = start + nxt.start() if nxt else len(text)
    body = text[start:end]
    pattern = rf"^[ \t]*{re.escape(key)}[ \t]*=.*$"
    if re.search(pattern, body, re.M):
        body = re.sub(pattern, line, body, count=1, flags=re.M)
    else:
        body = "\n" + line + body
    return text[:start] + body + text[end:]


def main(args: list[str]) -> int:
    path = os.environ.get("CONTAINERS_CONF", "/etc/containers/containers.conf")
    text = open(path).read() if os.path.exists(path) else ""
    new = text
    for arg in args:
        name, sep, value = arg.partition("=")
        section, dot, key = name.partition(".")
        if not (sep and dot and section and key):
            print(f"containers_conf.py: expected SECTION.KEY=VALUE, got {arg!r}", file=sys.stderr)
            return 2
        new = ensure(new, section, key, value)
    if new != text:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(new)
        print(f"{path}: updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
