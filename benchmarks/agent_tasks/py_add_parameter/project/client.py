from net import fetch


def home():
    return fetch('https://example.org/')
