import asyncio, inspect, dashboard, weather


def test_module_async():
    assert inspect.iscoroutinefunction(weather.fetch_forecast)
    assert inspect.iscoroutinefunction(weather.fetch_alerts)
    assert not inspect.iscoroutinefunction(weather.celsius)
    assert inspect.iscoroutinefunction(dashboard.summary)
    assert asyncio.run(dashboard.summary('Miami')) == 'Miami: 25 C (hurricane watch)'
