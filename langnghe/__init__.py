"""Lắng Nghe: AI social listening for Vietnamese city governments."""

__version__ = "0.1.0"
