"""Background ingest: worker threads that describe every image and encode every PNG after it is stored."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .describe import DescriptorProcessor, decode_image, stored_pixels
from .encode import EncodeOptions, EncodeProcessor
from .polish import PolishProcessor
from .pool import CodecPool
from .worker import Ingestor, NotNow, Processor

if TYPE_CHECKING:
    from ..similarity import SimilarityIndex
    from ..storage import OpenStore
    from ..vfs.core import Vfs

log = logging.getLogger("simfs.ingest")

__all__ = ["DescriptorProcessor", "EncodeOptions", "EncodeProcessor", "Ingestor", "NotNow", "PolishProcessor", "Processor",
           "decode_image", "describer", "make_ingestor"]


def describer(catalog) -> tuple[DescriptorProcessor, SimilarityIndex]:
    """The descriptor processor with its index loaded (created before the Vfs: freeing objects needs it)."""
    from ..similarity import SimilarityIndex

    index = SimilarityIndex(catalog)
    n = index.load()
    log.info("similarity index: %d images", n)
    return DescriptorProcessor(index), index


def make_ingestor(opened: OpenStore, vfs: Vfs, descriptors: DescriptorProcessor, *, encode: bool,
                  options: EncodeOptions | None = None, workers: int = 1, processes: int | None = None) -> Ingestor:
    """The processors a mount (or `simfs compact`) runs: descriptors, then the PNG encoder when enabled.

    workers threads feed `processes` codec worker processes (default: as many as threads)."""
    processors: list = [descriptors]
    # near misses on the compact T records are verified again on features re-derived from the pixels
    descriptors.index.pixel_source = stored_pixels(opened.objects, vfs.chains, vfs.object_record)
    ingestor = Ingestor(vfs, processors, workers=workers)
    if encode:
        pool = CodecPool(workers if processes is None else processes)
        ingestor.codec_processes = workers if processes is None else processes
        ingestor.on_stop.append(pool.close)
        encoder = EncodeProcessor(opened.objects, chains=vfs.chains, index=descriptors.index,
                                  record_of=vfs.object_record, require_feature=opened.require_feature,
                                  options=options, retries=ingestor.retries, pool=pool)
        processors.append(encoder)
        ingestor.all_flags |= EncodeProcessor.flag
        opts = options or EncodeOptions()
        if opts.two_pass:  # fast first encoding, re-coded at the final effort by the polish pass
            processors.append(PolishProcessor(encoder, pool, opts.effort))
            ingestor.all_flags |= PolishProcessor.flag
        ingestor.processors = processors
    return ingestor
