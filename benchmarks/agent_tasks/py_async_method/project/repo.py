from client import fetch


class Repo:
    def __init__(self):
        self.cache = {}

    def load(self, item_id):
        if item_id not in self.cache:
            self.cache[item_id] = fetch(item_id)
        return self.cache[item_id]

    def titles(self, ids):
        return [self.load(i)['title'] for i in ids]
