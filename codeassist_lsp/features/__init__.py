"""Thin LSP adapters: params in, one call on a service, an lsprotocol type out."""
