"""Prefect flows: thin wrappers over mvsd functions (retries, caching, schedules). See issue 6."""
