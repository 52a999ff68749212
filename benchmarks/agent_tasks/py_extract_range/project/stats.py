def average(scores):
    for s in scores:
        if s < 0 or s > 100:
            raise ValueError('score out of range')
    return sum(scores) / len(scores)
