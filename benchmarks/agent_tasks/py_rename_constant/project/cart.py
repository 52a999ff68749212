from config import MAX_ITEMS


def add(cart, item):
    if len(cart) >= MAX_ITEMS:
        raise ValueError('cart full')
    cart.append(item)
    return cart
