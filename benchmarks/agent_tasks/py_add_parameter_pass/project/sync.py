from transfer import download


def sync_all(paths):
    return [download(p) for p in paths]
