PRICES = {'apple': 0.5, 'pear': 0.75}


def price_of(sku):
    """The price of a product by its SKU (case does not matter)."""
    return PRICES[sku.upper()]
