from weather import celsius, fetch_alerts, fetch_forecast


def summary(city):
    forecast = fetch_forecast(city)
    alerts = fetch_alerts(city)
    text = f"{city}: {celsius(forecast['high_f'])} C"
    return text + (' (' + ', '.join(alerts) + ')' if alerts else '')
