def _noop():
    pass
