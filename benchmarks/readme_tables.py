"""Copies the benchmark tables into the README: each block between
``<!-- table:NAME -->`` and ``<!-- /table -->`` becomes benchmarks/results/NAME.md.

Run: ``python benchmarks/readme_tables.py`` after a benchmark; a test checks the README
quotes the committed results.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- table:([\w-]+) -->\n).*?(<!-- /table -->)", re.S)


def filled(readme):
    def table(match):
        path = ROOT / "benchmarks" / "results" / f"{match.group(2)}.md"
        if not path.exists():
            raise SystemExit(f"README.md: table {match.group(2)!r}: {path} does not exist")
        return match.group(1) + path.read_text() + match.group(3)

    return BLOCK.sub(table, readme)


def main():
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = filled(text)
    if new != text:
        readme.write_text(new)
    print(f"README.md: {len(BLOCK.findall(new))} tables" + (" updated" if new != text else " already current"))


if __name__ == "__main__":
    sys.exit(main())
