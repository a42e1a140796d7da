"""File suffixes by which inputs and outputs are recognised."""

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp") + TIFF_SUFFIXES
FRAME_SUFFIXES = IMAGE_SUFFIXES  # files taken from a folder of frames
ZARR_SUFFIX = ".zarr"
