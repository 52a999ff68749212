from orders import compute_total


def pay(prices):
    return 'paid ' + str(compute_total(prices))
