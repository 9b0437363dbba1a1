"""A wheel built from the repository ships the recipes: ``find_recipe("monobert")`` works once installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_an_installed_wheel_finds_its_recipes(tmp_path):
    # Build from a copy: an in-tree build leaves build/ and *.egg-info in the checkout.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("auxir-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = "from auxir.recipe import find_recipe; print(find_recipe('monobert'))"
    # cwd: a folder without recipes/, so the packaged ones are the only candidates
    found = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(found).resolve().is_relative_to(site.resolve())
    assert Path(found).read_text(encoding="utf-8") == (
        ROOT / "src" / "auxir" / "recipes" / "monobert.yaml"
    ).read_text(encoding="utf-8")
    # package data beside the recipes: the shipped MeSH → aspect mapping
    code = "from auxir.data.aspects import load_term_mapping as m; print(m('pubmedqa_mesh').version)"
    version = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert version
