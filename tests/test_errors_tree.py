"""The tree drawn in `veteran.errors`' docstring is the real one: every class drawn exists with
the parent drawn (and the HTTP status drawn), and every exception class veteran defines is drawn.
A class added anywhere in the package without its line in the drawing fails here."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import veteran
from veteran import errors

# Not imported on their own: a `__main__` runs the CLI, the Alembic env runs only under Alembic.
NOT_IMPORTED = {"veteran.store.migrations.env"}
# Test support: its fakes play a failing server, so they raise their own exceptions.
NOT_VETERAN = "veteran.testing"

LINE = re.compile(r"^(?P<indent>[│├└─ ]*)(?P<name>[A-Z]\w*)(?:\s+(?P<status>\d{3}|\dxx)\b)?")


def drawn(doc: str) -> dict[str, tuple[str | None, str | None]]:
    """The drawing's classes: name -> (parent name, drawn HTTP status), from the first fenced
    block; a name's depth is its column over 4 (`├── ` and `│   ` are four wide)."""
    block = doc.split("```")[1]
    tree: dict[str, tuple[str | None, str | None]] = {}
    ancestors: list[str] = []
    for line in block.strip("\n").splitlines():
        match = LINE.match(line)
        assert match, f"not a line of the drawing: {line!r}"
        depth, rest = divmod(len(match["indent"]), 4)
        assert rest == 0 and depth <= len(ancestors), f"misaligned: {line!r}"
        name = match["name"]
        assert name not in tree, f"{name} drawn twice"
        del ancestors[depth:]
        tree[name] = (ancestors[-1] if ancestors else None, match["status"])
        ancestors.append(name)
    return tree


def defined_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in veteran's modules, all of them imported first."""
    for module in pkgutil.walk_packages(veteran.__path__, "veteran."):
        if module.name not in NOT_IMPORTED and not module.name.endswith(".__main__"):
            importlib.import_module(module.name)
    found: list[type[BaseException]] = []
    stack: list[type[BaseException]] = [BaseException]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            module = sub.__module__
            if (module == "veteran" or module.startswith("veteran.")) and not (
                    module == NOT_VETERAN or module.startswith(NOT_VETERAN + ".")):
                found.append(sub)
    return list(dict.fromkeys(found))


def test_the_drawing_parses_depths_parents_and_statuses() -> None:
    sample = """```
Root                 top
├── A                one
│   ├── B      400   under A
│   │   └── C  4xx   under B
│   └── D            back under A
└── E                under Root
```"""
    assert drawn(sample) == {"Root": (None, None), "A": ("Root", None), "B": ("A", "400"),
                             "C": ("B", "4xx"), "D": ("A", None), "E": ("Root", None)}
    with pytest.raises(AssertionError, match="misaligned"):
        drawn("```\nRoot\n│       └── Deep\n```")


def test_every_drawn_class_exists_with_its_drawn_parent_and_status() -> None:
    tree = drawn(errors.__doc__ or "")
    assert tree["VeteranError"] == (None, None)
    assert errors.VeteranError.__bases__ == (Exception,)
    for name, (parent, status) in tree.items():
        cls = getattr(errors, name, None)
        assert isinstance(cls, type) and issubclass(cls, errors.VeteranError), name
        if parent is not None:
            assert cls.__bases__ == (getattr(errors, parent),), f"{name} is not under {parent}"
        if status is not None and status.isdigit():
            assert issubclass(cls, errors.HTTPError) and cls.status == int(status), name


def test_every_exception_veteran_defines_is_drawn_and_lives_in_errors() -> None:
    tree = drawn(errors.__doc__ or "")
    classes = defined_exceptions()
    assert len(classes) >= len(tree)  # the walk found the package's classes at all
    for cls in classes:
        where = f"{cls.__module__}.{cls.__qualname__}"
        assert cls.__module__ == "veteran.errors", f"{where}: define it in veteran.errors"
        assert cls.__name__ in tree, f"{where} is not in errors.py's drawing"
    assert {c.__name__ for c in classes} == set(tree)


def test_the_rooms_name_the_same_classes() -> None:
    """The rooms' old homes re-export the one tree's classes rather than define their own."""
    from veteran.datasets import errors as data_errors
    from veteran.envs import environment
    from veteran.evals import errors as eval_errors
    from veteran.http import client
    from veteran.train import job, promote
    from veteran.train.recipes import _hf

    assert eval_errors.Skip is errors.Skip and data_errors.DataError is errors.DataError
    assert environment.EnvError is errors.EnvError and _hf.RecipeError is errors.RecipeError
    assert job.TrainingStopped is errors.TrainingStopped
    assert promote.PromotionRefused is errors.PromotionRefused
    assert client.HTTPClientError is errors.HTTPClientError
