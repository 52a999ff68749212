from db import fetch_row


def get_name(key):
    return fetch_row(key)['name']
