"""Shared checks."""
