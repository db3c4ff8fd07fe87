"""Store: one storage interface, an embedded SQLite backend and (later) a search-engine backend."""
