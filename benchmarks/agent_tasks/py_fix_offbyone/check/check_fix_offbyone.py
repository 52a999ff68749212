from text import last_words


def test_fixed():
    assert last_words('x y z', 1) == ['z']
    assert last_words('a b c', 3) == ['a', 'b', 'c']
