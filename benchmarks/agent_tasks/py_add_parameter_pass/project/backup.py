import transfer


def backup(path):
    return transfer.download(path)
