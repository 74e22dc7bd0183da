import veteran


def test_all_is_exported_and_sorted() -> None:
    for name in veteran.__all__:
        assert hasattr(veteran, name), name
    assert veteran.__all__ == sorted(veteran.__all__, key=lambda n: (n.startswith("_"), n)) or (
        sorted(veteran.__all__) == veteran.__all__
    )
    public = {n for n in dir(veteran) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(veteran.__all__)
