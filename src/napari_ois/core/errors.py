"""Errors that carry a message meant for the user (napari notification / stderr)."""


class OISError(Exception):
    """Base class for errors whose message is shown to the user as is."""


class InputError(OISError):
    """Bad input: unreadable file, wrong dimensions, clicks outside the image, ..."""


class BackendUnavailable(OISError):
    """A segmentation backend cannot be used (missing checkpoint, missing package)."""
