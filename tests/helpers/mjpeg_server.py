"""A real MJPEG-over-HTTP camera for tests: ``multipart/x-mixed-replace`` JPEG frames.

Network cameras commonly serve this format, and OpenCV's FFmpeg backend reads it, so a test
can point a ``FrameSource`` at ``http://127.0.0.1:PORT/stream.mjpg`` and then stop and restart
the "camera" to exercise loss and reconnection. ``stop()`` closes the listening socket and
every open streaming connection (the client sees the stream end, as when a camera loses
power); ``start()`` after ``stop()`` listens on the same port again. Setting ``frozen`` keeps
connections open but sends nothing, like a camera that hangs.
"""
from __future__ import annotations

import functools
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

BOUNDARY = "fervidframe"
STREAM_PATH = "/stream.mjpg"


@functools.lru_cache(maxsize=4)
def jpeg_frames_from(video: str, count: int = 30, quality: int = 75) -> tuple[bytes, ...]:
    """The first ``count`` frames of a video as JPEG bytes (decoded once per process)."""
    cap = cv2.VideoCapture(video, cv2.CAP_FFMPEG)
    frames = []
    try:
        while len(frames) < count:
            ok, image = cap.read()
            if not ok:
                break
            ok, encoded = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
            if ok:
                frames.append(encoded.tobytes())
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"no frames could be read from {video}")
    return tuple(frames)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # restart on the same port while old connections sit in TIME_WAIT

    def __init__(self, address, owner: "MjpegServer"):
        self.owner = owner
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self):
        owner = self.server.owner
        if self.path.split("?", 1)[0] != STREAM_PATH:
            self.send_error(404)
            return
        self.close_connection = True
        stop = owner._stop_event
        owner._register(self.connection)
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            index = 0
            while not stop.is_set():
                if owner.frozen.is_set():  # a hung camera: connection open, nothing sent
                    stop.wait(0.05)
                    continue
                jpeg = owner.frames[index % len(owner.frames)]
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                self.wfile.flush()
                index += 1
                owner.frames_sent += 1
                stop.wait(1.0 / owner.fps)
        except OSError:
            pass  # the client went away, or stop() shut the connection down under us
        finally:
            owner._unregister(self.connection)


class MjpegServer:
    """``start()`` / ``stop()`` an MJPEG camera on 127.0.0.1; reusable, also as a context manager."""

    def __init__(self, frames: tuple[bytes, ...] | list[bytes], fps: float = 20.0,
                 host: str = "127.0.0.1", port: int = 0):
        if not frames:
            raise ValueError("need at least one JPEG frame")
        self.frames = tuple(frames)
        self.fps = fps
        self.host = host
        self.port = port
        self.frames_sent = 0
        self.frozen = threading.Event()
        """While set, connections stay open but no frames are sent (a hung camera)."""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_video(cls, video: str | Path, fps: float = 20.0, count: int = 30, **kwargs) -> "MjpegServer":
        return cls(jpeg_frames_from(str(video), count), fps=fps, **kwargs)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{STREAM_PATH}"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def _register(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections[connection] = threading.current_thread()

    def _unregister(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.pop(connection, None)

    def start(self) -> "MjpegServer":
        """Listen (on the port of the previous start, if any) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("already running")
        self._stop_event = threading.Event()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mjpeg-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and end every streaming connection; handler threads return."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stop_event.set()
        server.shutdown()  # serve_forever returns: no new connections are accepted
        server.server_close()  # the listening socket is closed
        self._thread.join(timeout)
        with self._lock:
            connections = dict(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # unblocks a handler stuck in a send
            except OSError:
                pass
        for thread in connections.values():
            thread.join(timeout)
        if self.open_connections:
            raise RuntimeError(f"{self.open_connections} streaming connection(s) did not close")

    def __enter__(self) -> "MjpegServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
