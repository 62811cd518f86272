"""The documentation names only commands and options the program has, and names all of them.

Conventions (stated at the top of docs/commands.md):

- docs/commands.md has one section per command, headed ``### wheelstrap COMMAND`` (a
  subcommand of a group: ``### wheelstrap GROUP COMMAND``; the program itself:
  ``### wheelstrap``).  An option is documented by writing it in backticks in its
  command's section, at the start of the span: ```--name```, ```-x/--name VALUE```.
- Every ``wheelstrap ...`` command line in a fenced code block of README.md or docs/**.md,
  and every inline code span that starts with ``wheelstrap ``, is checked word by word:
  its commands must exist and its options must belong to the command they follow.

Offline and fast: only the click command tree is read, nothing is run.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
COMMANDS_MD = ROOT / "docs" / "commands.md"

Path_ = tuple[str, ...]  # a command's path below the program: () is `wheelstrap` itself

HEADING = re.compile(r"^#{1,6}\s")
COMMAND_HEADING = re.compile(r"^###\s+wheelstrap((?:\s+[a-z][a-z0-9-]*)*)\s*$")
SPAN = re.compile(r"`([^`\n]+)`")
OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
PROGRAM = re.compile(r"(?:^|(?<=[\s/]))wheelstrap[ \t]+(\S.*)$")
FENCE = re.compile(r"^\s*(```|~~~)")
SEPARATORS = {"&&", "||", "|", ";", ">", ">>", "2>&1", "\\"}


@dataclass(frozen=True)
class Tree:
    """The program's commands, each with the options it accepts and must document."""

    options: dict[Path_, frozenset[str]]  # every option name, hidden ones included
    public: dict[Path_, frozenset[str]]  # the ones docs/commands.md must name
    groups: frozenset[Path_]

    def subcommands(self, path: Path_) -> set[str]:
        return {p[-1] for p in self.options if len(p) == len(path) + 1 and p[:-1] == path}


def cli_group() -> click.Group:
    """The program's click group, before and after the CLI moved into ``wheelstrap.ui``."""
    try:
        module = importlib.import_module("wheelstrap.ui.cli")
    except ModuleNotFoundError as exc:
        if exc.name not in ("wheelstrap.ui", "wheelstrap.ui.cli"):
            raise  # the module is there but something it imports is not: a real failure
        module = importlib.import_module("wheelstrap.cli")
    group = module.main
    assert isinstance(group, click.Group)
    return group


def command_tree(group: click.Group) -> Tree:
    options: dict[Path_, frozenset[str]] = {}
    public: dict[Path_, frozenset[str]] = {}
    groups: set[Path_] = set()

    def walk(command: click.Command, path: Path_) -> None:
        ctx = click.Context(command, info_name=path[-1] if path else "wheelstrap")
        names: set[str] = set()
        shown: set[str] = set()
        help_names = set(command.get_help_option_names(ctx))
        for param in command.get_params(ctx):
            if isinstance(param, click.Option):
                both = {*param.opts, *param.secondary_opts}
                names |= both
                if not param.hidden and (path == () or not both <= help_names):
                    shown |= both  # --help is documented once, for the program
        options[path], public[path] = frozenset(names), frozenset(shown)
        if isinstance(command, click.Group):
            groups.add(path)
            for name, sub in command.commands.items():
                if not sub.hidden:
                    walk(sub, (*path, name))

    walk(group, ())
    return Tree(options, public, frozenset(groups))


def show(path: Path_) -> str:
    return " ".join(("wheelstrap", *path))


def span_options(span: str) -> list[str]:
    """The options a backticked span documents: only a span that starts with one."""
    return OPTION.findall(span) if span.startswith("-") else []


def prose_lines(text: str) -> Iterator[tuple[int, str, bool]]:
    """(line number, line, inside a fenced code block) for every line of a document."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        yield number, line, fenced


def commands_md_problems(text: str, tree: Tree, where: str = "docs/commands.md") -> list[str]:
    """Both directions: what the reference names exists; what exists, it names."""
    problems: list[str] = []
    documented: dict[Path_, set[str]] = {}
    section: Path_ | None = None
    for number, line, fenced in prose_lines(text):
        if not fenced and HEADING.match(line):
            heading = COMMAND_HEADING.match(line)
            section = tuple(heading.group(1).split()) if heading else None
            if section is not None:
                if section not in tree.options:
                    problems.append(f"{where}:{number}: `{show(section)}` is not a command")
                    section = None
                else:
                    documented.setdefault(section, set())
            continue
        if section is None or fenced:
            continue
        for span in SPAN.findall(line):
            for option in span_options(span):
                if option in tree.options[section]:
                    documented[section].add(option)
                else:
                    problems.append(f"{where}:{number}: `{option}` is not an option of "
                                    f"`{show(section)}`")
    for path in sorted(tree.options):
        if path not in documented:
            problems.append(f"{where}: the command `{show(path)}` is not documented "
                            f"(no `### {show(path)}` section)")
            continue
        for option in sorted(tree.public[path] - documented[path]):
            problems.append(f"{where}: the option `{option}` of `{show(path)}` is not "
                            "documented in its section")
    return problems


def command_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, words after `wheelstrap`) of every command line a document shows."""
    for number, line, fenced in prose_lines(text):
        if fenced:
            candidates = [line]
        else:
            candidates = [s for s in SPAN.findall(line) if s.startswith("wheelstrap ")]
        for candidate in candidates:
            # several commands may share a line (`a && b`): check each `wheelstrap` in it
            for start in [m.start() for m in re.finditer(r"wheelstrap", candidate)]:
                found = PROGRAM.match(candidate[start:]) if (
                    start == 0 or candidate[start - 1] in " \t/") else None
                if found:
                    yield number, found.group(1)


def placeholder(word: str) -> bool:
    return word.isupper() or "..." in word or word.startswith(("[", "<", "$"))


def command_line_problems(words: str, tree: Tree, where: str) -> list[str]:
    """Walk one command line down the command tree, checking commands and options."""
    path: Path_ = ()
    for raw in words.split():
        if raw in SEPARATORS or raw.startswith("#"):
            break
        word = raw.strip("\"'()[],`")
        if not word:
            continue
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            if not name.startswith("--") and len(name) > 2:
                name = name[:2]  # -j4: a short option with its value attached
            if OPTION.fullmatch(name) and name not in tree.options[path]:
                return [f"{where}: `{name}` is not an option of `{show(path)}`"]
            continue
        if path in tree.groups:
            if word in tree.subcommands(path):
                path = (*path, word)
                continue
            if placeholder(raw):
                break
            return [f"{where}: `{word}` is not a command of `{show(path)}`"]
        # below a plain command, other words are its arguments and option values
    return []


def documents_problems(files: list[Path], tree: Tree) -> tuple[list[str], int]:
    problems: list[str] = []
    checked = 0
    for file in files:
        name = file.relative_to(ROOT).as_posix()
        for number, words in command_lines(file.read_text("utf-8")):
            checked += 1
            problems += command_line_problems(words, tree, f"{name}:{number}")
    return problems, checked


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


# -- the real documents -------------------------------------------------------------------

def test_commands_md_documents_exactly_the_real_commands_and_options() -> None:
    tree = command_tree(cli_group())
    assert ("bootstrap",) in tree.options  # the walk found the commands at all
    problems = commands_md_problems(COMMANDS_MD.read_text("utf-8"), tree)
    assert problems == [], "\n".join(problems)


def test_command_lines_in_readme_and_docs_use_real_commands_and_options() -> None:
    tree = command_tree(cli_group())
    problems, checked = documents_problems(doc_files(), tree)
    assert problems == [], "\n".join(problems)
    _, readme_checked = documents_problems([ROOT / "README.md"], tree)
    assert readme_checked >= 1  # the README's own bootstrap command was seen and checked
    assert checked > readme_checked


# -- the checks can fail --------------------------------------------------------------------

SAMPLE_REFERENCE = """\
### wheelstrap bootstrap

| `--no-such-option` | made up |
| `-o/--output OUT` | real |

### wheelstrap frobnicate
"""


def test_a_made_up_option_or_command_in_the_reference_is_reported() -> None:
    tree = command_tree(cli_group())
    problems = commands_md_problems(SAMPLE_REFERENCE, tree, "sample")
    assert "sample:3: `--no-such-option` is not an option of `wheelstrap bootstrap`" in problems
    assert "sample:6: `wheelstrap frobnicate` is not a command" in problems
    # and what the sample leaves out is reported too
    assert any("`wheelstrap serve` is not documented" in p for p in problems)
    assert any("`--jobs` of `wheelstrap bootstrap` is not documented" in p for p in problems)
    assert not any("`--output`" in p for p in problems)


def test_a_made_up_option_or_command_in_a_command_line_is_reported() -> None:
    tree = command_tree(cli_group())
    text = ("Run `wheelstrap bootstrap hatchling --no-such-option`.\n\n```\n"
            "python3 -m venv .venv && .venv/bin/wheelstrap frobnicate out\n"
            "wheelstrap seeds add STORE x.whl --origin here --jobs 2\n"
            "wheelstrap --debug bootstrap hatchling -j4 -o out  # fine\n```\n")
    found = list(command_lines(text))
    assert [n for n, _ in found] == [1, 4, 5, 6]
    problems = [p for n, w in found for p in command_line_problems(w, tree, f"sample:{n}")]
    assert problems == [
        "sample:1: `--no-such-option` is not an option of `wheelstrap bootstrap`",
        "sample:4: `frobnicate` is not a command of `wheelstrap`",
        "sample:5: `--jobs` is not an option of `wheelstrap seeds add`",
    ]
