"""`MemoryStore`: collections, documents and embedded chunks. Its tables and SQL live in the
store (`veteran.store.memory`, the one home of every byte written, where the generation rule
and the embedding format are described); memory code imports it from here."""

from veteran.store.memory import CollectionInfo, DocumentInfo, MemoryStore, document_id

__all__ = ["CollectionInfo", "DocumentInfo", "MemoryStore", "document_id"]
