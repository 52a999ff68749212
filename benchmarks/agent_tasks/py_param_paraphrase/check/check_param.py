import inspect, mail, alerts


def test_param():
    parameters = inspect.signature(mail.send_email).parameters
    assert 'cc' in parameters and parameters['cc'].default is None
    assert alerts.alert('a@b', 'x')['to'] == ['a@b']
