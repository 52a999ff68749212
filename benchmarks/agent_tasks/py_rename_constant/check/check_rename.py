import config, cart


def test_renamed():
    assert config.MAX_CART_ITEMS == 20 and not hasattr(config, 'MAX_ITEMS')
    assert cart.add([], 2) == [2]
