"""Files that live at the top of the repository but ship inside the wheel.

The JSON Schema (``schemas/``) and the demo spec (``examples/``) are part of
the project's public face, so they stay at the top of the checkout; the wheel
carries copies in ``crawlrunner/_bundled/`` (see pyproject.toml). An editable
install or a plain checkout finds the originals instead.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_path(folder: str, name: str) -> Path:
    """Path of ``folder/name``: the wheel's copy if present, else the checkout's."""
    packaged = _PACKAGE_DIR / "_bundled" / name
    if packaged.is_file():
        return packaged
    return _PACKAGE_DIR.parent / folder / name
