#!/usr/bin/env python3
"""Fails on a documentation reference that leads nowhere.

Checked, in every tracked text file of the repository:
  - Markdown links [text](path) and [text](path#anchor) in .md files: the file exists, the anchor
    is the slug of one of its headings (GitHub's rule: lower case, punctuation dropped, spaces to -).
  - Mentions of a Markdown file (docs/search.md, README.md) in code and docs: the file exists,
    relative to the repository root, the mentioning file's folder or docs/.
  - Cited sections, `docs/X.md "Section title"`, `X.md, "Section title"` or `X.md ("Section title"`: X has a heading that
    begins with that title.
Usage: check_docs.py [REPO_ROOT]. Prints one line per broken reference (file:line: what) and exits
1 when there is one.
"""
import os
import re
import subprocess
import sys

# The checker and its test write broken references on purpose.
EXEMPT = ("scripts/check_docs.py", "tests/docs/")
TEXT_EXT = (".md", ".h", ".cpp", ".txt", ".sh", ".yaml", ".cmake", ".py", ".in")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
MD_MENTION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")
CITED = re.compile(r"((?:[\w.-]+/)*[\w.-]+\.md)[,]?\s+\(?\"([^\"]+)\"")


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def headings(path, cache={}):
    if path not in cache:
        titles = []
        fence = False
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("```"):
                    fence = not fence
                elif not fence and line.startswith("#"):
                    titles.append(line.lstrip("#").strip())
        cache[path] = titles
    return cache[path]


def resolve(root, here, name):
    for base in (os.path.dirname(here), root, os.path.join(root, "docs")):
        p = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(p):
            return p
    return None


def tracked_files(root):
    out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True)
    return [
        os.path.join(root, f)
        for f in out.stdout.split("\n")
        if f.endswith(TEXT_EXT) and not f.startswith(EXEMPT)
    ]


def check_file(root, path, errors):
    rel = os.path.relpath(path, root)
    is_md = path.endswith(".md")
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    for n, line in enumerate(lines, 1):
        where = f"{rel}:{n}"
        if is_md:
            for target in LINK.findall(line):
                if re.match(r"^[a-z]+:", target):
                    continue
                file_part, _, anchor = target.partition("#")
                dest = path if not file_part else resolve(root, path, file_part)
                if dest is None:
                    errors.append(f"{where}: link to missing file {file_part}")
                elif anchor and dest.endswith(".md"):
                    if anchor not in {slug(h) for h in headings(dest)}:
                        errors.append(f"{where}: {file_part or rel} has no section #{anchor}")
        for name in MD_MENTION.findall(line):
            if "*" in name or name.startswith("."):
                continue
            if resolve(root, path, name) is None:
                errors.append(f"{where}: {name} does not exist")
        for name, title in CITED.findall(line):
            dest = resolve(root, path, name)
            if dest is None:
                continue  # reported above
            if not any(h.lower().startswith(title.lower()) for h in headings(dest)):
                errors.append(f"{where}: {name} has no section \"{title}\"")


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    errors = []
    for path in tracked_files(root):
        if os.path.isfile(path):
            check_file(root, path, errors)
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} broken documentation reference(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
