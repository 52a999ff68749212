def download(path):
    return path
