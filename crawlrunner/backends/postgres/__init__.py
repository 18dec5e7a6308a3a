"""The PostgreSQL backend: one run shared by many workers on many machines (needs the ``postgres`` extra)."""
