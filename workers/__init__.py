"""Horizontal scale: NLP workers that share the work through Redis leases, distributed crawling
(scrapy-redis), and the process that runs them (`python -m workers.cli`)."""
