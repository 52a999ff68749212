from service import open_account, is_account


def test_open():
    assert is_account(open_account('ada'))
