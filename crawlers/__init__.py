"""Crawl: Scrapy spiders for public Vietnamese sources."""
