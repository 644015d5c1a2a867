"""Frames in: video files, cameras and URLs with reconnect and back-off, and safe image decoding.

The bottom layer: it imports no other fervid package (only ``fervid.errors``), and no Ray, ZMQ or Qt,
so every other layer can read frames and images the same way.
"""
