import inspect, transfer, sync, backup


def test_passed(monkeypatch):
    assert inspect.signature(transfer.download).parameters['retries'].default == 1
    seen = []
    monkeypatch.setattr(transfer, 'download', lambda path, retries=1: seen.append(retries) or path)
    monkeypatch.setattr(sync, 'download', transfer.download)
    sync.sync_all(['a']); backup.backup('b')
    assert seen == [3, 3]
