"""The README quotes the committed benchmark results, table for table."""
from pathlib import Path

from benchmarks.readme_tables import BLOCK, filled

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_tables_are_the_committed_results():
    text = README.read_text()
    assert len(BLOCK.findall(text)) >= 6
    assert filled(text) == text, "run `python benchmarks/readme_tables.py` after a benchmark"
