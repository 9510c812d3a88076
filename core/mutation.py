"""Mutation testing of one module (issue 22): ``bin/dev mutate accounts/npi.py``.

Each mutant changes one thing (an operator, a clause, a constant, a table entry, a statement) and the
tests that cover the module run against it, stopping at the first failure. A mutant that no test
kills is a small bug the suite would let through. Reviewed equivalent mutants (same behaviour, no test
can tell) are listed once, with a reason, in ``tests/<app>/mutation_equivalents/<module>.txt`` and
left out of the score.

Our own ``ast`` operators rather than mutmut or cosmic-ray: mutmut 3 mutates only inside functions
(not module-level tables such as ``ROUTES`` or the de-identification allow-list) and cosmic-ray
mutates the files in place. The working tree is shared, so nothing here ever writes to it: the
project is copied to a temporary directory, the copy's module is rewritten, and pytest runs there
with its own test database (the database name gets ``_mutate<worker>``).
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The test files that cover each central module (fast and complete enough to judge a mutant).
# Other modules: the test files that import them (see ``covering_tests``).
TESTS_FOR: dict[str, list[str]] = {
    "accounts/npi.py": ["tests/accounts/test_npi.py"],
    "accounts/credentials/eligibility.py": ["tests/accounts/test_eligibility.py",
                                            "tests/accounts/test_eligibility_rules.py"],
    # The route check first: it alone reads ``ROUTES`` (a route left undeclared, a name that is no route).
    "accounts/policy.py": ["tests/test_route_policy.py", "tests/accounts/test_policy.py",
                           "tests/accounts/test_policy_rules.py"],
    "studies/deid.py": ["tests/studies/test_deid.py", "tests/studies/test_deid_allow_list.py"],
    "marketplace/services/matching.py": ["tests/marketplace/test_matching_rules.py",
                                         "tests/marketplace/test_matching.py",
                                         "tests/marketplace/test_matching_rows.py",
                                         "tests/marketplace/test_matching_hot_path.py",
                                         "tests/marketplace/test_follow_the_sun.py",
                                         "tests/marketplace/test_ranking_quality.py",
                                         "tests/marketplace/test_matching_pool.py"],
    # The hot path's snapshot: its equality to the full match first (quick), then its invalidation (commits).
    "marketplace/services/matching_pool.py": ["tests/marketplace/test_matching_rows.py",
                                              "tests/marketplace/test_matching_hot_path.py",
                                              "tests/marketplace/test_matching_pool.py"],
}

COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "var", "node_modules", "__pycache__", ".ruff_cache",
                                     ".pytest_cache", ".hypothesis", "*.pyc")

_COMPARE_SWAPS = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
                  ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_BINOP_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
                ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
                ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.BitXor: ast.BitAnd}
_CALL_SWAPS = {"any": "all", "all": "any", "min": "max", "max": "min"}
_SKIPPED_FIELDS = {"annotation", "returns", "decorator_list", "type_comment"}


@dataclass(frozen=True)
class Mutant:
    number: int
    line: int
    scope: str  # the enclosing function or class ("<module>" at the top level)
    original: str
    mutated: str
    occurrence: int  # 1 for the first mutant with the same scope and change, 2 for the next...
    source: str

    @property
    def key(self) -> str:
        """Stable across edits elsewhere in the module (no line number): what the equivalents file lists."""
        suffix = f" #{self.occurrence}" if self.occurrence > 1 else ""
        return f"{self.scope} | {self.original} -> {self.mutated}{suffix}"


def _short(node: ast.AST | str, limit: int = 90) -> str:
    text = node if isinstance(node, str) else ast.unparse(node)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            found.add(id(body[0]))
    return found


def _sites(tree: ast.Module):
    """(node, scope) for every node that may be mutated, in a fixed order; annotations, imports,
    docstrings and f-string text are left alone."""
    docstrings = _docstring_nodes(tree)

    def visit(node: ast.AST, scope: str):
        if isinstance(node, ast.Import | ast.ImportFrom) or id(node) in docstrings:
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            scope = node.name if scope == "<module>" else f"{scope}.{node.name}"
        yield node, scope
        if isinstance(node, ast.JoinedStr):
            return
        for name, value in ast.iter_fields(node):
            if name in _SKIPPED_FIELDS:
                continue
            children = value if isinstance(value, list) else [value]
            for child in children:
                if isinstance(child, ast.AST):
                    yield from visit(child, scope)

    yield from visit(tree, "<module>")


def _replacements(node: ast.AST) -> list[tuple[ast.AST | None, str, str]]:
    """(new node or None to delete from its list, original text, mutated text) for one node."""
    out: list[tuple[ast.AST | None, str, str]] = []
    if isinstance(node, ast.Compare):
        for index, op in enumerate(node.ops):
            swap = _COMPARE_SWAPS.get(type(op))
            if swap:
                new = copy.deepcopy(node)
                new.ops[index] = swap()
                out.append((new, _short(node), _short(new)))
    elif isinstance(node, ast.BoolOp):
        new = ast.BoolOp(op=ast.Or() if isinstance(node.op, ast.And) else ast.And(), values=node.values)
        out.append((new, _short(node), _short(new)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        out.append((node.operand, _short(node), _short(node.operand)))
    elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BINOP_SWAPS:
        new = copy.copy(node)
        new.op = _BINOP_SWAPS[type(node.op)]()
        out.append((new, _short(node), _short(new)))
    elif isinstance(node, ast.Constant) and not isinstance(node.value, bytes):
        value = node.value
        if isinstance(value, bool):
            out.append((ast.Constant(not value), repr(value), repr(not value)))
        elif isinstance(value, int | float):
            out.append((ast.Constant(value + 1), repr(value), repr(value + 1)))
        elif isinstance(value, str):
            out.append((ast.Constant(f"XX{value}XX"), _short(repr(value)), _short(repr(f"XX{value}XX"))))
    elif isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id in _CALL_SWAPS:
            new = copy.copy(node)
            new.func = ast.Name(_CALL_SWAPS[node.func.id], ast.Load())
            out.append((new, _short(node), _short(new)))
        for index, keyword in enumerate(node.keywords):
            if keyword.arg is None:
                continue
            new = copy.copy(node)
            new.keywords = node.keywords[:index] + node.keywords[index + 1:]
            out.append((new, _short(node), _short(new)))
    elif isinstance(node, ast.Dict):
        for index, key in enumerate(node.keys):
            if key is None:
                continue
            new = ast.Dict(keys=node.keys[:index] + node.keys[index + 1:],
                           values=node.values[:index] + node.values[index + 1:])
            out.append((new, f"{_short(key, 40)}: {_short(node.values[index], 40)}", "(entry removed)"))
    elif isinstance(node, ast.Set | ast.List | ast.Tuple) and isinstance(getattr(node, "ctx", ast.Load()), ast.Load) \
            and len(node.elts) >= 2 and all(isinstance(e, ast.Constant | ast.Name | ast.Attribute) for e in node.elts):
        for index, element in enumerate(node.elts):
            new = copy.copy(node)
            new.elts = node.elts[:index] + node.elts[index + 1:]
            out.append((new, f"{_short(element, 60)} in {_short(node, 30)}", "(element removed)"))
    elif isinstance(node, ast.Expr | ast.Continue | ast.Break | ast.Raise):
        out.append((ast.Pass(), _short(node), "pass"))
    elif isinstance(node, ast.Return) and node.value is not None \
            and not (isinstance(node.value, ast.Constant) and node.value.value is None):
        out.append((ast.Return(ast.Constant(None)), _short(node), "return None"))
    return out


def _replace(tree: ast.AST, index: int, new: ast.AST | None) -> None:
    """Replace the index-th site (in ``_sites`` order) of ``tree`` by ``new``."""
    target = next(node for position, (node, _) in enumerate(_sites(tree)) if position == index)
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is target:
                setattr(parent, name, new)
                return
            if isinstance(value, list) and any(item is target for item in value):
                position = next(i for i, item in enumerate(value) if item is target)
                value[position] = new
                return
    raise LookupError("mutation site not found")


def mutants_of(source: str) -> list[Mutant]:
    """Every mutant of a module's source, numbered from 1 in source order."""
    tree = ast.parse(source)
    result: list[Mutant] = []
    seen: Counter[str] = Counter()
    for index, (node, scope) in enumerate(_sites(tree)):
        for new, original, mutated in _replacements(node):
            if new is None:
                continue
            changed = copy.deepcopy(tree)
            _replace(changed, index, new)
            try:
                mutated_source = ast.unparse(ast.fix_missing_locations(changed))
                compile(mutated_source, "<mutant>", "exec")
            except (SyntaxError, ValueError, TypeError):
                continue  # e.g. a removed statement leaving an empty body: not a mutant worth running
            seen[f"{scope}|{original}|{mutated}"] += 1
            result.append(Mutant(number=len(result) + 1, line=getattr(node, "lineno", 0), scope=scope,
                                 original=original, mutated=mutated,
                                 occurrence=seen[f"{scope}|{original}|{mutated}"], source=mutated_source))
    return result


# --- equivalents -----------------------------------------------------------------------------------

def equivalents_path(module: str) -> Path:
    """``accounts/credentials/eligibility.py`` → ``tests/accounts/mutation_equivalents/credentials.eligibility.txt``."""
    parts = Path(module).with_suffix("").parts
    return Path("tests", parts[0], "mutation_equivalents", ".".join(parts[1:]) + ".txt")


def read_equivalents(path: Path) -> dict[str, str]:
    """key → reason. Each line: ``<scope> | <original> -> <mutated>[ #n] | <reason>``; # starts a comment."""
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, reason = line.rpartition(" | ")
        if not separator or " | " not in key or " -> " not in key or not reason.strip():
            raise ValueError(f"{path}:{number}: expected '<scope> | <original> -> <mutated> | <reason>'")
        found[key.strip()] = reason.strip()
    return found


# --- running -----------------------------------------------------------------------------------------

def covering_tests(module: str, root: Path = ROOT) -> list[str]:
    """The test files to run: the mapping above, else every test file importing the module."""
    if module in TESTS_FOR:
        return [t for t in TESTS_FOR[module] if (root / t).exists()]
    dotted = ".".join(Path(module).with_suffix("").parts)
    package, _, name = dotted.rpartition(".")
    pattern = re.compile(rf"\b{re.escape(dotted)}\b|from {re.escape(package)} import [^\n]*\b{re.escape(name)}\b")
    return sorted(str(p.relative_to(root)) for p in (root / "tests").rglob("test_*.py")
                  if pattern.search(p.read_text(errors="replace")))


def _database_url(worker: int) -> str | None:
    url = os.environ.get("DATABASE_URL")
    if not url or url.startswith("sqlite"):
        return url  # SQLite tests use an in-memory database: nothing shared
    base, _, query = url.partition("?")
    base = base.rstrip("/")
    return f"{base}_mutate{worker}" + (f"?{query}" if query else "")


@dataclass
class Worker:
    number: int
    tree: Path
    module: str
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        """End this worker's pytest run (its own process group) if one is running."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)

    def run(self, source: str, tests: list[str], *, timeout: float | None, create_db: bool = False
            ) -> tuple[str, float]:
        """Write ``source`` as the module in this worker's copy and run the tests: (outcome, seconds)."""
        (self.tree / self.module).write_text(source)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "READROOM_VAR_DIR": str(self.tree / "var")}
        url = _database_url(self.number)
        if url:
            env["DATABASE_URL"] = url
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                   "--create-db" if create_db else "--reuse-db", "-o", "addopts=", *tests]
        started = time.monotonic()
        process = self.process = subprocess.Popen(command, cwd=self.tree, env=env, stdout=subprocess.PIPE,  # noqa: S603
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return "timeout", time.monotonic() - started
        elapsed = time.monotonic() - started
        if process.returncode == 0:
            return "survived", elapsed
        if process.returncode in (1, 2):  # a failing test, or the mutant broke the import (collection error)
            return "killed", elapsed
        return f"error (pytest exit {process.returncode}):\n{output.decode(errors='replace')[-3000:]}", elapsed


def _make_workers(module: str, count: int, scratch: Path) -> list[Worker]:
    workers = []
    for number in range(1, count + 1):
        tree = scratch / f"tree{number}"
        shutil.copytree(ROOT, tree, ignore=COPY_IGNORE)
        workers.append(Worker(number=number, tree=tree, module=module))
    return workers


def _check_imports_copy(worker: Worker) -> None:
    """The copy's module must be the one the tests import (never the shared working tree's)."""
    dotted = ".".join(Path(worker.module).with_suffix("").parts)
    probe = subprocess.run(  # noqa: S603
        [sys.executable, "-c", f"import importlib.util as u; print(u.find_spec({dotted!r}).origin)"],
        cwd=worker.tree, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    origin = Path(probe.stdout.strip()).resolve()
    if not origin.is_relative_to(worker.tree.resolve()):
        raise SystemExit(f"mutate: {dotted} would be imported from {origin}, not from the copy: refusing to run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/dev mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="path of the module from the project root, e.g. accounts/npi.py")
    parser.add_argument("--tests", nargs="+", help="test files to run (default: the mapping, else importers)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once, each in its own copy")
    parser.add_argument("--list", action="store_true", help="list the mutants and their keys, run nothing")
    parser.add_argument("--only", type=int, nargs="+", help="run only these mutant numbers")
    parser.add_argument("--every", type=int, default=1, help="a sample: run every n-th mutant only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies (path printed)")
    args = parser.parse_args(argv)

    module = Path(args.module).as_posix().removeprefix("./")
    path = ROOT / module
    if not path.is_file() or path.suffix != ".py":
        parser.error(f"module: {module} is not a Python file under {ROOT}")
    mutants = mutants_of(path.read_text())
    equivalents_file = equivalents_path(module)
    try:
        equivalents = read_equivalents(ROOT / equivalents_file)
    except ValueError as error:
        parser.error(str(error))
    if args.list:
        for m in mutants:
            mark = "  (equivalent)" if m.key in equivalents else ""
            print(f"#{m.number} {module}:{m.line}  {m.key}{mark}")
        return 0
    tests = args.tests or covering_tests(module)
    if not tests:
        parser.error(f"module: no test file covers {module} (pass --tests)")
    every = max(1, args.every)
    selected = [m for m in mutants if (not args.only or m.number in args.only) and (m.number - 1) % every == 0]
    to_run = [m for m in selected if m.key not in equivalents]
    print(f"mutate: {module}: {len(mutants)} mutants, {len(selected)} selected, "
          f"{len(selected) - len(to_run)} of them reviewed as equivalent "
          f"({equivalents_file}); tests: {' '.join(tests)}", flush=True)

    scratch = Path(tempfile.mkdtemp(prefix="readroom-mutate-"))
    try:
        workers = _make_workers(module, max(1, args.jobs), scratch)
        original = ast.unparse(ast.parse(path.read_text()))  # the unmutated module, round-tripped like mutants
        for worker in workers:
            _check_imports_copy(worker)
            outcome, seconds = worker.run(original, tests, timeout=None, create_db=True)
            if outcome != "survived":
                print(f"mutate: the tests fail on the unmutated module, fix them first ({outcome})")
                return 2
        timeout = max(30.0, 4 * seconds + 15)
        print(f"mutate: baseline passes in {seconds:.1f} s; a mutant running past {timeout:.0f} s counts as killed",
              flush=True)
        survivors, errors, killed, judged = [], [], 0, [0]
        lock = threading.Lock()
        free = list(workers)

        def judge(mutant: Mutant) -> None:
            nonlocal killed
            with lock:
                worker = free.pop()
            try:
                outcome, _ = worker.run(mutant.source, tests, timeout=timeout)
            finally:
                with lock:
                    free.append(worker)
            with lock:
                judged[0] += 1
                if judged[0] % 10 == 0:
                    print(f"mutate: {judged[0]} of {len(to_run)} judged", flush=True)
                if outcome in ("killed", "timeout"):
                    killed += 1
                elif outcome == "survived":
                    survivors.append(mutant)
                    print(f"SURVIVED {module}:{mutant.line}  #{mutant.number}  {mutant.key}", flush=True)
                else:
                    errors.append(mutant)
                    print(f"ERROR    {module}:{mutant.line}  #{mutant.number}  {mutant.key}\n{outcome}", flush=True)

        pool = ThreadPoolExecutor(max_workers=len(workers))
        try:
            list(pool.map(judge, to_run))
        except KeyboardInterrupt:  # stop now: no further mutant, and the running pytest processes go too
            pool.shutdown(wait=False, cancel_futures=True)
            for worker in workers:
                worker.stop()
            print("mutate: interrupted")
            return 130
        pool.shutdown()
        stale = sorted(set(equivalents) - {m.key for m in mutants})
        for key in stale:
            print(f"mutate: {equivalents_file} lists a mutant that no longer exists: {key}")
        total = len(to_run) - len(errors)
        score = 100.0 * killed / total if total else 100.0
        if errors:
            print(f"mutate: {len(errors)} mutants could not be judged (pytest errors above), left out")
        print(f"killed {killed} of {total} (score {score:.1f} %)")
        return 0
    finally:
        if args.keep:
            print(f"mutate: copies kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
