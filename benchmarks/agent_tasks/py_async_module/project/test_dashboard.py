from dashboard import summary


def test_summary():
    assert summary('Oslo') == 'Oslo: 25 C'
