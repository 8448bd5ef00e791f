"""lorag: answers from your own documents, with citations, on your own hardware."""
