"""fsck: read-only consistency checks of a store, with optional repair."""
