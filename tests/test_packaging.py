"""A non-editable install carries every module and data file the package reads: each package folder is listed in
pyproject.toml and each non-Python file in it (presets, cards, metric scripts) is matched by its package data."""

import fnmatch
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest brings tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _setuptools():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _package_folders():
    """Every importable package of the project, mapped to its folder in the repository."""
    setuptools = _setuptools()
    folders = {name: ROOT / name.replace(".", "/") for name in setuptools["packages"]}
    for name, folder in setuptools.get("package-dir", {}).items():
        folders[name] = ROOT / folder
    return folders


def test_every_package_folder_is_listed():
    listed = set(_package_folders().values())
    found = {init.parent for init in (ROOT / "modeling_lstm_trm").rglob("__init__.py")}
    found |= {ROOT / "tokenization", ROOT / "hub_cards"}
    assert found - listed == set(), "add these folders to [tool.setuptools] packages in pyproject.toml"


def test_every_data_file_is_package_data():
    patterns = _setuptools()["package-data"]
    folders = _package_folders()
    unlisted = []
    for path in sorted((ROOT / "modeling_lstm_trm").rglob("*")) + sorted((ROOT / "hub_cards").rglob("*")):
        if not path.is_file() or path.suffix in {".py", ".pyc"} or "__pycache__" in path.parts:
            continue
        # the file belongs to the deepest package folder that holds it
        holders = [(name, folder) for name, folder in folders.items() if path.is_relative_to(folder)]
        name, folder = max(holders, key=lambda holder: len(holder[1].parts))
        relative = path.relative_to(folder).as_posix()
        if not any(fnmatch.fnmatch(relative, pattern) for pattern in patterns.get(name, [])):
            unlisted.append(f"{name}: {relative}")
    assert unlisted == [], "add these files to [tool.setuptools.package-data] in pyproject.toml"
