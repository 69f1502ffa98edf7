"""Similarity index persisted in the catalog's RocksDB (records under prefixes S and T)."""

from .index import SIM_LOCAL, SIM_RECORD, Candidate, QueryResult, SimilarityIndex

__all__ = ["SIM_LOCAL", "SIM_RECORD", "Candidate", "QueryResult", "SimilarityIndex"]
