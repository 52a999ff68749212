from service import get_name


def handler(key):
    return {'name': get_name(key)}
