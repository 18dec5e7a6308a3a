"""The embedded default backend: one SQLite file holds the run's state and its records."""
