"""slayer.obd: box metrics and NMS against hand-computed values, YOLO targets, a tiny-YOLO SDNN
training on synthetic boxes, and the BDD100K reader on a synthetic local dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import slayerc.slayer as slayer

M = slayer.obd.bbox.metrics
U = slayer.obd.bbox.utils


def test_iou_variants_equal_hand_computed_values():
    a = torch.tensor([[1.0, 1.0, 2.0, 2.0]])                       # [0, 2] x [0, 2]
    b = torch.tensor([[2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0], [5.0, 5.0, 1.0, 1.0]])
    iou = M.bbox_iou(a, b)
    assert iou.shape == (1, 3)
    np.testing.assert_allclose(iou[0].numpy(), [1 / 7, 1.0, 0.0], atol=1e-6)  # 1 / (4 + 4 − 1)
    wh = M.wh_iou(torch.tensor([[2.0, 2.0]]), torch.tensor([[1.0, 4.0]]))
    assert float(wh) == pytest.approx(2 / 6)                        # min-w·min-h = 2, union 6
    # CIoU: IoU − ρ²/c², ρ² = 1² + 1², enclosing box [0, 3]²: c² = 18, same aspect: v = 0
    ciou = M.bbox_ciou(a, b[:1])
    assert float(ciou) == pytest.approx(1 / 7 - 2 / 18, abs=1e-6)
    assert float(M.bbox_ciou(a, a)) == pytest.approx(1.0, abs=1e-6)


def test_box_formats():
    xywh = torch.tensor([[0.5, 0.5, 0.2, 0.4, 0.9, 1.0]])
    xxyy = U.xywh_to_xxyy([xywh])[0]
    np.testing.assert_allclose(xxyy[0, :4].numpy(), [0.4, 0.3, 0.6, 0.7], atol=1e-6)
    assert torch.allclose(U.xxyy_to_xywh([xxyy])[0], xywh)
    pix = U.denormalize_bboxes([xywh.clone()], height=100, width=200)[0]
    np.testing.assert_allclose(pix[0, :4].numpy(), [100, 50, 40, 40], atol=1e-4)


def _raw(x, y, w, h, obj, cls):
    return [x, y, w, h, obj, *cls]


def test_nms_keeps_the_best_of_overlapping_boxes_per_class():
    pred = torch.tensor([
        _raw(0.50, 0.50, 0.2, 0.2, 0.9, [1.0, 0.0]),   # A: score 0.9
        _raw(0.52, 0.50, 0.2, 0.2, 0.8, [1.0, 0.0]),   # overlaps A (IoU 0.82): dropped
        _raw(0.10, 0.10, 0.1, 0.1, 0.7, [0.9, 0.1]),   # far away: kept, score 0.63
        _raw(0.50, 0.50, 0.2, 0.2, 0.6, [0.0, 1.0]),   # same place, other class: kept
        _raw(0.90, 0.90, 0.1, 0.1, 0.3, [1.0, 0.0]),   # below the confidence threshold
    ])
    out = U.non_maximum_suppression([pred], conf_threshold=0.5, nms_threshold=0.4)[0]
    assert out.shape == (3, 6)
    np.testing.assert_allclose(out[:, 4].numpy(), [0.9, 0.63, 0.6], atol=1e-6)
    assert out[:, 5].tolist() == [0, 0, 1]
    assert out[1, :2].tolist() == pytest.approx([0.1, 0.1])
    assert U.non_maximum_suppression([pred], conf_threshold=0.95)[0].shape == (0, 6)


def test_average_precision_equals_the_hand_computed_value():
    # two targets of class 0; predictions by confidence: hit, miss, hit
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1: the 101-point envelope is 1 for r ≤ 0.5
    # (51 points) and 2/3 above (50 points)
    targets = torch.tensor([[0.2, 0.2, 0.2, 0.2, 1, 0], [0.7, 0.7, 0.2, 0.2, 1, 0]])
    outputs = torch.tensor([[0.2, 0.2, 0.2, 0.2, 0.9, 0], [0.45, 0.9, 0.1, 0.1, 0.8, 0],
                            [0.7, 0.7, 0.2, 0.2, 0.7, 0]])
    expected = (51 + 50 * 2 / 3) / 101
    precision, recall, ap, f1, classes = M.average_precision_metrics([outputs], [targets], 0.5)
    assert ap[0][0, 0] == pytest.approx(expected)
    assert precision[0][0, 0] == pytest.approx(2 / 3) and recall[0][0, 0] == pytest.approx(1)
    assert classes[0].tolist() == [0]
    stats = M.APstats(np.array([0.5, 0.75]))
    stats.update([outputs], [targets])
    assert stats[0.5] == pytest.approx(expected) and stats[:] == pytest.approx(expected)
    assert M.compute_ap(np.array([1.0, 1.0]), np.array([0.5, 1.0])) == pytest.approx(1.0)
    # a shifted box (IoU 1/7 with its target) is a miss at 0.5: AP 1/2 envelope
    shifted = outputs.clone()
    shifted[2, :2] = torch.tensor([0.8, 0.8])
    ap2 = M.average_precision_metrics([shifted], [targets], 0.5)[2][0][0, 0]
    assert ap2 == pytest.approx(51 / 101)


def test_annotation_round_trip():
    ann = {"annotation": {"size": {"height": 100, "width": 200}, "object": [
        {"id": 1, "name": "car", "bndbox": {"xmin": 20, "ymin": 10, "xmax": 60, "ymax": 50}},
        {"id": 0, "name": "bus", "bndbox": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 100}},
        {"id": 0, "name": "bad", "bndbox": {"xmin": 5, "ymin": 5, "xmax": 5, "ymax": 9}}]}}
    boxes = U.tensor_from_annotation(ann)
    assert boxes.shape == (2, 6)  # the empty box is dropped; largest first
    np.testing.assert_allclose(boxes[1].numpy(), [0.2, 0.3, 0.2, 0.4, 1.0, 1.0], atol=1e-6)
    back = U.annotation_from_tensor(boxes, {"height": 100, "width": 200}, ["bus", "car"])
    car = back["annotation"]["object"][1]
    assert car["name"] == "car"
    assert car["bndbox"] == pytest.approx({"xmin": 20, "ymin": 10, "xmax": 60, "ymax": 50})
    flipped = U.fliplr_bounding_boxes(U.copy_annotation(ann))
    assert flipped["annotation"]["object"][0]["bndbox"]["xmin"] == 140  # 200 − 60


def test_yolo_target_places_each_box_on_its_cell_and_best_anchor():
    anchors = [[(0.5, 0.5), (0.1, 0.1)], [(0.05, 0.05), (0.02, 0.02)]]
    target = slayer.obd.YOLOtarget(anchors, scales=[(2, 2), (4, 4)], num_classes=3)
    tgts = target.forward(torch.tensor([[0.3, 0.6, 0.5, 0.5, 1.0, 2.0]]))
    assert [t.shape for t in tgts] == [(2, 2, 2, 6), (2, 4, 4, 6)]
    # scale 0 (2x2): best anchor 0 (w/h iou 1), cell (i, j) = (int(0.6·2), int(0.3·2)) = (1, 0)
    np.testing.assert_allclose(tgts[0][0, 1, 0].numpy(), [0.6, 0.2, 1.0, 1.0, 1.0, 2.0],
                               atol=1e-6)
    assert int((tgts[0][..., 4] == 1).sum()) == 1
    # scale 1 (4x4): cell (2, 1), its best anchor is 0 (0.05 > 0.02)
    np.testing.assert_allclose(tgts[1][0, 2, 1].numpy(), [0.2, 0.4, 2.0, 2.0, 1.0, 2.0],
                               atol=1e-6)


def _synthetic_batch(n, t, size, rng):
    frames = torch.rand(n, 3, size, size, t, generator=rng) * 0.2
    samples = []
    for k in range(n):
        x0, y0 = 8 + 16 * k, 16
        frames[k, :, y0:y0 + 24, x0:x0 + 24, :] = 1.0  # a bright square object
        ann = {"annotation": {"size": {"height": size, "width": size}, "object": [
            {"id": k % 2, "name": str(k % 2),
             "bndbox": {"xmin": x0, "ymin": y0, "xmax": x0 + 24, "ymax": y0 + 24}}]}}
        samples.append((frames[k], [ann] * t))
    return samples


def test_tiny_yolo_sdnn_builds_and_trains_on_synthetic_boxes():
    torch.manual_seed(0)
    net = slayer.obd.models.tiny_yolov3_str.Network(num_classes=2)
    net.init_model((64, 64, 3))
    assert net.scale == [(2, 2), (4, 4)]
    target = slayer.obd.YOLOtarget(net.anchors, net.scale, num_classes=2)
    frames, targets, boxes = target.collate_fn(_synthetic_batch(2, 2, 64,
                                                                torch.Generator().manual_seed(1)))
    assert frames.shape == (2, 3, 64, 64, 2) and targets[0].shape == (2, 3, 2, 2, 6, 2)
    assert len(boxes) == 2 and boxes[0][1].shape == (1, 6)
    criterion = slayer.obd.YOLOLoss(net.anchors)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)
    watched = [net.head2_blocks[1].weight, net.backend_blocks[0].synapse.weight_v]
    before = [w.detach().clone() for w in watched]
    losses = []
    for _ in range(2):
        net.train()
        output, count = net(frames)
        loss, terms = criterion(output, targets)
        assert torch.isfinite(loss) and terms.shape == (5,)
        optimizer.zero_grad()
        loss.backward()
        net.validate_gradients()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert count.shape == (1, 18)
    assert all(not torch.equal(b, w.detach()) for b, w in zip(before, watched))
    net.eval()
    with torch.no_grad():
        output, _ = net(frames)
    assert output.shape == (2, 3 * 4 + 3 * 16, 7, 2)  # both heads' boxes
    assert float(output[..., 4, :].min()) >= 0 and float(output[..., 4, :].max()) <= 1
    dets = U.non_maximum_suppression([output[0, ..., -1]], conf_threshold=0.0)
    assert dets[0].shape[1] == 6


def test_bdd_reader_on_a_synthetic_local_dataset(tmp_path):
    image_mod = pytest.importorskip("PIL.Image")
    labels = tmp_path / "labels" / "box_track_20" / "val"
    images = tmp_path / "images" / "track" / "val" / "vid0"
    labels.mkdir(parents=True)
    images.mkdir(parents=True)
    frames = []
    for k in range(2):
        name = f"f{k}.png"
        pixels = np.zeros((20, 40, 3), dtype=np.uint8)
        pixels[:, :20] = 255
        image_mod.fromarray(pixels).save(images / name)
        frames.append({"name": name, "labels": [
            {"category": "car", "box2d": {"x1": 4, "y1": 2, "x2": 12, "y2": 10}},
            {"category": "bike", "box2d": {"x1": 20, "y1": 10, "x2": 30, "y2": 20}}]})
    (labels / "vid0.json").write_text(json.dumps(frames))
    data = slayer.obd.dataset.BDD(root=str(tmp_path), size=(10, 20), seq_len=3)
    assert len(data) == 1 and data.classes == ["bike", "car"]
    video, anns = data[0]
    assert video.shape == (3, 10, 20, 3) and len(anns) == 3  # the last frame repeats
    assert float(video[0, 5, 2, 0]) == pytest.approx(1.0) and float(video[0, 5, 17, 0]) == 0
    car = anns[0]["annotation"]["object"][0]
    assert car["id"] == 1 and car["bndbox"] == pytest.approx(
        {"xmin": 2, "ymin": 1, "xmax": 6, "ymax": 5})  # halved with the frame
    with pytest.raises(FileNotFoundError, match="labels"):
        slayer.obd.dataset.BDD(root=str(tmp_path / "nowhere"))


def test_yolo_kp_runs_and_exports_a_netlist(tmp_path):
    h5py = pytest.importorskip("h5py")
    torch.manual_seed(0)
    net = slayer.obd.models.yolo_kp.Network(num_classes=2).eval()
    with torch.no_grad():
        boxes, count = net(torch.rand(1, 3, 64, 64, 2))
    assert boxes.shape == (1, 3 * 2 * 2, 7, 2) and count.shape == (1, 12)  # input, 9, head 2
    net.export_hdf5(str(tmp_path / "yolo_kp.net"))
    with h5py.File(tmp_path / "yolo_kp.net") as f:
        layers = f["layer"]
        assert len(layers) == 11  # input, nine conv blocks, the head
        types = [layers[str(i)]["type"][0].decode() for i in range(11)]
        assert types == ["input"] + ["conv"] * 10
        head = layers["10"]
        assert head["shape"][()].tolist() == [21, 2, 2]  # 3 anchors × (5 + 2 classes)
        assert head["weight"].shape == (21, 512, 1, 1)
        assert bool(head["neuron/sigma_output"][()])
