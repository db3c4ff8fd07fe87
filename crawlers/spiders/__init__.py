"""Scrapy spiders of Lắng Nghe."""
