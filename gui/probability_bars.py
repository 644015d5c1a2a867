"""Seven class-probability bars per face, in the same colours as the boxes drawn on the video.

Painted directly rather than built from QProgressBars: a monitor updates this 25-30 times a
second for several faces, and one paint is cheaper than re-laying-out dozens of child widgets.
"""
from __future__ import annotations


from PyQt5.QtCore import QRect, QSize, Qt
from PyQt5.QtGui import QColor, QPainter
from PyQt5.QtWidgets import QSizePolicy, QWidget

from fervid.models.annotate import EMOTION_COLOURS_BGR, face_labels, ordered_probabilities
from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS

FACE_GAP = 8
BAR_MIN_WIDTH = 80


def emotion_qcolor(emotion: str) -> QColor:
    """The class colour as a QColor (``EMOTION_COLOURS_BGR`` is BGR, Qt wants RGB)."""
    b, g, r = EMOTION_COLOURS_BGR.get(emotion, (255, 255, 255))
    return QColor(r, g, b)


def _titles(faces: Faces) -> list[str]:
    """Each face's block title: its box label, numbered unless the label carries a track id."""
    smoothed = " (smoothed)" if faces.smoothed is not None else ""
    if faces.track_ids is not None:
        return [f"{label}{smoothed}" for label in face_labels(faces)]
    return [f"face {index + 1}: {label}{smoothed}" for index, label in enumerate(face_labels(faces))]


class ProbabilityBars(QWidget):
    """One block per face: a title and a bar per class in canonical order.

    The title is ``face 1: happy 87%``, or for tracked faces the track id and label drawn on the
    box (``#3 happy 87%``), so a block can be matched to its box; smoothed faces' bars are their
    smoothed rows, and their titles say so, since those bars move slower than the raw scores."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._faces: list[tuple[str, list[tuple[str, float]]]] = []
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        name_width, value_width, _ = self._metrics()
        self.setMinimumWidth(name_width + value_width + BAR_MIN_WIDTH)

    def _metrics(self) -> tuple[int, int, int]:
        """Name column, value column and row height from the font, so no class name is clipped."""
        fm = self.fontMetrics()
        name_width = max(fm.horizontalAdvance(name) for name in EMOTIONS) + 6
        return name_width, fm.horizontalAdvance("100%") + 6, max(14, fm.height() + 2)

    def set_faces(self, faces: Faces) -> None:
        """Show these classified faces; replaces the previous ones."""
        self._faces = [(title, ordered_probabilities(faces, index)) for index, title in enumerate(_titles(faces))]
        self.setMinimumHeight(self._content_height())
        self.updateGeometry()
        self.update()

    def titles(self) -> list[str]:
        """The title above each face's bars, as painted."""
        return [title for title, _ in self._faces]

    def values(self) -> list[list[tuple[str, float]]]:
        """What the bars show, face by face: ``[(class, probability), ...]`` in canonical order."""
        return [list(probs) for _, probs in self._faces]

    def _content_height(self) -> int:
        row = self._metrics()[2]
        block = row * (1 + len(EMOTIONS)) + FACE_GAP
        return max(row * 2, block * len(self._faces))

    def sizeHint(self) -> QSize:
        return QSize(260, self._content_height())

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        painter = QPainter(self)
        try:
            if not self._faces:
                painter.setPen(self.palette().text().color())
                painter.drawText(self.rect(), Qt.AlignCenter, "no faces")
                return
            name_width, value_width, row = self._metrics()
            width = self.width()
            bar_width = max(10, width - name_width - value_width - 4)
            painter.setPen(self.palette().text().color())
            y = 0
            for title, probs in self._faces:
                painter.drawText(QRect(0, y, width, row), Qt.AlignLeft | Qt.AlignVCenter, title)
                y += row
                for name, p in probs:
                    painter.drawText(QRect(0, y, name_width - 6, row), Qt.AlignRight | Qt.AlignVCenter, name)
                    track = QRect(name_width, y + 2, bar_width, row - 4)
                    painter.fillRect(track, QColor(60, 60, 60))
                    filled = QRect(track.x(), track.y(), int(round(bar_width * p)), track.height())
                    painter.fillRect(filled, emotion_qcolor(name))
                    painter.drawText(QRect(name_width + bar_width + 4, y, value_width, row),
                                     Qt.AlignLeft | Qt.AlignVCenter, f"{p:.0%}")
                    y += row
                y += FACE_GAP
        finally:
            painter.end()
