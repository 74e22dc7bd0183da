"""Stored runs, as the evals see them: the tables and their SQL live in the store
(`veteran.store.runs`), the one home of every byte written; evals import them from here."""

from veteran.store.runs import RESULT_VERSION, Key, Result, RunInfo, Runs, RunStatus

__all__ = ["RESULT_VERSION", "Key", "Result", "RunInfo", "RunStatus", "Runs"]
