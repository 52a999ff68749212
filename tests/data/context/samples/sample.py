import os.path
from collections import OrderedDict as OD


class LRUCache:
    """A tiny least-recently-used cache."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items = OD()

    def get(self, key):
        value = self.items.pop(key)
        self.items[key] = value
        return value


def cache_path(root: str) -> str:
    return os.path.join(root, "cache")
