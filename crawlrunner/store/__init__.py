"""SQLite output: the schema, the one writer, and read-back queries."""
