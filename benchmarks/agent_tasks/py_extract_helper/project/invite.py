def invite(email):
    if '@' not in email or email.startswith('@') or email.endswith('@'):
        return None
    return 'invited ' + email
