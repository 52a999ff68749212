TAX_RATE = 0.2


def with_tax(amount):
    return amount + TAX_RATE
