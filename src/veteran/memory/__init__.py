"""Institutional memory: collections, chunking, embeddings, hybrid search, context packing and
the semantic cache (see docs/design.md)."""
