"""docs/bad-input.md is current, and every test it names exists."""
import re

from tests import bad_input_cases


def test_the_table_is_current():
    document = (bad_input_cases.ROOT / "docs" / "bad-input.md").read_text(encoding="utf-8")
    assert document == bad_input_cases.render(), "run: python -m tests.bad_input_cases > docs/bad-input.md"


def test_every_named_test_exists():
    named = [test for _, _, test in bad_input_cases.rows() if "::" in test]
    for test in named:
        path, name = test.split("::")
        source = (bad_input_cases.ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(", source, re.M), test
    for path in bad_input_cases.CASE_MODULES:
        source = (bad_input_cases.ROOT / path).read_text(encoding="utf-8")
        names_tests = all(test for _, _, test in bad_input_cases.module_cases(path))
        assert names_tests or re.search(r"parametrize\([^\n]*\bCASES\b", source), f"{path}: CASES drives no test"
    assert len(bad_input_cases.rows()) >= 118  # the 118 tried cases, at least


def test_the_readme_quotes_the_current_count():
    readme = (bad_input_cases.ROOT / "README.md").read_text(encoding="utf-8")
    assert f"per command ({len(bad_input_cases.rows())}, every one passing" in readme
