"""Timbre-leakage reduction: k-means cluster models and faiss feature retrieval, in safe formats."""
