"""The public API of ``import dramapic`` (README, "The same from Python"; ARCHITECTURE.md, ``__init__.py``)."""

from __future__ import annotations

import inspect

import dramapic
from dramapic import errors


def test_every_error_the_library_raises_is_exported():
    # a caller of run_batch catches the cluster's loss as dramapic.EngineError, as it does the other errors
    raised = {name for name, obj in inspect.getmembers(errors, inspect.isclass)
              if issubclass(obj, errors.DramapicError) and obj.__module__ == errors.__name__}
    assert raised <= set(dramapic.__all__)
    for name in raised:
        assert getattr(dramapic, name) is getattr(errors, name)
