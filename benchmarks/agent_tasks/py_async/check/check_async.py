import asyncio, inspect, users, views


def test_async():
    assert inspect.iscoroutinefunction(users.load_user)
    assert inspect.iscoroutinefunction(views.profile)
    assert asyncio.run(views.profile(7)) == 'user 7'
