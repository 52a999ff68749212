import time


def fetch(item_id):
    time.sleep(0.01)
    return {'id': item_id, 'title': f'item {item_id}'}
