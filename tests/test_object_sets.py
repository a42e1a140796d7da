"""Training on one's own objects: COCO JSON (polygons, RLE, crowd), instance label folders, binary mask folders."""

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_ois.cli import main
from napari_ois.core.errors import InputError
from napari_ois.datasets.object_sets import ObjectSet, polygons_to_mask, rle_counts, rle_to_mask
from napari_ois.train.real_data import CocoObjects
from napari_ois.train.trainer import TrainConfig, validation_items


def ring_mask():
    yy, xx = np.mgrid[:13, :17]
    d2 = (yy - 6) ** 2 + (xx - 8) ** 2
    return (d2 <= 25) & (d2 > 4)


# Written by pycocotools 2.0 (``mask.encode``), not by the decoder under test.
RING_RLE = "]1196L2OKM03OO00020N00011M0351N4JT1"
POLYGON = [10.0, 10.0, 50.0, 12.0, 40.0, 45.0, 12.0, 30.0]
POLYGON_RLE_60x64 = "Rc05g1:F5K1O001O001O00100O001O001O001O001O001O001O001O1O001O0010M2M3M3L4M3M3L4M3M3Moi0"


def test_compressed_rle_decodes_as_pycocotools_wrote_it():
    assert rle_counts("0T3") == [0, 100]  # a full 10 x 10 mask
    assert rle_to_mask("0T3", 10, 10).all()
    decoded = rle_to_mask(RING_RLE, 13, 17)
    assert decoded.shape == (13, 17) and (decoded == ring_mask()).all()
    with pytest.raises(InputError, match="covers"):
        rle_to_mask(RING_RLE, 13, 18)


def test_polygons_fill_the_pixels_pycocotools_fills():
    reference = rle_to_mask(POLYGON_RLE_60x64, 60, 64)
    mask = polygons_to_mask([POLYGON], 60, 64)
    assert (mask & reference).sum() / (mask | reference).sum() > 0.99


def write_coco(root, image_ids=(20, 21)):
    """Two RGB images; per image a polygon object, an uncompressed-RLE object and a crowd region."""
    (root / "images").mkdir(parents=True)
    images, annotations = [], []
    for image_id in image_ids:
        pixels = np.zeros((60, 64, 3), np.uint8)
        pixels[..., 0] = np.arange(64, dtype=np.uint8) * 3
        Image.fromarray(pixels).save(root / "images" / f"photo{image_id}.png")
        images.append({"id": image_id, "file_name": f"photo{image_id}.png", "height": 60, "width": 64})
        square = np.zeros((60, 64), bool)
        square[40:55, 5:20] = True
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, square.ravel(order="F").astype(int), 2])), prepend=0)
        annotations += [
            {"id": 100 * image_id + 1, "image_id": image_id, "iscrowd": 0, "segmentation": [POLYGON]},
            {"id": 100 * image_id + 2, "image_id": image_id, "iscrowd": 0,
             "segmentation": {"size": [60, 64], "counts": [int(r) for r in runs]}},
            {"id": 100 * image_id + 3, "image_id": image_id, "iscrowd": 1,
             "segmentation": [[50.0, 40.0, 60.0, 40.0, 60.0, 55.0, 50.0, 55.0]]},
        ]
    (root / "annotations").mkdir()
    path = root / "annotations" / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": []}))
    return path, square


def test_coco_json_objects_with_their_neighbours_and_crowd(tmp_path):
    path, square = write_coco(tmp_path, image_ids=(21,))
    objects = ObjectSet(path)
    assert [r.name for r in objects.records] == ["photo21#2101", "photo21#2102"]  # the crowd is no target
    image, polygon, others = objects.read(0)
    assert image.shape == (60, 64, 3) and image.dtype == np.float32
    assert image[0, 10, 0] == pytest.approx(30 / 255)
    assert (polygon == polygons_to_mask([POLYGON], 60, 64)).all()
    assert (objects.read(1)[1] == square).all()
    # The other object and the crowd region are "other objects"; nothing of the target is.
    assert others[square].all() and others[42:53, 51:59].all() and not (others & polygon).any()
    assert others.sum() == square.sum() + 10 * 15


def test_a_folder_with_one_json_is_read_as_coco(tmp_path):
    write_coco(tmp_path)
    assert len(ObjectSet(tmp_path / "annotations")) == 4


def test_instance_label_folder_of_16_bit_microscopy(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(0)
    frame = (1000 + rng.integers(0, 50, (48, 48))).astype(np.uint16)
    labels = np.zeros((48, 48), np.uint16)
    for cell, (y, x) in enumerate([(10, 10), (30, 12), (24, 36)], start=1):
        labels[y - 5 : y + 5, x - 5 : x + 5] = cell
        frame[labels == cell] += 3000
    tifffile.imwrite(tmp_path / "images" / "well_a1.tif", frame)
    tifffile.imwrite(tmp_path / "masks" / "well_a1.tif", labels)
    objects = ObjectSet(tmp_path)
    assert [r.name for r in objects.records] == ["well_a1#1", "well_a1#2", "well_a1#3"]
    image, cell, others = objects.read(1)
    # 16-bit intensities are mapped by percentiles, as the app shows them: cells bright, background dark.
    assert image[cell].mean() > 0.9 and image[labels == 0].mean() < 0.1
    assert (cell == (labels == 2)).all() and (others == ((labels > 0) & (labels != 2))).all()


def test_binary_masks_of_the_same_image_id_are_each_others_neighbours(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "gt").mkdir()
    boxes = {"cat00_000000000007": (5, 15), "dog00_000000000007": (20, 30), "cat00_000000000008": (5, 15)}
    for name, box in boxes.items():
        Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "img" / f"{name}.jpg")
        mask = np.zeros((40, 40), np.uint8)
        mask[box[0] : box[1], box[0] : box[1]] = 255
        Image.fromarray(mask).save(tmp_path / "gt" / f"{name}.png")
    objects = ObjectSet(tmp_path)
    _, cat, others = objects.read(0)
    assert cat[5:15, 5:15].all() and others[20:30, 20:30].all() and others.sum() == 100
    assert not objects.read(1)[2].any()  # image 8 has one object


@pytest.mark.parametrize("damage, message", [
    ("missing image", "not found, e.g. 'photo20.png'"),
    ("not json", "is not a COCO instances file"),
    ("no images key", "is not a COCO instances file"),
])
def test_broken_coco_json_says_what_is_wrong(tmp_path, damage, message):
    path, _ = write_coco(tmp_path)
    if damage == "missing image":
        (tmp_path / "images" / "photo20.png").unlink()
    elif damage == "not json":
        path.write_text("{not json")
    else:
        path.write_text(json.dumps({"annotations": []}))
    with pytest.raises(InputError, match=message):
        ObjectSet(path)


def test_unknown_layouts_and_size_mismatches_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ObjectSet(tmp_path / "nowhere")
    with pytest.raises(InputError, match="no training objects found"):
        ObjectSet(tmp_path)
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(InputError, match="neither a COCO JSON file nor a folder"):
        ObjectSet(tmp_path / "notes.txt")
    (tmp_path / "img").mkdir()
    (tmp_path / "gt").mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "img" / "a.png")
    Image.fromarray(np.full((30, 40), 255, np.uint8)).save(tmp_path / "gt" / "a.png")
    with pytest.raises(InputError, match="differ in size"):
        ObjectSet(tmp_path).read(0)


def test_validation_holds_out_whole_images_of_ones_own_data(tmp_path):
    path, _ = write_coco(tmp_path)  # image 20 is held out, image 21 trained on
    cfg = TrainConfig(objects_root=str(path), validation_items=30)
    assert [item.name for item in validation_items(cfg)] == ["photo20#2001", "photo20#2002"]
    training = CocoObjects(path, exclude=lambda key: key == "20")
    assert {r.image_key for r in training.records} == {"21"}


def test_a_set_whose_every_image_is_held_out_trains_on_all_and_validates_on_none(tmp_path):
    path, _ = write_coco(tmp_path, image_ids=(40,))
    assert validation_items(TrainConfig(objects_root=str(path))) == []
    assert len(CocoObjects(path, exclude=lambda key: True)) == 2


def test_train_cli_fine_tunes_on_a_coco_json(tmp_path, capsys):
    path, _ = write_coco(tmp_path)
    run = tmp_path / "run"
    args = ["train", "--out", str(run), "--preset", "test", "--image-size", "64", "--batch-size", "2",
            "--steps", "2", "--threads", "1", "--validate-every", "2", "--objects", str(path),
            "--weights", "coco=1"]
    assert main(args) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    validation = [r["validation"] for r in log if "validation" in r]
    assert validation and validation[0]["n"] == 2  # the two objects of held-out image 20
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()


def test_a_malformed_rle_stops_training_with_a_one_line_error(tmp_path, capsys):
    path, _ = write_coco(tmp_path)
    data = json.loads(path.read_text())
    for ann in data["annotations"]:
        ann["segmentation"] = {"size": [60, 64], "counts": RING_RLE}  # 13 x 17 pixels of runs
    path.write_text(json.dumps(data))
    args = ["train", "--out", str(tmp_path / "run"), "--preset", "test", "--image-size", "64", "--batch-size", "2",
            "--steps", "1", "--threads", "1", "--validate-every", "0", "--objects", str(path), "--weights", "coco=1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-ois: error: RLE covers 221 pixels") and "Traceback" not in err


def test_eval_clicks_reads_a_coco_json(tmp_path, capsys):
    path, _ = write_coco(tmp_path)
    out = tmp_path / "clicks.json"
    assert main(["eval", "clicks", str(path), "--format", "coco_json", "--backend", "classical",
                 "--max-clicks", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n"] == 4 and sorted(result["per_item"]) == ["photo20#2001", "photo20#2002", "photo21#2101",
                                                               "photo21#2102"]
    # Each object's own click counts, from the exact IoUs, average to the summary's NoC.
    assert sorted(result["per_item_noc"]) == sorted(result["per_item"])
    for key in ("85", "90", "95"):
        counts = [result["per_item_noc"][name][key] for name in result["per_item"]]
        assert all(1 <= k <= 2 for k in counts)
        assert np.mean(counts) == pytest.approx(result["noc"][key])


def test_negative_label_ids_are_refused(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    tifffile.imwrite(tmp_path / "images" / "a.tif", np.zeros((20, 20), np.uint16))
    labels = np.zeros((20, 20), np.int32)
    labels[2:5, 2:5], labels[10:15, 10:15] = -1, 2
    tifffile.imwrite(tmp_path / "labels" / "a.tif", labels)
    with pytest.raises(InputError, match="negative ids"):
        ObjectSet(tmp_path)
