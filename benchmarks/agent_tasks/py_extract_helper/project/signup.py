def signup(email):
    if '@' not in email or email.startswith('@') or email.endswith('@'):
        raise ValueError('bad email')
    return {'email': email}
