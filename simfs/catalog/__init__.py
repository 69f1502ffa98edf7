"""Catalog: the RocksDB metadata database (namespace, inodes, object records)."""
