"""simfs: a FUSE filesystem for photo collections that stores PNGs relative to similar images."""
