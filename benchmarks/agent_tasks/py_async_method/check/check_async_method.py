import asyncio, inspect, client, repo


def test_async():
    assert inspect.iscoroutinefunction(client.fetch)
    assert inspect.iscoroutinefunction(repo.Repo.load)
    assert asyncio.run(repo.Repo().load(3))['title'] == 'item 3'
    assert asyncio.run(repo.Repo().titles([1, 2])) == ['item 1', 'item 2']
