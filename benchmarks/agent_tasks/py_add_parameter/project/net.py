def fetch(url):
    return {'url': url}
