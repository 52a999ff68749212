from orders import total
from pricing import with_tax


def test_fixed():
    assert total([10, 5]) == 18.0 and with_tax(100) == 120.0
