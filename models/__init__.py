"""Recognition core of fervid: face detection, preprocessing and the expression classifier.

Nothing here imports Ray, ZeroMQ or Qt, so the CLI, the desktop app, the service and the
evaluation all share exactly one implementation of each step.
"""
