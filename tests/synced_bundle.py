"""The bundle as Databricks sees it after `bundle deploy`: files synced under a root, no package installed.

Tests copy what the bundle syncs (engine/, generated/) into a folder and run Databricks-side code in a
subprocess that starts with HIDE_INSTALLED_ENGINE, so `engine` can only come from that folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# First lines of a subprocess: drop the editable install of this project (its finder and path
# hook), then prove `engine` is not importable until the bundle root is put on sys.path.
HIDE_INSTALLED_ENGINE = """
import sys, importlib.util
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path_hooks[:] = [h for h in sys.path_hooks if not getattr(h, "__module__", "").startswith("__editable__")]
sys.path_importer_cache.clear()
assert importlib.util.find_spec("engine") is None, "engine must come from the synced bundle, not an installed package"
"""


def copy_bundle(destination: Path, *, generated: bool = True) -> Path:
    """engine/ (and generated/ unless told otherwise) under `destination`, as the bundle syncs them."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "engine", destination / "engine", ignore=ignore)
    if generated:
        shutil.copytree(ROOT / "generated", destination / "generated", ignore=ignore)
    return destination
