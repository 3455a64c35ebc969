"""django-open-humans: log people in through Open Humans and work with their data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "1.0.0"

__all__ = ["Project", "__version__"]

if TYPE_CHECKING:
    from .project import Project


def __getattr__(name: str) -> Any:
    # Lazy, so importing the package needs no settings (and no Django set-up).
    if name == "Project":
        from .project import Project

        return Project
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
