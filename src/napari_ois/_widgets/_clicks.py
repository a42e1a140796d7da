"""Clicks of the widget, with the encoder kept off the GUI thread.

A click on a frame whose embedding is cached is applied at once (only the light prompt
path runs). A click on a frame not yet encoded is queued, a napari worker encodes the
frame (``session.cache.get`` is thread-safe), and the queue is applied in order when the
worker returns: the event loop keeps running meanwhile (status line: "Encoding frame
N…"). While anything is queued, later clicks queue behind it, so the order of clicks is
the order of the masks.

When the slider rests on a frame for a moment, that frame is encoded in the background
(if the cache has room), so the first click there is instant too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from napari.qt.threading import create_worker
from qtpy.QtCore import QTimer

from napari_ois.core.clicks import Click
from napari_ois.core.errors import OISError

from . import _layers

PREFETCH_DELAY_MS = 400  # the slider must rest this long before its frame is encoded


@dataclass
class _Queued:
    """A click (or a box, see ``_boxes.py``) waiting for its frame's encode, and the session
    (held position) it belongs to."""

    prompt: Any  # Click or _boxes._BoxRequest: both have .frame
    session: Any


class ClickMixin:
    """Queued clicks and background encodes of :class:`AnnotateObjectsWidget`."""

    def _init_clicks(self) -> None:
        self._queued: list[_Queued] = []
        self._encoding = None  # (session, frame) the running encode worker is computing
        self._encode_worker = None
        self._prefetch_timer = QTimer(self)
        self._prefetch_timer.setSingleShot(True)
        self._prefetch_timer.timeout.connect(self._prefetch_displayed_frame)

    @property
    def clicks_pending(self) -> int:
        """Clicks and boxes waiting for their frame to be encoded."""
        return len(self._queued)

    def pending_clicks(self) -> list[tuple[Click, Any]]:
        """(click, session) of the queued clicks, oldest first (the prompts layer shows them)."""
        return [(q.prompt, q.session) for q in self._queued if isinstance(q.prompt, Click)]

    def _queue_prompt(self, prompt, session) -> None:
        """Queue a click or box behind the others until its frame is encoded."""
        self._queued.append(_Queued(prompt, session))
        self._drain_clicks()

    def _apply_prompt(self, prompt, session) -> bool:
        """Apply a queued click or box (its frame is encoded now)."""
        if isinstance(prompt, Click):
            return self._apply_click(prompt, session)
        done = self._apply_box(prompt, session)
        self._sync_boxes()  # the drawn rectangle was cleared while it waited for the encode
        return done

    # ------------------------------------------------------------- clicks
    def _click_at(self, point, positive: bool, wait: bool = False) -> bool:
        """Add a click at a prompts-layer data point; errors become notifications.

        ``wait``: encode an uncached frame here, on this thread (scripted clicks that need
        their result at once, e.g. a prompts CSV); else the click is queued and the frame
        encoded by a worker. Returns whether the click was accepted (applied or queued).
        """
        try:
            self._apply_contrast()
            n_leading = _layers.leading_axes(self.image_layer) if self.image_layer is not None else 0
            click, fixed = _layers.click_from_point(point, self.axis, n_leading, self.object_spin.value(), positive)
            session = self._session_for(fixed)
            session.check_click(click)  # a bad click is refused now, not after an encode
        except Exception as exc:  # noqa: BLE001 (reported, see _click_failed)
            return self._click_failed(exc)
        if not wait and (self._queued or not session.cache.is_ready(click.frame)):
            self._queue_prompt(click, session)
            return True
        return self._apply_click(click, session)

    def _apply_click(self, click: Click, session) -> bool:
        """Run the prompt path for a click (its frame is encoded, or ``wait``) and show the mask."""
        try:
            prediction = session.add_click(click)
        except Exception as exc:  # noqa: BLE001 (reported, see _click_failed)
            return self._click_failed(exc)
        self._refresh_labels()
        kind = "positive" if click.positive else "negative"
        # The mask's size, not the backend's raw score: that score has no scale on a clicked
        # frame (only propagated frames get a predicted IoU, see core/quality.py).
        area = int(np.count_nonzero(np.asarray(prediction.prob) > session.config.threshold))
        self._set_status(
            f"Object {click.object_id}, frame {click.frame}: {kind} click at "
            f"(y={click.y:g}, x={click.x:g}); mask {area:,} px."
        )
        return True

    def _click_failed(self, exc: Exception) -> bool:
        """Report a refused or failed click as a notification (a backend bug must not take
        napari down); returns False (not accepted)."""
        if isinstance(exc, OISError):
            self._error(str(exc), warning=True)
        else:
            self._error(f"segmentation failed: {exc!r}")
        return False

    def _drain_clicks(self) -> None:
        """Apply queued clicks in order while their frames are encoded; start an encode for the first that is not."""
        while self._queued and self._encode_worker is None:
            head = self._queued[0]
            if head.session.cache.is_ready(head.prompt.frame):
                self._queued.pop(0)
                self._apply_prompt(head.prompt, head.session)
                continue
            self._start_encode(head.session, head.prompt.frame)
        if self._queued:
            n = len(self._queued)
            self._set_status(f"Encoding frame {self._encoding[1]}… ({n} prompt{'s' if n > 1 else ''} waiting; "
                             "napari stays responsive)")
        QTimer.singleShot(0, self._sync_points)

    def _start_encode(self, session, frame: int, prefetch: bool = False) -> None:
        worker = create_worker(session.cache.get, frame, _start_thread=False)
        worker.returned.connect(lambda _embedding: self._on_encoded())
        worker.errored.connect(lambda exc: self._on_encode_error(frame, exc, prefetch))
        self._encode_worker, self._encoding = worker, (session, frame)
        worker.start()

    def _on_encoded(self) -> None:
        self._encode_worker, self._encoding = None, None
        self._drain_clicks()

    def _on_encode_error(self, frame: int, exc: Exception, prefetch: bool) -> None:
        self._encode_worker, self._encoding = None, None
        dropped = [q for q in self._queued if q.prompt.frame == frame]
        self._queued = [q for q in self._queued if q.prompt.frame != frame]
        if not prefetch or dropped:
            self._error(f"could not encode frame {frame}: {exc!r}"
                        + (f" ({len(dropped)} prompt(s) not applied)" if dropped else ""))
        self._drain_clicks()

    # ----------------------------------------------------------- prefetch
    def _on_slider_moved(self, event=None) -> None:
        """(Re)start the rest timer: the displayed frame is encoded once the slider rests."""
        self._prefetch_timer.start(PREFETCH_DELAY_MS)

    def _prefetch_displayed_frame(self) -> None:
        """Encode the displayed frame in the background if it is not cached and the cache has room."""
        if self._encode_worker is not None or self.worker is not None or self.image_layer is None:
            return  # busy: an encode or a propagation run is going
        try:
            session = self._session_for(self._current_fixed())
            frame = self.current_frame()
        except OISError:
            return
        cache = session.cache
        if cache.is_ready(frame) or (len(cache) and cache.nbytes * (len(cache) + 1) / len(cache) > cache.max_bytes):
            return  # cached, or one more embedding would push another one out
        self._start_encode(session, frame, prefetch=True)
