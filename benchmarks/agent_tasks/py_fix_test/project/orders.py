from pricing import with_tax


def total(prices):
    return round(with_tax(sum(prices)), 2)
