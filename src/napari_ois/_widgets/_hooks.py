"""Book-keeping of what the widget attaches to the viewer, so closing it removes all of it.

Kept apart from the Qt widget so that it can run from ``QObject.destroyed`` too, when
the widget's C++ side is already gone.
"""

from __future__ import annotations

from typing import Any, Callable

from napari.utils.key_bindings import bind_key, coerce_keybinding


class Hooks:
    """Event connections, viewer keybindings and layer mouse callbacks of one widget.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose keymap receives the bindings.
    """

    def __init__(self, viewer: Any):
        self.viewer = viewer
        self.attached = False
        self._events: list[tuple[Any, Callable, str]] = []
        self._mouse: list[tuple[Any, Callable, str]] = []
        self._keys: dict[Any, tuple[Callable, Callable | None]] = {}

    def connect(self, emitter, callback: Callable, group: str = "viewer") -> None:
        """``emitter.connect(callback)``, remembered for :meth:`remove_all`."""
        emitter.connect(callback)
        self._events.append((emitter, callback, group))

    def add_mouse_callback(self, layer, callback: Callable, group: str = "layers") -> None:
        """Run ``callback(layer, event)`` on mouse press in ``layer``, before its mode's own."""
        if callback not in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.insert(0, callback)
        self._mouse.append((layer, callback, group))

    def bind_key(self, key: str, func: Callable) -> None:
        """Bind ``func(viewer)`` to ``key`` on the viewer; the previous binding is restored later."""
        combo = coerce_keybinding(key)
        previous = bind_key(self.viewer.keymap, combo, func, overwrite=True)
        self._keys[combo] = (func, previous)

    def disconnect_group(self, group: str) -> None:
        """Undo the connections and mouse callbacks of one group."""
        keep = []
        for emitter, callback, g in self._events:
            if g == group:
                _quiet(emitter.disconnect, callback)
            else:
                keep.append((emitter, callback, g))
        self._events = keep
        keep = []
        for layer, callback, g in self._mouse:
            if g == group:
                if callback in layer.mouse_drag_callbacks:
                    layer.mouse_drag_callbacks.remove(callback)
            else:
                keep.append((layer, callback, g))
        self._mouse = keep

    def remove_all(self, *_: Any) -> None:
        """Disconnect everything and restore the viewer's keymap (idempotent)."""
        for group in {g for *_, g in self._events} | {g for *_, g in self._mouse}:
            self.disconnect_group(group)
        keymap = self.viewer.keymap
        for combo, (func, previous) in self._keys.items():
            if keymap.get(combo) is func:  # someone else may have rebound it since
                bind_key(keymap, combo, previous, overwrite=True)
        self._keys.clear()
        self.attached = False


def _quiet(function: Callable, *args: Any) -> None:
    try:
        function(*args)
    except (RuntimeError, ValueError, TypeError):  # already disconnected or deleted
        pass
