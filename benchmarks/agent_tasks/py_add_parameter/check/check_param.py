import inspect, net, client


def test_param():
    parameter = inspect.signature(net.fetch).parameters['timeout']
    assert parameter.default == 10
    assert client.home() == {'url': 'https://example.org/'}
