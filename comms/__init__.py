"""The wire between the service and its viewers: the message format, ZMQ sockets and CURVE keys.

Ray-free and Qt-free, so the service's publisher and the GUI's monitor share one implementation.
"""
