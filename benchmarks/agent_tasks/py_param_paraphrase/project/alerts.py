from mail import send_email


def alert(admin, message):
    return send_email(admin, 'Alert', message)
