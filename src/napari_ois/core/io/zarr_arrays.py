"""Recognising zarr folders and finding the one array a zarr path stands for."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


def open_zarr_array(path: Path):
    """The array of a zarr path: an array, an OME-Zarr multiscale (level 0) or a one-array group."""
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise InputError(f"cannot read zarr {path}: {exc}") from None
    if isinstance(node, zarr.Group):
        attrs = dict(node.attrs)
        multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
        if multiscales:
            node = node[multiscales[0]["datasets"][0]["path"]]
        else:
            arrays = [name for name, _ in node.arrays()]
            if len(arrays) != 1:
                raise InputError(
                    f"zarr group {path} holds {len(arrays)} arrays ({', '.join(arrays) or 'none'}); "
                    "give the path of one array"
                )
            node = node[arrays[0]]
    return node


def is_zarr_dir(path: Path) -> bool:
    return any((path / name).exists() for name in ("zarr.json", ".zarray", ".zgroup"))
