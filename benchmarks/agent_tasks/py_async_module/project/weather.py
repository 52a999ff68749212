"""Weather data from a slow upstream service."""
import time


def fetch_forecast(city):
    time.sleep(0.01)
    return {'city': city, 'high_f': 77}


def fetch_alerts(city):
    time.sleep(0.01)
    return [] if city != 'Miami' else ['hurricane watch']


def celsius(fahrenheit):
    return round((fahrenheit - 32) * 5 / 9)
