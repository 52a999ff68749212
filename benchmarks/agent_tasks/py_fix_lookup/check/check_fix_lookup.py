from catalog import price_of


def test_fixed():
    assert price_of('APPLE') == 0.5 and price_of('pear') == 0.75
