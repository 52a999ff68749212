from orders import total


def test_total_with_tax():
    assert total([10, 5]) == 18.0
