from cart import Cart


def basket():
    cart = Cart()
    cart.add_item('tea', 3).add_item('milk', 2)
    return cart.total()
