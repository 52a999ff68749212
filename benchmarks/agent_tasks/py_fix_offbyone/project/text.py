def last_words(text, n):
    """The last n words of the text."""
    words = text.split()
    return words[len(words) - n - 1:]
