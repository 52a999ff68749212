import time


def load_user(user_id):
    time.sleep(0.01)
    return {'id': user_id}
