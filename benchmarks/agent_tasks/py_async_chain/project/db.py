"""A tiny key-value store standing in for a database."""
import time

ROWS = {'a': {'name': 'Ada'}, 'b': {'name': 'Bob'}}


def fetch_row(key):
    time.sleep(0.01)  # the network round trip
    return ROWS[key]
