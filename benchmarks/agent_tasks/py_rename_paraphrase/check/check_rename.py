import orders, checkout


def test_renamed():
    assert hasattr(orders, 'order_total') and not hasattr(orders, 'compute_total')
    assert checkout.pay([1, 2]) == 'paid 3'
