"""The typed error hierarchy. The library raises these; only ``cli.py`` turns them into messages and exit codes."""

from __future__ import annotations


class DramapicError(Exception):
    """Base of every error dramapic raises on purpose. ``str(err)`` is a one-line message for the user."""

    exit_code = 1


class InputError(DramapicError):
    """The input path is missing, not a file, empty, or not usable media."""

    exit_code = 2


class MediaError(DramapicError):
    """ffmpeg could not read, decode or write the media (corrupt, truncated, no audio stream, ...)."""

    exit_code = 3


class ConfigError(DramapicError, ValueError):
    """A pipeline YAML file or an option is invalid (also a ``ValueError``: an invalid value)."""

    exit_code = 4


class ModelError(DramapicError):
    """A model file is missing, altered (checksum mismatch) or not listed in the manifest."""

    exit_code = 5


class OutputError(DramapicError):
    """Outputs cannot be written: the directory is not writable, or files exist and --overwrite was not given."""

    exit_code = 6


class EngineError(DramapicError):
    """The Dask or Ray cluster a batch runs on was lost mid-batch (scheduler gone, connection closed, the cluster's
    own processes died): not any one file's failure. What finished before is recorded; the next batch goes on."""

    exit_code = 7
