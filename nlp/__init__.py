"""Understand: Vietnamese text handling, locations, classifiers, issues and ranking."""
