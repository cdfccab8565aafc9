"""VLM judge: versioned rubrics, OpenAI-compatible and local backends, cached resumable judging."""
