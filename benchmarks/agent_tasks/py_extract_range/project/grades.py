def grade(score):
    if score < 0 or score > 100:
        raise ValueError('score out of range')
    return 'pass' if score >= 50 else 'fail'
