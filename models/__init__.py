"""Recognition core of fervid: face detection, preprocessing, the expression classifier, the face type.

Nothing here imports Ray, ZeroMQ or Qt, so the CLI, the desktop app, the service and the
evaluation all share exactly one implementation of each step. Importing it sets no environment:
process entry points call ``fervid.models.backend_env.configure_tensorflow`` before Keras loads.
"""
