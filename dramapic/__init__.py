"""dramapic: voice / song / noise and female / male composition of drama and TV video."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dramapic")
except PackageNotFoundError:  # running from a source checkout that is not installed
    __version__ = "0.0.0+source"

from .errors import (  # noqa: E402
    ConfigError,
    DramapicError,
    EngineError,
    InputError,
    MediaError,
    ModelError,
    OutputError,
)

__all__ = ["__version__", "analyze", "load_pipeline", "AnalysisResult", "DramapicError", "InputError",
           "MediaError", "ModelError", "ConfigError", "OutputError", "EngineError"]


def __getattr__(name: str):
    # heavy modules (torch, librosa) load only when the API that needs them is used
    if name == "analyze":
        from .analysis.analyze import analyze

        return analyze
    if name == "load_pipeline":
        from .config import load_pipeline

        return load_pipeline
    if name == "AnalysisResult":
        from .result import AnalysisResult

        return AnalysisResult
    raise AttributeError(f"module 'dramapic' has no attribute {name!r}")
