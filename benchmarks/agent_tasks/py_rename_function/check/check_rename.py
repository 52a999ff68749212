import geometry, report


def test_renamed():
    assert hasattr(geometry, 'circle_area') and not hasattr(geometry, 'area')
    assert report.summary([2]) == [12.57]
