"""codec: pure library turning image files into compact blobs and back, byte for byte."""
