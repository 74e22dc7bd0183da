"""Test helpers shipped with the package: a fast fake OpenAI-compatible upstream with faults."""
