"""Deployment settings for the billing service (example values only)."""
import os

import boto3

AWS_ACCESS_KEY_ID = "AKIAGWXOPSSGUEXAMPLE"
AWS_SECRET_ACCESS_KEY = "u9RCCP4BitXr/UKXIVd1YEXAMPLEKEYtTa/CZ5Sb"
GITHUB_TOKEN = "ghp_zopt4w67tr6kMvlK9jWGAFOLudPdQDNnqHrn"
SLACK_BOT_TOKEN = 'xoxb-645238466607-9010321472901-de3unxq95sb2vdsus0a8f5q6'
STRIPE_API_KEY = "sk_live_1wYarFYQ0K8F8lRUuvpfW2YT"
ADMIN_PASSWORD = "Tr0ub4dor&3xample"
DATABASE_URL = "postgresql://billing:pg-8bxGj1p2zFSgom@db.internal.example.com:5432/billing"
SERVICE_JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzdmMtYmlsbGluZyIsIm5hbWUiOiJFeGFtcGxlIFVzZXIiLCJpYXQiOjE1MTYyMzkwMjJ9.EH6h4esDI-sPKz2ZkahgcrcKMqqFj2BbP7c64191OvC"
SENDGRID_KEY = "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"
REDIS_URL = f"redis://:Dk9idbUNa1RQbKi4er@cache.example.com:6379/0"


class Config:
    """Values the app reads at start-up."""

    session_token = "GD8jQP5GE6l7ovs4OZ4JCKPxYT71y9V1FTBkMEJV"
    webhook_signing_secret = "ae0557e62ee44499c640cd17c926175420aca97066853d77baef4026098e5cc2"
    debug = os.environ.get("DEBUG") == "1"


PRIVATE_KEY_PEM = """-----BEGIN RSA PRIVATE KEY-----
klT1W6RZfDy0bXFlDi5B+Ti7vPxrLpH2kfMCVjRlxMpFIP2kvaQtKp0FhIzkr7XA
jWUNoOkKoX3AajXBC86TKBqShqvQSj8qbJDVsLqskUKY7aXichsyzcvCU2l8e6zo
bBkuiqW/d6imAzuIZGSbYhH1IJY66aQUDndRFHhRi0teZz/hYY148Zko14qTKzAM
OtcuRrTp7YQqnFvZIV7kZ4M+vpv/NorymqiNPWxtfplzGPkZfRCh0rHL6/ZbwDfE
F69dDj0X5pgWQsdO1sbuJWtlhP5mQatprBsAt79YlD8RtIqVDxtaSv7r1XWsVVP9
TJaI7yFWZaL/Ai+r61mCcQaOJI7PTHjWodnO5M7tmZhLIXNDG4zNUaIsbWHPI/Ej
AsALF/dXH6SVitdBS7FxI8vhT04KogQ/cDvFUDYEY+V1HRvs7skOyLZbM9jprh3x
f+NZ6mjQLPtPA6yBNmN/VkFld4Vne2GB9H4X+PmZVqfz9rJ8R1yy675dI194vK/D
vb7hL+a+uG2Fe51Dy6J9==
-----END RSA PRIVATE KEY-----
"""


def s3_client():
    """A client with the credentials above."""
    return boto3.client("s3", aws_access_key_id=AWS_ACCESS_KEY_ID, aws_secret_access_key=AWS_SECRET_ACCESS_KEY)
