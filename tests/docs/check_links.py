#!/usr/bin/env python3
"""Checks every relative link in the repository's Markdown files: the target file must exist
(anchors are not checked). Usage: check_links.py REPO_ROOT"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
link = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
skip = {"build", ".git", "node_modules"}
broken = []
checked = 0
for md in sorted(root.rglob("*.md")):
    if skip.intersection(md.relative_to(root).parts):
        continue
    in_code = False
    for number, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        for target in link.findall(line):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            checked += 1
            if not (md.parent / path).exists():
                broken.append(f"{md.relative_to(root)}:{number}: {target}")
print(f"{checked} relative links checked")
if broken:
    print("broken links:\n  " + "\n  ".join(broken))
    sys.exit(1)
