def send_email(to, subject, body):
    recipients = [to]
    return {'to': recipients, 'subject': subject, 'body': body}
