"""The layer-class registry and layer (de)serialisation.

Layer modules register their classes with :func:`register` when they are imported
(``rnnkit.layers`` imports them all), so wrappers can (de)serialise the layers they hold and
``rnnkit.saving`` can check class names without importing back up the package.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Type, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from .base import Layer

__all__ = ["REGISTRY", "register", "serialize", "deserialize"]

#: ``{class name: layer class}`` of every registered layer.
REGISTRY: Dict[str, type] = {}

_T = TypeVar("_T", bound=type)


def register(cls: _T) -> _T:
    """Class decorator: make ``cls`` known to :func:`deserialize` under its ``__name__``."""
    REGISTRY[cls.__name__] = cls
    return cls


def serialize(layer: "Layer") -> Dict[str, Any]:
    """``{"class_name": type name, "config": layer.get_config()}``."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: Dict[str, Any]) -> "Layer":
    """Rebuild a layer from :func:`serialize` output; unknown classes raise ValueError."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"layer config must be a dict with 'class_name', got {config!r}")
    cls: Type[Any] = REGISTRY.get(config["class_name"])  # type: ignore[assignment]
    if cls is None:
        raise ValueError(f"Unknown layer class {config['class_name']!r}; known: {sorted(REGISTRY)}")
    return cls.from_config(dict(config.get("config", {})))
