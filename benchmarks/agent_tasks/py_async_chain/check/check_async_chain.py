import asyncio, inspect, api, db, service


def test_async_chain():
    assert inspect.iscoroutinefunction(db.fetch_row)
    assert inspect.iscoroutinefunction(service.get_name)
    assert inspect.iscoroutinefunction(api.handler)
    assert asyncio.run(api.handler('b')) == {'name': 'Bob'}
