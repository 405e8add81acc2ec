"""Finding the repository root and the data folder."""

from pathlib import Path

from ims_cli.paths import data_dir, find_repo_root


def make_workspace(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["pkg"]\n')
    nested = root / "pkg" / "src"
    nested.mkdir(parents=True)
    (root / "pkg" / "pyproject.toml").write_text('[project]\nname = "pkg"\n')
    return nested


def test_root_is_the_workspace_not_the_nearest_pyproject(tmp_path: Path) -> None:
    nested = make_workspace(tmp_path / "repo")

    assert find_repo_root(nested) == (tmp_path / "repo").resolve()
    assert data_dir({}, nested) == (tmp_path / "repo").resolve() / ".ims"


def test_without_a_workspace_the_current_directory_is_used(tmp_path: Path) -> None:
    assert find_repo_root(tmp_path) == tmp_path.resolve()
    assert data_dir({}, tmp_path) == tmp_path.resolve() / ".ims"


def test_ims_data_dir_wins_and_is_relative_to_the_current_directory(tmp_path: Path) -> None:
    nested = make_workspace(tmp_path / "repo")

    assert data_dir({"IMS_DATA_DIR": "state"}, nested) == nested.resolve() / "state"
    assert data_dir({"IMS_DATA_DIR": str(tmp_path / "x")}, nested) == (tmp_path / "x").resolve()
