require "mail"
require "stripe"

Stripe.api_key = "sk_live_YUvCftBOrk48r9TAJZ6zyqIT"

Mail.defaults do
  delivery_method :smtp, address: "smtp.example.com", port: 587,
                         user_name: "mailer", password: "Rub7!78mZYNwR0W"
end

class BillingClient
  API_KEY = "yBLRALPbUZrOU3BdvJsVys8aTvo4DjE6"
  SECRET_KEY_BASE = "52081911d20c256290b4b8b77b5ed73bdcdfdf7d9bb1b1017114ee1d81ceb763d3f93e7e1d568ea3612527c2ee59f516cef9d0ba5f8ae286440b4c41ae31a861"

  def initialize
    @smtp_url = "smtp://mailer:lc5vd94YwBdaKy3M@smtp.example.com:587"
  end
end
