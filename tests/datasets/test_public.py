import inspect

import veteran.datasets


def test_all_is_exported_and_sorted() -> None:
    names = veteran.datasets.__all__
    assert all(hasattr(veteran.datasets, n) for n in names)
    assert names == sorted(names, key=lambda n: (not n.isupper(), n[0].islower(), n))
    public = {n for n in dir(veteran.datasets) if not n.startswith("_")
              and not inspect.ismodule(getattr(veteran.datasets, n))}
    assert public <= set(names) | {"annotations"}


def test_signatures_others_code_against() -> None:
    curate = inspect.signature(veteran.datasets.curate)
    assert list(curate.parameters) == ["store", "config", "function", "filters", "kind", "split",
                                       "seed", "dedupe"]
    assert curate.parameters["dedupe"].default == 0.9
    export = inspect.signature(veteran.datasets.export)
    assert list(export.parameters) == ["curated", "fmt", "out_dir", "grader", "overwrite"]
