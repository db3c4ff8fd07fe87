"""Store: one storage interface; an embedded SQLite backend and a search-engine backend (OpenSearch,
Elasticsearch). `storage.factory.open_store_url` opens either from a URL."""
