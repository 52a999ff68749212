from users import load_user


def profile(user_id):
    user = load_user(user_id)
    return 'user ' + str(user['id'])
