"""The one registry of the package's configurable modules.

Every network class that can appear in a saved configuration registers itself here under its
class name; ``build({"class": name, **kwargs})`` rebuilds it. Experiments, checkpoints and the
method harness all go through this table, so there is no parallel name list to keep in sync.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

T = TypeVar("T")
_REGISTRY: dict[str, Callable[..., Any]] = {}


def register(cls: T) -> T:
    """Class decorator: make ``cls`` buildable from a config by its name."""
    name = cls.__name__
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"registry: the name {name!r} is already registered")
    _REGISTRY[name] = cls
    return cls


def registered() -> list[str]:
    """Names of every registered class."""
    return sorted(_REGISTRY)


def build(config: dict[str, Any]) -> Any:
    """Instantiate ``config["class"]`` with the rest of the dict as keyword arguments."""
    if "class" not in config:
        raise ValueError(f"build: the config needs a 'class' key, got keys {sorted(config)}")
    kwargs = {k: v for k, v in config.items() if k != "class" and not k.startswith("_")}
    name = config["class"]
    if name not in _REGISTRY:
        raise ValueError(f"build: unknown class {name!r}; registered: {registered()}")
    return _REGISTRY[name](**kwargs)


def config_of(module: Any) -> dict[str, Any]:
    """The registry config of a module built from a diffusers ConfigMixin: {"class": ..., **args}."""
    cfg = {k: v for k, v in dict(module.config).items() if not k.startswith("_")}
    return {"class": type(module).__name__, **cfg}
