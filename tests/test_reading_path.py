"""docs/reading-path.md: every row names a function that exists, with its true line numbers; the
path stays within its budget and holds no feature code."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reading-path.md"
BUDGET = 800                       # issue 21: one step readable in at most 800 lines
ROW = re.compile(r"^\| \d+ \| `(tinynmt/[^`:]+):([\w.]+)` \| (\d+)-(\d+) \|", re.M)
# features that plug in from outside the step; none of them may appear on the path
FEATURE_WORDS = ("comm", "rank", "rdrop", "cache", "beam", "ensemble", "hook", "explorer")
FEATURE_PLACES = ("tinynmt/fast/", "tinynmt/decoding/", "tinynmt/interop/", "tinynmt/programs/",
                  "tinynmt/training/distributed.py", "tinynmt/training/rdrop.py")


def rows():
    return [(path, qual, int(a), int(b)) for path, qual, a, b in ROW.findall(DOC.read_text())]


def span(path, qual):
    """(first line, last line) of a function or class, decorators included, as ast sees it."""
    node = ast.parse((ROOT / path).read_text())
    for part in qual.split("."):
        found = [n for n in ast.iter_child_nodes(node)
                 if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part]
        if not found:
            raise AssertionError(f"{path}: no {qual}")
        node = found[0]
    return min([node.lineno] + [d.lineno for d in node.decorator_list]), node.end_lineno


def lines_of(path, a, b):
    return (ROOT / path).read_text().splitlines()[a - 1:b]


def test_the_table_has_rows():
    assert len(rows()) >= 40


@pytest.mark.parametrize("path, qual, a, b", rows(), ids=[f"{p}:{q}" for p, q, _, _ in rows()])
def test_each_row_names_a_function_at_its_true_lines(path, qual, a, b):
    assert span(path, qual) == (a, b), f"{path}:{qual} moved: update docs/reading-path.md"


def test_the_stated_totals_are_the_tables_and_within_budget():
    text = DOC.read_text()
    total = sum(b - a + 1 for _, _, a, b in rows())
    fast = sum("fast" in line for path, _, a, b in rows() for line in lines_of(path, a, b))
    assert f"**{total} lines**" in text
    assert f"{fast} of the\nlines name the speed corner" in text
    assert total <= BUDGET
    for other in ("README.md", "docs/how-it-works.md"):     # they quote the same figure
        assert f"{total} lines" in (ROOT / other).read_text(), other


def test_no_row_is_a_feature_or_a_trick():
    for path, qual, a, b in rows():
        assert not path.startswith(FEATURE_PLACES), f"{path}:{qual} is not the plain core"
        code = "\n".join(lines_of(path, a, b)).lower()
        words = [w for w in FEATURE_WORDS if re.search(rf"\b{w}(?!-)", code)]   # not "cache-sized"
        assert not words, f"{path}:{qual} mentions {words}"
