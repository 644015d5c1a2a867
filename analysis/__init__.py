"""Recorded video: faces, tracks and smoothed expressions of whole videos, written as reports.

``fervid analyze`` and the app's "Analyze Video..." read a video in segments (side by side on one
machine or over a Ray cluster), run the same detector, scan planner, tracker and classifier as the
service, join the segments' tracks, and write faces.csv, summary.json, timeline.png and, on request,
an annotated MP4. Nothing here imports Ray (its pool is :mod:`fervid.services.analysis_pool`) or Qt.
"""
