"""Object storage: immutable, checksummed, content-addressed objects on the local disk."""
