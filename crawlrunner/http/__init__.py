"""The HTTP layer: one pooled aiohttp session per run, and the fetcher on top."""
