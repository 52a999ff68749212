import validation, signup, invite, inspect


def test_extracted():
    assert validation.is_valid_email('a@b') and not validation.is_valid_email('@b')
    assert 'is_valid_email' in inspect.getsource(signup) and 'is_valid_email' in inspect.getsource(invite)
    assert invite.invite('x@y') == 'invited x@y' and invite.invite('bad') is None
    assert signup.signup('a@b') == {'email': 'a@b'}
