"""Pieces the pages share: answers and their sources, job progress, adapter choice, errors."""
