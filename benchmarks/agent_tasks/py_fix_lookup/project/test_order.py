from order import order_cost


def test_price():
    assert order_cost(['Apple', 'pear']) == 1.25
