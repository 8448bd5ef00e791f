"""Ingestion: files → loaders → chunks → embeddings → Qdrant."""
