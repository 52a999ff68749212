from models import Account


def open_account(owner):
    return Account(owner)


def is_account(value):
    return isinstance(value, Account)
