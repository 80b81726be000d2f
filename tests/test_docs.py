"""The docs are executable: README.md and docs/*.md are checked three ways, so they cannot rot.

1. Every ```python block runs. The blocks of one file run in order in one namespace (a later
   block may use an earlier block's names), in a temporary working directory. A block whose
   info string says it is not tinynmt code is skipped; the one marker is a title naming
   PyTorch, as docs/from-pytorch.md fences the tutorial's excerpts:
       ```python title="PyTorch: the tutorial's train()"
2. Every line of a ```bash (or sh, console, text) block that runs
   `python -m tinynmt.<program> ...` (also after `mpiexec ...` or a pipe) has its flags
   parsed by that program's own parser. Nothing runs and no path is opened, so RUN-style
   placeholders are fine; a renamed flag fails.
3. Every `path/file.py:name` (or `path/file.py:Class.method`) exists: the file, and a def or
   class of that name at any depth, methods inside their class (read with `ast`); every
   plain repository path such as `tinynmt/optim/__init__.py` exists (a `*` in it must match a file).
"""
import ast
import re
import shlex
from pathlib import Path
from unittest import mock

import pytest

from tinynmt.programs import average, evaluate, export, prepare, train, translate

from tinynmt.programs import data as data_main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"bash", "sh", "shell", "console", "text"}


def fences(path):
    """The fenced blocks of a markdown file -> [(language, info string, first line, code)]."""
    blocks, current = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if current is None and line.startswith("```"):
            info = line[3:].strip()
            current = (info.split(" ")[0], info, number + 1, [])
        elif current is not None and line.startswith("```"):
            blocks.append(current[:3] + ("\n".join(current[3]),))
            current = None
        elif current is not None:
            current[3].append(line)
    return blocks


def name_of(path):
    return str(path.relative_to(ROOT))


# ----- 1. python blocks
def is_tinynmt_python(language, info):
    return language == "python" and 'title="PyTorch' not in info


@pytest.mark.parametrize("doc", [d for d in DOCS if any(is_tinynmt_python(*b[:2]) for b in fences(d))],
                         ids=name_of)
def test_python_blocks_run(doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__doc_test__"}
    for language, info, first_line, code in fences(doc):
        if is_tinynmt_python(language, info):
            # padded so that a traceback's line numbers are the markdown file's
            exec(compile("\n" * (first_line - 1) + code, str(doc), "exec"), namespace)


# ----- 2. command lines
PARSERS = {"train": train.build_parser, "translate": translate.build_parser,
           "evaluate": evaluate.build_parser, "data": data_main.build_parser,
           "export": export.build_parser, "prepare": prepare.build_parser, "average": None}


def parse_flags(program, words):
    """Parse `words` as `python -m tinynmt.<program>` would, without running it (exit 2 if bad)."""
    if program == "average":        # average builds its parser inside main(): run main, not its work
        with mock.patch.object(average, "average_checkpoints"):
            average.main(words)
    else:
        PARSERS[program]().parse_args(words)


COMMAND = re.compile(r"\bpython3? -m tinynmt\.([\w.]+)(.*)")


def tinynmt_commands(code):
    """(line offset, line, program, words) of each `python -m tinynmt.<program> ...` in shell code."""
    for offset, line in enumerate(code.splitlines()):
        match = COMMAND.search(line)
        if match:
            words = shlex.split(match.group(2), comments=True)
            end = next((i for i, word in enumerate(words) if word[0] in "|;&<>"), len(words))
            yield offset, line, match.group(1), words[:end]      # up to a pipe or redirection


COMMANDS = [(f"{name_of(doc)}:{first + offset}", line, program, words)
            for doc in DOCS for language, info, first, code in fences(doc) if language in SHELL_FENCES
            for offset, line, program, words in tinynmt_commands(code)]


@pytest.mark.parametrize("where, line, program, words", COMMANDS,
                         ids=[f"{c[0]}:{c[2]}" for c in COMMANDS])
def test_command_flags_parse(where, line, program, words, capsys):
    assert program in PARSERS, f"{where}: there is no program tinynmt.{program}: {line}"
    try:
        parse_flags(program, words)
    except SystemExit as exit:
        if exit.code:
            pytest.fail(f"{where}: {capsys.readouterr().err.strip()}: {line}")


# ----- 3. references to code
REFERENCE = re.compile(r"\b((?:tinynmt|tests|benchmarks)/[\w/*]+\.py)(?::([A-Za-z_][\w.]*))?")


def defines(tree, dotted):
    """Whether the module `tree` defines `dotted` (a def or class; A.b: b inside class A)."""
    scopes = [tree]
    for part in dotted.split("."):
        scopes = [node for scope in scopes for node in ast.walk(scope) if node is not scope
                  and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.name == part]
    return bool(scopes)


def code_references(doc):
    """(path, name or "") of every code reference in a doc."""
    for path, name in REFERENCE.findall(doc.read_text(encoding="utf-8")):
        yield path, name.rstrip(".")            # a sentence may end right after the name


REFERENCES = sorted({(name_of(doc), path, name) for doc in DOCS for path, name in code_references(doc)})


@pytest.mark.parametrize("doc, path, name", REFERENCES,
                         ids=[f"{doc}->{path}:{name}".rstrip(":") for doc, path, name in REFERENCES])
def test_code_reference_exists(doc, path, name):
    files = sorted(ROOT.glob(path))
    assert files, f"{doc} names {path}, which does not exist"
    if name:
        tree = ast.parse(files[0].read_text(encoding="utf-8"))
        assert defines(tree, name), f"{doc} names {path}:{name}, which {path} does not define"
