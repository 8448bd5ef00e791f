"""Batch answering and evaluation: question files in, answer files and scores out.

- :mod:`assistant.batch.formats` reads CSV, JSONL and XLSX question files;
- :mod:`assistant.batch.output` writes answer files row by row, so a run can be resumed;
- :mod:`assistant.batch.runner` answers a question file in batches (``lorag batch``);
- :mod:`assistant.batch.metrics` holds the scores (token F1, recall@k, nDCG, ...);
- :mod:`assistant.batch.evaluation` compares configurations on a question file (``lorag eval``)
  and :mod:`assistant.batch.report` shows the comparison as a table, JSON and a chart.
"""
