from api import handler


def test_handler():
    assert handler('a') == {'name': 'Ada'}
