"""Tests follow the package's layout: every module of aejax has its own test file, named after
it (tests/test_<module>.py, flat, since no two modules share a name). The shipped configs
(aejax/configs/*.py) are tested together by test_configs.py and test_zoo.py."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE, TESTS = ROOT / "aejax", ROOT / "tests"


def modules() -> list[Path]:
    """aejax's modules: every .py file but the packages' __init__.py and the shipped configs."""
    found = [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "__init__.py" and path.parent != PACKAGE / "configs"
    ]
    assert len(found) > 30, found  # the walk found the package
    return found


def has_tests(path: Path) -> bool:
    """Whether the file defines at least one test function."""
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.FunctionDef) and node.name.startswith("test_") for node in tree.body
    )


def test_module_names_are_unique_so_test_files_can_be_flat():
    names = [path.stem for path in modules()]
    twice = sorted({name for name in names if names.count(name) > 1})
    assert not twice, f"modules sharing a name: {twice}"


def test_every_module_has_a_test_file_named_after_it():
    missing = []
    for module in modules():
        test_file = TESTS / f"test_{module.stem}.py"
        if not (test_file.exists() and has_tests(test_file)):
            missing.append(f"{module.relative_to(ROOT)}: {test_file.relative_to(ROOT)}")
    assert not missing, "modules without tests of their own:\n" + "\n".join(missing)


def test_the_shipped_configs_are_tested_together():
    for name in ("test_configs.py", "test_zoo.py"):
        assert has_tests(TESTS / name), name
    assert len(list((PACKAGE / "configs").glob("*.py"))) > 30


def test_no_function_is_longer_than_60_lines():
    """A function a reader takes in at once: anything longer is split into named steps."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, "\n".join(long)
