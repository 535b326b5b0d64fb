"""The documentation agrees with the code and the repository: docs/design.md lists exactly the names of the
preset, method and channel registries, README.md is a front page of at most 150 lines whose test command
is where .ci/run reads it, and every relative link in README.md and docs/*.md names a file that exists."""
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def section(text: str, heading: str) -> str:
    """The body of the section titled ``heading`` (any level), up to the next heading of the same or a
    higher level; ValueError when there is no such heading."""
    match = re.search(rf"^(#+) {re.escape(heading)}\n", text, re.M)
    if match is None:
        raise ValueError(f"no heading {heading!r}")
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, match.end())
    return text[match.end():end.start() if end else len(text)]


def table_names(text: str) -> list[str]:
    """The `name`s in the first cell of the markdown table body rows of ``text`` (indented or not), in order;
    a header row (the one above a |---| line) is not a body row."""
    lines = text.splitlines() + [""]
    return [m.group(1) for line, below in zip(lines, lines[1:])
            if (m := re.match(r"\s*\| `([^`]+)` \|", line)) and not re.match(r"\s*\|[-:| ]+\|\s*$", below)]


def listed(heading: str) -> list[str]:
    return table_names(section(DESIGN.read_text(), heading))


def test_section_and_table_names_read_what_they_should():
    text = ("# A\n\n## B\n\n| `h` | n |\n|---|---:|\n| `x` | 1 |\n  | `y` | 2 |\n| z | 3 |\n\n### C\n\n| `w` | 4 |\n\n"
            "## D\n\n| `v` | 5 |\n")
    assert table_names(section(text, "B")) == ["x", "y", "w"]       # a subsection belongs to its section
    assert table_names(section(text, "C")) == ["w"]
    with pytest.raises(ValueError, match="'E'"):
        section(text, "E")


def test_design_lists_the_presets():
    from jscgc.presets import PRESETS

    names = listed("Presets")
    assert len(names) == len(set(names)) and set(names) == set(PRESETS), (names, sorted(PRESETS))


def test_design_lists_the_methods():
    from jscgc.methods import METHODS

    names = listed("Method and module registries")
    assert len(names) == len(set(names)) and set(names) == set(METHODS), (names, sorted(METHODS))


def test_design_lists_the_channels():
    from jscgc.channel_registry import CHANNELS as channels

    names = listed("Channels")
    assert len(names) == len(set(names)) and set(names) == set(channels), (names, sorted(channels))


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; at most 150"


def test_readme_test_command_is_where_ci_reads_it():
    """.ci/run takes the line two lines after the marker (awk getline; getline): the fenced test command."""
    lines = (ROOT / "README.md").read_text().splitlines()
    at = lines.index("<!-- ci:test -->")
    assert lines[at + 1] == "```bash"
    assert lines[at + 2].startswith("pip install ") and lines[at + 2].endswith("python -m pytest")
    assert lines[at + 3] == "```"


def links(text: str) -> list[str]:
    """Targets of markdown links and images ``[text](target)`` outside code spans and fenced blocks."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_links_reads_markdown_links_only():
    text = "[a](x.md) ![b](img/y.png) `[c](not.md)`\n```\n[d](nor.md)\n```\n[e](https://e.org) [f](#g)\n"
    assert links(text) == ["x.md", "img/y.png", "https://e.org", "#g"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_name_existing_files(page):
    missing = []
    for target in links(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue                                # a URL, or an anchor of the same page
        path = unquote(target.split("#", 1)[0])
        if not (page.parent / path).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)}: links to missing files {missing}"
