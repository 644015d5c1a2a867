"""``fervid app``: the desktop app — live camera recognition, annotated image uploads and recorded
video analysis.

Everything runs in this process with the same detector and classifier as ``fervid predict``;
no cluster is needed. A camera or video is followed with the service's tracker and scan plans
(face ids on the boxes and the table, expressions smoothed per face); an uploaded image is
recognised once, whole. The window only displays: loading, capture and inference run on worker
threads (``gui.recognition_worker``), so the window stays responsive while TensorFlow loads or a
slow camera stalls; Analyze Video… runs ``fervid analyze``'s engine on a worker thread too
(``gui.analysis_job``), with a progress bar in the window and the timeline shown when done.
Problems a user can cause (a camera that will not open, a file that is not an image or not a
video, an image too large to decode safely, an unwritable save path or results folder) are shown
in the window's status line, never as a crash or a blocking dialog.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from PyQt5.QtCore import QEventLoop, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QColor, QKeySequence, QPixmap, QResizeEvent
from PyQt5.QtWidgets import (QAbstractItemView, QApplication, QFileDialog, QHBoxLayout, QHeaderView,
                             QLabel, QLineEdit, QMainWindow, QProgressBar, QPushButton, QShortcut,
                             QSizePolicy, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from fervid.errors import FervidError
from fervid.models.annotate import EMOTION_COLOURS_BGR, face_label, ordered_probabilities
from fervid.gui.analysis_job import DEFAULT_SEGMENT_S, AnalysisJob, AnalysisReport, default_out_dir
from fervid.gui.qt_env import headless_problem, quiet_qt_messages
from fervid.gui.qt_image import bgr_to_pixmap
from fervid.gui.recognition_worker import CameraStats, CameraWorker, ImageJob, ModelLoader, SharedRecognizer
from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS
from fervid.media.sources import parse_source

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff *.gif);;All files (*)"
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.mpg *.mpeg);;All files (*)"
SCREENSHOT_TIMEOUT_S = 180.0
"""How long ``run_app(screenshot=...)`` waits for the model and the annotation."""
CAMERA_STOP_WAIT_MS = 15_000
"""Longest a window close waits for the camera worker (a network read may block for seconds)."""

_orphans: list = []
"""Workers still running when their window went away; kept referenced so that Qt does not
destroy a running QThread (which aborts the process)."""


def _qcolor(bgr: tuple[int, int, int]) -> QColor:
    return QColor(bgr[2], bgr[1], bgr[0])


class ImageView(QLabel):
    """Shows one image scaled to fit, keeping the full-resolution pixmap for saving and tests."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._full: QPixmap | None = None
        self.setAlignment(Qt.AlignCenter)
        self.setMinimumSize(320, 240)
        # Ignored: the label must not grow to the pixmap's size, only fill the space it is given.
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)
        self.setStyleSheet("background: #202020; color: #bbbbbb;")
        self.setText("Start the camera or upload an image")

    def set_image(self, image_bgr: np.ndarray) -> None:
        self._full = bgr_to_pixmap(image_bgr)
        self._rescale()

    def full_pixmap(self) -> QPixmap | None:
        """The image as shown, at its own resolution (the label shows a scaled copy)."""
        return self._full

    def _rescale(self) -> None:
        if self._full is None:
            return
        self.setPixmap(self._full.scaled(self.size(), Qt.KeepAspectRatio, Qt.SmoothTransformation))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._rescale()


class FaceTable(QTableWidget):
    """One row per face: its expression and the seven class probabilities.

    Each probability cell holds the exact float under ``Qt.UserRole`` (the text is rounded); the
    expression cell and the winning probability are tinted with the box colour of that emotion.
    A tracked face (camera, video) is named by its track id, as on its box, and its probabilities
    are the track's smoothed ones, the rows its label comes from; an uploaded image's faces are
    numbered left to right.
    """

    FIXED_COLUMNS = ("Face", "Expression")
    FIRST_PROBABILITY_COLUMN = len(FIXED_COLUMNS)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, len(self.FIXED_COLUMNS) + len(EMOTIONS), parent)
        self.setHorizontalHeaderLabels([*self.FIXED_COLUMNS, *EMOTIONS])
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.NoSelection)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Stretch)
        for column in range(self.FIRST_PROBABILITY_COLUMN):
            header.setSectionResizeMode(column, QHeaderView.ResizeToContents)

    def show_faces(self, faces: Faces) -> None:
        self.setRowCount(len(faces))
        numbers = faces.track_ids if faces.track_ids is not None else range(1, len(faces) + 1)
        for row, (box, number, emotion, confidence) in enumerate(
                zip(faces.boxes, numbers, faces.emotions, faces.confidences)):
            colour = _qcolor(EMOTION_COLOURS_BGR.get(emotion, (255, 255, 255)))
            x, y, w, h = (int(v) for v in box)
            self.setItem(row, 0, QTableWidgetItem(f"#{int(number)} at {x},{y} ({w}x{h})"))
            expression = QTableWidgetItem(face_label(emotion, confidence))
            expression.setBackground(colour)
            expression.setForeground(QColor("black"))
            self.setItem(row, 1, expression)
            for offset, (name, p) in enumerate(ordered_probabilities(faces, row)):
                item = QTableWidgetItem(f"{p:.1%}")
                item.setData(Qt.UserRole, p)
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                if name == emotion:
                    item.setBackground(colour)
                    item.setForeground(QColor("black"))
                self.setItem(row, self.FIRST_PROBABILITY_COLUMN + offset, item)

    def probabilities(self, row: int) -> dict[str, float]:
        """The exact probabilities shown in ``row`` (for saving, copying and tests)."""
        return {name: float(self.item(row, self.FIRST_PROBABILITY_COLUMN + i).data(Qt.UserRole))
                for i, name in enumerate(EMOTIONS)}


class MainWindow(QMainWindow):
    """Source field + Start Camera / Stop / Upload Image / Save, the annotated view, a face table
    and a status line. ``recognizer`` is shared by uploads and the camera; by default the shipped
    model is loaded in the background as soon as the window opens."""

    annotation_shown = pyqtSignal()
    """An annotated image (upload or camera frame) is on screen."""
    error_shown = pyqtSignal(str)
    model_ready = pyqtSignal()
    analysis_finished = pyqtSignal()
    """An Analyze Video… job has ended (finished, stopped or failed) and the window is idle again."""

    def __init__(self, recognizer: SharedRecognizer | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("fervid: facial expression recognition")
        self.resize(1100, 720)
        self.shared = recognizer or SharedRecognizer()
        self.annotated: np.ndarray | None = None
        """The image on screen with its annotations, as BGR: what Save writes."""
        self.faces: Faces = Faces.empty()
        self.annotated_from: str | None = None
        self.camera: CameraWorker | None = None
        self._camera_failed = False
        self.analysis: AnalysisJob | None = None
        self._jobs: list = []
        self._build()
        self._loader: ModelLoader | None = None
        if self.shared.loaded:
            self.show_info("Ready.")
            QTimer.singleShot(0, self.model_ready.emit)
        else:
            self._loader = ModelLoader(self.shared)
            self._loader.loaded.connect(self._on_model_loaded)
            self._loader.failed.connect(self.show_error)
            self._loader.finished.connect(self._on_loader_finished)
            self.show_info("Loading the model…")
            self._loader.start()
        self._set_mode("idle")

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        self.source_edit = QLineEdit("0")
        self.source_edit.setPlaceholderText("camera index (0), video file, or rtsp:// / http:// URL")
        self.source_edit.setToolTip("What Start Camera opens: a device index, a video file or a URL")
        self.source_edit.returnPressed.connect(self.start_camera)
        self.browse_button = QPushButton("Video…")
        self.browse_button.setToolTip("Choose a video file to play as the camera")
        self.browse_button.clicked.connect(self.choose_video)
        self.start_button = QPushButton("Start Camera")
        self.start_button.clicked.connect(self.start_camera)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop_camera)
        self.upload_button = QPushButton("Upload Image…")
        self.upload_button.clicked.connect(self.choose_image)
        self.analyze_button = QPushButton("Analyze Video…")
        self.analyze_button.setToolTip("Analyse a recorded video: faces.csv, summary.json and timeline.png go in "
                                       "<video name>_fervid beside the video; Stop keeps the segments done, and "
                                       "analysing it again resumes (or shows a finished one's timeline)")
        self.analyze_button.clicked.connect(self.choose_video_to_analyse)
        self.stop_button.clicked.connect(self.stop_analysis)  # one Stop for the camera and the analysis
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save the annotated image")
        self.save_button.clicked.connect(self.choose_save_path)
        QShortcut(QKeySequence.Open, self, activated=self.choose_image)
        QShortcut(QKeySequence.Save, self, activated=self.choose_save_path)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Source:"))
        controls.addWidget(self.source_edit, 1)
        for button in (self.browse_button, self.start_button, self.stop_button, self.upload_button,
                       self.analyze_button, self.save_button):
            controls.addWidget(button)

        self.image_view = ImageView()
        self.face_table = FaceTable()
        splitter = QSplitter(Qt.Vertical)
        splitter.addWidget(self.image_view)
        splitter.addWidget(self.face_table)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)

        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("%v of %m frames (%p%)")
        self.progress_bar.setVisible(False)

        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)

        layout = QVBoxLayout()
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        central = QWidget()
        central.setLayout(layout)
        self.setCentralWidget(central)

    # -- status -------------------------------------------------------------------------------
    @property
    def status_is_error(self) -> bool:
        return bool(self.status_label.property("error"))

    def show_info(self, message: str) -> None:
        self.status_label.setProperty("error", False)
        self.status_label.setStyleSheet("color: palette(window-text);")
        self.status_label.setText(message)

    def show_error(self, message: str) -> None:
        """Errors go in the window, in red; the app stays usable (no modal dialog)."""
        self.status_label.setProperty("error", True)
        self.status_label.setStyleSheet("color: #c62828; font-weight: bold;")
        self.status_label.setText(message)
        self.error_shown.emit(message)

    def _set_mode(self, mode: str) -> None:
        """Enable the buttons that make sense: ``idle``, ``camera``, ``stopping``, ``image``,
        ``analysing`` or ``stopping analysis``."""
        idle = mode == "idle"
        self.start_button.setEnabled(idle)
        self.source_edit.setEnabled(idle)
        self.browse_button.setEnabled(idle)
        self.upload_button.setEnabled(idle)
        self.analyze_button.setEnabled(idle)
        self.stop_button.setEnabled(mode in ("camera", "analysing"))
        self.save_button.setEnabled(self.annotated is not None and mode in ("idle", "camera", "stopping"))
        self.mode = mode

    def _show_annotation(self, annotated: np.ndarray, faces: Faces, origin: str) -> None:
        self.annotated, self.faces, self.annotated_from = annotated, faces, origin
        self.image_view.set_image(annotated)
        self.face_table.show_faces(faces)
        self.save_button.setEnabled(self.mode != "image")
        self.annotation_shown.emit()

    def _on_model_loaded(self) -> None:
        if not self.status_is_error and self.status_label.text() == "Loading the model…":
            self.show_info("Ready.")
        self.model_ready.emit()

    def _on_loader_finished(self) -> None:
        self._loader = None

    # -- upload -------------------------------------------------------------------------------
    def choose_image(self) -> None:
        if not self.upload_button.isEnabled():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Upload image", "", IMAGE_FILTER)
        if path:
            self.upload_image(Path(path))

    def upload_image(self, path: str | Path) -> None:
        """Recognise every face in an image file (in the background) and show it annotated."""
        if self.mode != "idle":
            self.show_error("Stop the camera before uploading an image.")
            return
        job = ImageJob(self.shared, path)
        job.done.connect(self._on_image_done)
        job.failed.connect(self._on_image_failed)
        job.finished.connect(lambda: self._on_job_finished(job))
        self._jobs.append(job)
        self._set_mode("image")
        self.show_info(f"Recognising {Path(path).name}…" if self.shared.loaded
                       else f"Loading the model, then recognising {Path(path).name}…")
        job.start()

    def _on_image_done(self, path: str, annotated: np.ndarray, faces: Faces) -> None:
        self._set_mode("idle")
        self._show_annotation(annotated, faces, path)
        count = len(faces)
        summary = ", ".join(faces.emotions)
        self.show_info(f"{Path(path).name}: {count} face{'s' if count != 1 else ''}"
                       + (f" ({summary})" if summary else " found"))

    def _on_image_failed(self, message: str) -> None:
        self._set_mode("idle")
        self.show_error(message)

    def _on_job_finished(self, job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        if self.mode == "image" and not self._jobs:
            self._set_mode("idle")

    # -- save ---------------------------------------------------------------------------------
    def choose_save_path(self) -> None:
        if self.annotated is None or not self.save_button.isEnabled():
            return
        base = Path(self.annotated_from).stem if self.annotated_from else "frame"
        path, _ = QFileDialog.getSaveFileName(self, "Save annotated image", f"{base}_annotated.png",
                                              "PNG (*.png);;JPEG (*.jpg *.jpeg)")
        if path:
            self.save_annotated(Path(path))

    def save_annotated(self, path: str | Path) -> Path | None:
        """Write the annotated image; a name without an extension becomes a PNG. Returns the path
        written, or ``None`` after showing why it could not be written."""
        if self.annotated is None:
            self.show_error("Nothing to save yet: upload an image or start the camera.")
            return None
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".png")
        try:
            ok, encoded = cv2.imencode(path.suffix.lower(), self.annotated)
        except cv2.error:
            ok = False
        if not ok:
            self.show_error(f"Cannot save as {path.suffix!r}: use .png or .jpg")
            return None
        try:
            path.write_bytes(encoded.tobytes())
        except OSError as exc:
            self.show_error(f"Cannot save {path}: {exc.strerror or exc}")
            return None
        self.show_info(f"Saved {path}")
        return path

    # -- camera -------------------------------------------------------------------------------
    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Play a video file", "", VIDEO_FILTER)
        if path:
            self.source_edit.setText(path)

    def start_camera(self, source: str | None = None) -> bool:
        """Start live recognition of ``source`` (default: the source field). Returns whether a
        worker started; a source that does not parse is reported at once."""
        if self.mode != "idle":
            return False
        text = self.source_edit.text() if source is None or isinstance(source, bool) else str(source)
        try:
            spec = parse_source(text)
        except ValueError as exc:
            self.show_error(str(exc))
            return False
        worker = CameraWorker(self.shared, spec)
        worker.frame_ready.connect(self._on_camera_frame)
        worker.failed.connect(self._on_camera_failed)
        worker.status.connect(self._on_camera_status)
        worker.stats.connect(self._on_camera_stats)
        worker.finished.connect(self._on_camera_finished)
        self.camera, self._camera_failed = worker, False
        self._set_mode("camera")
        self.show_info(f"Starting {spec.display}…")
        worker.start()
        return True

    def stop_camera(self) -> None:
        """Ask the camera to stop; the buttons come back when its thread has ended."""
        if self.camera is None or self.mode != "camera":
            return
        self._set_mode("stopping")
        self.show_info("Stopping…")
        self.camera.stop()

    def _on_camera_frame(self, annotated: np.ndarray, faces: Faces) -> None:
        worker = self.camera
        if worker is None:
            return
        self._show_annotation(annotated, faces, worker.spec.display)
        if self.status_label.text().startswith(("Starting", "Opening", "Loading")) or \
                self.status_label.text().endswith("reconnecting…"):
            self.show_info(f"Live: {worker.spec.display}")

    def _on_camera_status(self, message: str) -> None:
        if self.mode in ("camera", "stopping") and not self._camera_failed:
            self.show_info(message)

    def _on_camera_stats(self, stats: CameraStats) -> None:
        self.statusBar().showMessage(f"{stats.fps:.1f} frames/s · {stats.faces} faces · "
                                     f"{stats.frames} frames · {stats.dropped} dropped while busy")

    def _on_camera_failed(self, message: str) -> None:
        self._camera_failed = True
        self.show_error(message)

    def _on_camera_finished(self) -> None:
        worker, self.camera = self.camera, None
        stopped_by_user = self.mode == "stopping"
        self._set_mode("idle")
        self.statusBar().clearMessage()
        if worker is not None and stopped_by_user and not self._camera_failed:
            self.show_info(f"Stopped {worker.spec.display} after {worker.frames_processed} frames.")

    # -- recorded video analysis ------------------------------------------------------------------
    def choose_video_to_analyse(self) -> None:
        if not self.analyze_button.isEnabled():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Analyze video", "", VIDEO_FILTER)
        if path:
            self.analyze_video(Path(path))

    def analyze_video(self, path: str | Path, out_dir: str | Path | None = None, *,
                      segment_s: float = DEFAULT_SEGMENT_S) -> bool:
        """Analyse a recorded video in the background into ``out_dir`` (default
        ``<video folder>/<video name>_fervid/``), the progress bar counting its frames, and show its
        timeline when done. A folder with this video's finished results shows them at once; one with
        committed segments of a stopped run is resumed. Returns whether a job started."""
        if self.mode != "idle":
            self.show_error("Stop the camera (or wait for the running job) before analysing a video.")
            return False
        video = Path(path)
        out = Path(out_dir) if out_dir is not None else default_out_dir(video)
        job = AnalysisJob(self.shared, video, out, segment_s=segment_s)
        job.progress.connect(self._on_analysis_progress)
        job.done.connect(self._on_analysis_done)
        job.failed.connect(self.show_error)
        job.finished.connect(self._on_analysis_finished)
        self.analysis = job
        self._set_mode("analysing")
        self.progress_bar.setRange(0, 0)  # busy until the first count arrives
        self.progress_bar.setVisible(True)
        self.show_info(f"Analysing {video.name} into {out}… (Stop keeps the segments done; "
                       f"analysing it again resumes)")
        job.start()
        return True

    def stop_analysis(self) -> None:
        """End the analysis after its current segment; the buttons come back when it has."""
        if self.analysis is None or self.mode != "analysing":
            return
        self._set_mode("stopping analysis")
        self.show_info("Stopping after the current segment: the segments done stay, analysing again resumes…")
        self.analysis.stop()

    def _on_analysis_progress(self, done: int, total: int, frames_per_s: float) -> None:
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)
        speed = f"{frames_per_s:.1f} frames/s · " if frames_per_s > 0 else ""
        self.statusBar().showMessage(f"{speed}{done} of {total} frames")

    def _on_analysis_done(self, report: AnalysisReport) -> None:
        if report.timeline is not None:
            self._show_annotation(report.timeline, Faces.empty(), str(report.out_dir / "timeline.png"))
        self.show_info(report.status_line())

    def _on_analysis_finished(self) -> None:
        self.analysis = None
        self.progress_bar.setVisible(False)
        self.statusBar().clearMessage()
        self._set_mode("idle")
        self.analysis_finished.emit()

    # -- shutdown -----------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Stop the camera and the analysis and let running jobs end, so no QThread outlives its
        window (an analysis ends after its current segment, which stays committed)."""
        if self.analysis is not None:
            self.analysis.stop()
            self.analysis.wait()
        if self.camera is not None:
            self.camera.stop()
            if not self.camera.wait(CAMERA_STOP_WAIT_MS):
                _orphans.append(self.camera)
        for job in list(self._jobs):
            job.wait()
        if self._loader is not None:
            self._loader.wait()
        super().closeEvent(event)


def _wait_for(window: MainWindow, want_annotation: bool, timeout_s: float) -> str | None:
    """Run the event loop until the annotation (or, without one, the model) is ready.
    Returns an error message, or ``None`` on success."""
    loop = QEventLoop()
    outcome: dict[str, str | None] = {"error": "timed out waiting for the window"}

    def succeed() -> None:
        outcome["error"] = None
        loop.quit()

    def fail(message: str) -> None:
        outcome["error"] = message
        loop.quit()

    if want_annotation:
        window.annotation_shown.connect(succeed)
    else:
        window.model_ready.connect(succeed)
    window.error_shown.connect(fail)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec_()
    return outcome["error"]


class AppError(FervidError):
    """``fervid app`` cannot open its window, or could not show the image or save the screenshot."""


def run_app(image: Path | None = None, screenshot: Path | None = None, *,
            recognizer: SharedRecognizer | None = None) -> int:
    """Open the desktop app, optionally with ``image`` uploaded; returns the exit status.

    With ``screenshot`` the app does not wait for the user: once the annotation (or, without an
    image, the loaded model) is shown it saves ``window.grab()`` as PNG and returns 0. If the
    image could not be shown, the window (with the reason on it) is still saved and AppError
    says why; so it does when the PNG cannot be written. A screenshot run without a display
    renders offscreen, so docs screenshots can be made on a headless machine; an interactive one
    raises AppError instead of letting Qt abort. Qt's harmless chatter is kept off stderr.
    """
    problem = headless_problem(screenshot is not None, "use --screenshot PNG")
    if problem:
        raise AppError(problem)
    with quiet_qt_messages():
        app = QApplication.instance() or QApplication(sys.argv[:1])
        window = MainWindow(recognizer=recognizer)
        window.show()
        if image is not None:
            QTimer.singleShot(0, lambda: window.upload_image(Path(image)))
        if screenshot is None:
            return app.exec_()
        error = _wait_for(window, want_annotation=image is not None, timeout_s=SCREENSHOT_TIMEOUT_S)
        app.processEvents()
        saved = window.grab().save(str(screenshot), "PNG")
        window.close()
    if error is not None:
        raise AppError(error)
    if not saved:
        raise AppError(f"cannot write screenshot {screenshot}")
    return 0
