"""Serve: the FastAPI service and the dashboard."""
