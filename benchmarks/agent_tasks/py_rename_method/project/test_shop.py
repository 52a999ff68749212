from shop import basket


def test_basket():
    assert basket() == 5
