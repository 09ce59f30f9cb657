"""Copies the benchmark tables into the README: each block between
``<!-- table:NAME -->`` and ``<!-- /table -->`` becomes benchmarks/results/NAME.md, then a
line naming the machine it was measured on (the CPU and its vector extensions, from
NAME.json; results from before the benchmarks recorded the CPU say so).

Run: ``python benchmarks/readme_tables.py`` after a benchmark; a test checks the README
quotes the committed results.
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- table:([\w-]+) -->\n).*?(<!-- /table -->)", re.S)


def machine_line(path):
    """``*Measured on: AMD EPYC, 2 cores, avx2 fma.*`` from a result's ``machine`` block."""
    machine = json.loads(path.read_text()).get("machine", {}) if path.exists() else {}
    cores = f"{machine['cpus']} cores" if machine.get("cpus") else "cores not recorded"
    cpu = machine.get("cpu")
    if not cpu:
        return f"*Measured on: {cores}; the CPU was not recorded (a result from before the benchmarks named it).*"
    extensions = " ".join(cpu.get("vector_extensions", [])) or "none of the vector extensions it looks for"
    return f"*Measured on: {cpu.get('model') or 'an unnamed CPU'}, {cores}, {extensions}.*"


def filled(readme):
    def table(match):
        path = ROOT / "benchmarks" / "results" / f"{match.group(2)}.md"
        if not path.exists():
            raise SystemExit(f"README.md: table {match.group(2)!r}: {path} does not exist")
        return match.group(1) + path.read_text() + "\n" + machine_line(path.with_suffix(".json")) + "\n" + match.group(3)

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
