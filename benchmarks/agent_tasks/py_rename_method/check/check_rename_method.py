import inspect, cart, shop


def test_renamed():
    assert hasattr(cart.Cart, 'add_product') and not hasattr(cart.Cart, 'add_item')
    assert 'add_item' not in inspect.getsource(shop)
    assert shop.basket() == 5
