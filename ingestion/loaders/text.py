"""Plain text (.txt): the whole file is one section, titled by the file name."""

from __future__ import annotations

from ingestion.loaders.decoding import decode_text
from ingestion.loaders.extracted import Extracted, RawSection


def load_text(data: bytes, source: str) -> Extracted:
    """One section holding the decoded text."""
    return Extracted(title=None, sections=(RawSection(decode_text(data, source)),))
