#!/usr/bin/env python3
"""Checks README.md and docs/*.md (make test-host):

- every relative link points to a file that exists, and every `#anchor` to
  a heading of the page it names (GitHub's anchors);
- every ```rust block is compiled: its page is included by the doctest
  crate tests/doc/src/lib.rs, or the block is `rust,ignore` and an excerpt;
- every excerpt (a code block right after `<!-- excerpt: PATH -->`) appears
  in PATH line for line (leading and trailing blanks aside), so quoted
  kernel and C code cannot drift from the files it comes from.

Exits 1 naming each problem as FILE:LINE: what. Also:
  doccheck.py --vm-run-examples OUT   writes each `make vm-run CMD='...'`
      example of the pages (those without VM_FILES) to OUT, NUL-separated,
      for the guest test that runs them (docs_vm_run_examples).
"""
import os
import re
import shlex
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pages(root):
    out = [os.path.join(root, "README.md")]
    docs = os.path.join(root, "docs")
    if os.path.isdir(docs):
        out += sorted(os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))
    return out


def blocks(text):
    """(start line, info string, body lines, preceding line) of each fenced block."""
    lines = text.split("\n")
    i, out = 0, []
    while i < len(lines):
        m = re.match(r"^(\s*)(```+)(.*)$", lines[i])
        if m:
            indent, fence, info = m.group(1), m.group(2), m.group(3).strip()
            j = i + 1
            while j < len(lines) and not re.match(r"^\s*" + fence + r"\s*$", lines[j]):
                j += 1
            body = [l[len(indent):] if l.startswith(indent) else l.lstrip() for l in lines[i + 1:j]]
            prev = lines[i - 1].strip() if i > 0 else ""
            out.append((i + 1, info, body, prev))
            i = j + 1
        else:
            i += 1
    return out


def prose(text):
    """The text outside fenced blocks and inline code, line numbers kept."""
    lines = text.split("\n")
    inside, fence = False, None
    for n, l in enumerate(lines):
        m = re.match(r"^\s*(```+)", l)
        if m and (not inside or m.group(1) == fence):
            inside, fence = (not inside), m.group(1)
            lines[n] = ""
        elif inside:
            lines[n] = ""
        else:
            lines[n] = re.sub(r"`[^`]*`", "", l)
    return lines


def slug(heading):
    """GitHub's anchor of a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    seen, out = {}, set()
    text = open(path, encoding="utf-8").read().split("\n")
    inside, fence = False, None
    for l in text:
        m = re.match(r"^\s*(```+)", l)
        if m and (not inside or m.group(1) == fence):
            inside, fence = (not inside), m.group(1)
            continue
        if inside:
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*$", l)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def check(root):
    problems = []
    doctest_src = os.path.join(root, "tests", "doc", "src", "lib.rs")
    included = set()
    if os.path.exists(doctest_src):
        for m in re.finditer(r'include_str!\("([^"]+)"\)', open(doctest_src, encoding="utf-8").read()):
            included.add(os.path.normpath(os.path.join(os.path.dirname(doctest_src), m.group(1))))
    for page in pages(root):
        rel = os.path.relpath(page, root)
        text = open(page, encoding="utf-8").read()
        for n, line in enumerate(prose(text), 1):
            for m in re.finditer(r"\]\(([^)\s]+)\)", line):
                target = m.group(1)
                if re.match(r"^[a-z]+:", target):
                    continue
                path, _, anchor = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
                if not os.path.exists(dest):
                    problems.append(f"{rel}:{n}: link to {target}: no such file {os.path.relpath(dest, root)}")
                    continue
                if anchor:
                    if not dest.endswith(".md"):
                        problems.append(f"{rel}:{n}: link to {target}: an anchor into a file that is not Markdown")
                    elif anchor not in anchors(dest):
                        problems.append(f"{rel}:{n}: link to {target}: {os.path.relpath(dest, root)} has no heading #{anchor}")
        for start, info, body, prev in blocks(text):
            lang = info.split(",")[0].strip()
            m = re.match(r"<!--\s*excerpt:\s*(\S+)\s*-->", prev)
            if m:
                src = os.path.join(root, m.group(1))
                if not os.path.exists(src):
                    problems.append(f"{rel}:{start}: excerpt of {m.group(1)}: no such file")
                    continue
                want = [l.strip() for l in body]
                while want and not want[0]:
                    want.pop(0)
                while want and not want[-1]:
                    want.pop()
                have = [l.strip() for l in open(src, encoding="utf-8").read().split("\n")]
                if not any(have[k:k + len(want)] == want for k in range(len(have) - len(want) + 1)):
                    problems.append(f"{rel}:{start}: excerpt no longer in {m.group(1)} (copy it again from the file)")
            elif lang == "rust":
                if "ignore" in info:
                    problems.append(f"{rel}:{start}: a rust,ignore block that is not an excerpt (<!-- excerpt: PATH --> above it)")
                elif os.path.normpath(page) not in included:
                    problems.append(f"{rel}:{start}: a rust block on a page tests/doc/src/lib.rs does not include (it would not be compiled)")
            elif lang == "":
                problems.append(f"{rel}:{start}: a code block without a language (rustdoc would compile it as Rust): say text, sh, c, ...")
    return problems


def vm_run_examples(root):
    out = []
    for page in pages(root):
        for start, info, body, prev in blocks(open(page, encoding="utf-8").read()):
            if info.split(",")[0] not in ("sh", "console"):
                continue
            i = 0
            while i < len(body):
                if not body[i].lstrip().startswith("make vm-run"):
                    i += 1
                    continue
                # The command goes on while a quote is open.
                j = i
                while True:
                    try:
                        words = shlex.split("\n".join(body[i:j + 1]), comments=True)
                        break
                    except ValueError:
                        j += 1
                        if j >= len(body):
                            sys.exit(f"{page}:{start + i + 1}: unterminated quote in a make vm-run example")
                args = dict(w.split("=", 1) for w in words[2:] if "=" in w)
                if "CMD" in args and "VM_FILES" not in args and "KERNEL" not in args \
                        and args["CMD"] not in out:
                    out.append(args["CMD"])
                i = j + 1
    return out


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--vm-run-examples":
        with open(sys.argv[2], "wb") as f:
            f.write(b"\0".join(c.encode() for c in vm_run_examples(HERE)))
        return 0
    root = sys.argv[1] if len(sys.argv) > 1 else HERE
    problems = check(root)
    for p in problems:
        print(f"doccheck: {p}")
    n = len(pages(root))
    print(f"doccheck: {n} pages, {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
