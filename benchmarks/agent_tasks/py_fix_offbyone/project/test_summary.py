from summary import tail


def test_tail():
    assert tail('a b c d') == 'c d'
