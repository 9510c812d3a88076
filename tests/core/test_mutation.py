"""The mutation-testing command's own parts (core/mutation.py): which mutants it makes, where the reviewed
equivalents live and how they are read, and that its runs use a database of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import mutation

SOURCE = '''
"""A docstring is never mutated."""
TABLE = {"a": 1, "b": 2}
KINDS = ("x", "y")


def rule(items, flag, *, limit=3):
    if not flag:
        raise ValueError("no flag")
    return any(i > limit for i in items) and len(items) == 2
'''


def test_it_mutates_operators_constants_calls_tables_and_statements():
    keys = {m.key for m in mutation.mutants_of(SOURCE)}
    for expected in (
        "rule | i > limit -> i >= limit",
        "rule | any((i > limit for i in items)) -> all((i > limit for i in items))",
        "rule | not flag -> flag",
        "rule | raise ValueError('no flag') -> pass",
        "<module> | 'a': 1 -> (entry removed)",
        "<module> | 'x' in ('x', 'y') -> (element removed)",
        "rule | len(items) == 2 -> len(items) != 2",
        "rule | 2 -> 3",
    ):
        assert expected in keys, expected
    assert not [k for k in keys if "docstring" in k]


def test_each_mutant_is_valid_python_that_differs_from_the_module():
    mutants = mutation.mutants_of(SOURCE)
    assert len(mutants) > 15
    assert [m.number for m in mutants] == list(range(1, len(mutants) + 1))
    for m in mutants:
        compile(m.source, "<mutant>", "exec")
        assert "docstring is never mutated" in m.source


def test_a_keyword_argument_of_a_call_can_be_dropped():
    keys = {m.key for m in mutation.mutants_of("q = Model.objects.filter(center=center, status__in=COUNTED)\n")}
    assert "<module> | Model.objects.filter(center=center, status__in=COUNTED) -> " \
           "Model.objects.filter(status__in=COUNTED)" in keys


def test_the_same_change_twice_in_a_scope_is_numbered():
    keys = [m.key for m in mutation.mutants_of("def f(a):\n    return a + 1, a + 1\n")]
    assert "f | a + 1 -> a - 1" in keys
    assert "f | a + 1 -> a - 1 #2" in keys


def test_equivalents_live_beside_the_modules_tests(tmp_path: Path):
    assert mutation.equivalents_path("accounts/npi.py") == Path("tests/accounts/mutation_equivalents/npi.txt")
    assert mutation.equivalents_path("accounts/credentials/eligibility.py") == Path(
        "tests/accounts/mutation_equivalents/credentials.eligibility.txt")
    listed = tmp_path / "npi.txt"
    listed.write_text("# comment\n\nf | a > 9 -> a >= 9 | a is even\n")
    assert mutation.read_equivalents(listed) == {"f | a > 9 -> a >= 9": "a is even"}
    listed.write_text("f | a > 9 -> a >= 9\n")  # no reason given
    with pytest.raises(ValueError, match="npi.txt:1"):
        mutation.read_equivalents(listed)
    assert mutation.read_equivalents(tmp_path / "missing.txt") == {}


def test_every_listed_equivalent_has_a_reason_and_parses():
    for path in Path(mutation.ROOT, "tests").glob("*/mutation_equivalents/*.txt"):
        assert all(reason for reason in mutation.read_equivalents(path).values()), path


def test_runs_use_a_database_of_their_own(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/readroom?sslmode=disable")
    assert mutation._database_url(2) == "postgres://postgres@127.0.0.1:5432/readroom_mutate2?sslmode=disable"
    monkeypatch.delenv("DATABASE_URL")
    assert mutation._database_url(1) is None


def test_the_covering_tests_come_from_the_mapping_else_from_importers():
    assert mutation.covering_tests("accounts/npi.py") == ["tests/accounts/test_npi.py"]
    assert "tests/core/test_mutation.py" in mutation.covering_tests("core/mutation.py")
