"""Rules of the code base that a reader relies on (docs/design.md, 'Design rules'), checked on the source itself:
short functions, one training loop, no stage switched from outside a system, citations that resolve."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jscgc", "theory", "experiments")
MAX_LINES = 60


def _sources(*folders):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_LINES]


def test_long_functions_are_found():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    probe = ROOT / "tests" / "_probe_long.py"
    probe.write_text(f"def long():\n{body}\n")
    try:
        assert _long_functions(probe) and not _long_functions(Path(__file__))
    finally:
        probe.unlink()


def test_no_function_over_60_lines():
    long = [f for path in _sources(*PACKAGES) for f in _long_functions(path)]
    assert not long, long


MAX_MODULE_LINES = 300


def test_no_module_over_300_lines():
    """A module holds one kind of thing (docs/design.md, 'Code layout'): at most 300 lines in the package,
    the theory and the runners."""
    big = [f"{p.relative_to(ROOT)} ({n} lines)" for p in _sources(*PACKAGES)
           for n in [len(p.read_text().splitlines())] if n > MAX_MODULE_LINES]
    assert not big, big


def test_imports_need_no_path_manipulation():
    """experiments/, bench/, paper_figures/ and tests import the installed packages; nothing edits sys.path."""
    found = [f"{p.relative_to(ROOT)}:{i}" for p in _sources(*PACKAGES, "bench", "paper_figures", "tests")
             if p != Path(__file__) for i, line in enumerate(p.read_text().splitlines(), 1) if "sys.path" in line]
    assert not found, found


def test_systems_are_used_through_their_protocol():
    """No code outside a system's own module asks what kind of system it holds (isinstance on a system class,
    getattr/hasattr on a system): the System protocol declares data, views and dial_options."""
    pattern = re.compile(r"isinstance\([^)]*(LatentSystem|JSCGC|MSEReconstruction|DiffJSCC|NECST)\b"
                         r"|(getattr|hasattr)\((system|inner)\b")
    found = [f"{p.relative_to(ROOT)}:{i}" for p in _sources(*PACKAGES, "bench", "paper_figures")
             if p not in RUNS_ON_OLDER_CODE
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found


#: bench/first_losses.py compares training losses with an older checkout of the package, whose systems predate
#: the protocol's declared attributes, so it asks what kind of system it holds
RUNS_ON_OLDER_CODE = {ROOT / "bench" / "first_losses.py"}


#: the one place besides the loop: an MI estimator fitting its own critic (part of estimating I(X;Ŷ), not
#: the training of a communication system; theory/ does not depend on jscgc)
ESTIMATOR_FITS = {ROOT / "theory" / "mi.py"}


def test_backward_and_optimiser_steps_only_in_the_training_loop():
    pattern = re.compile(r"\.backward\(|optimizer\.step\(|\bopt\.step\(|torch\.optim\.")
    allowed = {ROOT / "jscgc" / "train.py", *ESTIMATOR_FITS}
    found = [f"{p.relative_to(ROOT)}:{i}" for p in _sources(*PACKAGES, "bench") if p not in allowed
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found


def test_no_stage_is_switched_from_outside_a_system():
    found = [f"{p.relative_to(ROOT)}:{i}" for p in _sources(*PACKAGES, "bench")
             for i, line in enumerate(p.read_text().splitlines(), 1) if "set_stage" in line or "train_stages" in line]
    assert not found, found


@pytest.mark.parametrize("folder", [*PACKAGES, "bench", "tests", "paper_figures"])
def test_citations_name_files_of_the_repository(folder):
    """Comments cite docs/theory.md and docs/design.md (in the repository), never the team's private notes,
    and every cited heading exists."""
    headings = {doc: {h.strip("# ").strip() for h in (ROOT / "docs" / doc).read_text().splitlines()
                      if h.startswith("#")} for doc in ("theory.md", "design.md")}
    bad = []
    for p in _sources(folder):
        if p == Path(__file__):
            continue
        text = re.sub(r"\s*\n\s*#?\s*", " ", p.read_text())     # a citation may wrap across lines
        if re.search(r"\b(THEORY|DESIGN)\.md", text):
            bad.append(f"{p.relative_to(ROOT)} cites THEORY.md/DESIGN.md")
        for doc, heading in re.findall(r"docs/(theory\.md|design\.md), '([^']+)'", text):
            if heading not in headings[doc]:
                bad.append(f"{p.relative_to(ROOT)}: no heading {heading!r} in docs/{doc}")
    assert not bad, bad


def _kodak_readers(path: Path) -> list[str]:
    """Lines of ``path`` that call jscgc.imagedata.kodak (the Kodak loader) or name the kodak folder."""
    tree = ast.parse(path.read_text(), filename=str(path))
    calls = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", getattr(n.func, "attr", None)) == "kodak"]
    folders = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
               and re.fullmatch(r"(.*/)?kodak/?", n.value)]
    return [f"{path.relative_to(ROOT)}:{line}" for line in calls + folders]


def test_only_kodak_py_reads_kodak():
    """Kodak is the test set. Only experiments/kodak.py loads it (and imagedata, which defines
    the loader and names the folder); every choice is made on BSDS500 val."""
    allowed = {"experiments/kodak.py", "jscgc/imagedata.py"}
    readers = [r for path in _sources(*PACKAGES, "bench", "paper_figures")
               if str(path.relative_to(ROOT)) not in allowed for r in _kodak_readers(path)]
    assert not readers, readers
    assert _kodak_readers(ROOT / "experiments" / "kodak.py")          # the check does see a real reader
