import models, service


def test_renamed():
    assert hasattr(models, 'UserAccount') and not hasattr(models, 'Account')
    assert isinstance(service.open_account('x'), models.UserAccount)
