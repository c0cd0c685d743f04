"""Where the bundled data lives, both in a source checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    # An installed wheel carries models/ and pipelines/ under dramapic/_data (see pyproject.toml);
    # a source checkout or editable install has them at the repository top level.
    installed = _PACKAGE_DIR / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / name


def models_dir() -> Path:
    """The directory holding ``manifest.json`` and the trained model files."""
    return _data_dir("models")


def pipelines_dir() -> Path:
    """The directory holding the pipeline YAML files (``default.yaml``, ...)."""
    return _data_dir("pipelines")


def fonts_dir() -> Path:
    """The bundled fonts passed explicitly to libass, so rendering never depends on system fonts."""
    return _PACKAGE_DIR / "fonts"
