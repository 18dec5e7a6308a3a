"""Where a run's state lives: a frontier and a sink, supplied together by a backend."""
