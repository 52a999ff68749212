from catalog import price_of


def order_cost(skus):
    return sum(price_of(sku) for sku in skus)
