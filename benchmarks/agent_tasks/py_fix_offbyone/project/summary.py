from text import last_words


def tail(text):
    return ' '.join(last_words(text, 2))
