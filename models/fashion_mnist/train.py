#!/usr/bin/env python3
"""Train the bundled example model: a ResNet-20-style CNN on Fashion-MNIST.

Reproducible (fixed seeds; results are bit-identical only for the same torch
version and --threads value). Produces, in --out-dir (default: this folder):

  resnet20_fmnist.onnx  opset 17, ir_version 8, BatchNorm folded into Conv.
                        input  "input"  float32 [batch, 1, 28, 28], pixels in [0, 1]
                        output "logits" float32 [batch, 10]
                        (mean/std normalization is done inside the model)
  test_data.npz         the Fashion-MNIST test set: images uint8 [N, 28, 28],
                        labels uint8 [N]
  model_card.json       accuracy, training time, versions, sizes

Data comes from the Debian package ``dataset-fashion-mnist``
(/usr/share/datasets/fashion-mnist/); no download, no torchvision.

Usage:  python models/fashion_mnist/train.py [--epochs 4] [--threads 2] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"
DATA_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
ONNX_NAME = "resnet20_fmnist.onnx"
NPZ_NAME = "test_data.npz"
CARD_NAME = "model_card.json"
CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
# Per-pixel statistics of the Fashion-MNIST training set (pixels in [0, 1]).
MEAN = 0.2860
STD = 0.3530
OPSET = 17
IR_VERSION = 8
NPZ_MAX_BYTES = 5 * 1024 * 1024
SEED = 0


# --------------------------------------------------------------------------- data
def read_idx(path: str) -> np.ndarray:
    """Read a gzip-compressed IDX file (the MNIST format) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    arr = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims}, got {arr.size} bytes")
    return arr.reshape(dims)


def load_fashion_mnist(data_dir: str):
    paths = {k: os.path.join(data_dir, v) for k, v in DATA_FILES.items()}
    missing = [p for p in paths.values() if not os.path.isfile(p)]
    if missing:
        sys.exit(
            f"error: Fashion-MNIST not found ({missing[0]} is missing); "
            "install it with: apt-get install dataset-fashion-mnist"
        )
    out = {k: read_idx(p) for k, p in paths.items()}
    assert out["train_images"].shape == (60000, 28, 28), out["train_images"].shape
    assert out["test_images"].shape == (10000, 28, 28), out["test_images"].shape
    return out


# -------------------------------------------------------------------------- model
def build_model():
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + self.shortcut(x))

    class ResNet20(nn.Module):
        """ResNet-20 (He et al. 2016, CIFAR variant) for 1x28x28 inputs."""

        def __init__(self, num_classes: int = 10, widths=(16, 32, 64), blocks: int = 3):
            super().__init__()
            self.register_buffer("mean", torch.tensor(MEAN).reshape(1, 1, 1, 1))
            self.register_buffer("std", torch.tensor(STD).reshape(1, 1, 1, 1))
            self.conv1 = nn.Conv2d(1, widths[0], 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.relu = nn.ReLU(inplace=True)
            layers, cin = [], widths[0]
            for i, w in enumerate(widths):
                stage = []
                for b in range(blocks):
                    stride = 2 if (i > 0 and b == 0) else 1
                    stage.append(BasicBlock(cin, w, stride))
                    cin = w
                layers.append(nn.Sequential(*stage))
            self.layer1, self.layer2, self.layer3 = layers
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(widths[-1], num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            # Zero-init the last BN of each residual branch (helps short schedules).
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

        def forward(self, x):
            x = (x - self.mean) / self.std
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            x = torch.flatten(self.pool(x), 1)
            return self.fc(x)

    return ResNet20()


# ----------------------------------------------------------------------- training
def augment(x, gen):
    """Random crop (zero padding 2) + random horizontal flip of a [B,1,28,28] batch."""
    import torch

    b = x.shape[0]
    pad = 2
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    ar = torch.arange(28)
    rows = (oy[:, None] + ar)[:, :, None]  # [B,28,1]
    cols = ox[:, None] + ar  # [B,28]
    flip = torch.rand(b, generator=gen) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, :]  # [B,1,28]
    out = xp[torch.arange(b)[:, None, None], 0, rows, cols]  # [B,28,28]
    return out.unsqueeze(1).contiguous()


def evaluate(model, images, labels, batch_size=500):
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            logits = model(images[i: i + batch_size])
            correct += (logits.argmax(1) == labels[i: i + batch_size]).sum().item()
    return correct / len(images)


def train(args, data):
    import torch
    from torch import nn

    x_train = torch.from_numpy(data["train_images"].astype(np.float32) / 255.0).unsqueeze(1)
    y_train = torch.from_numpy(data["train_labels"].astype(np.int64))
    x_test = torch.from_numpy(data["test_images"].astype(np.float32) / 255.0).unsqueeze(1)
    y_test = torch.from_numpy(data["test_labels"].astype(np.int64))

    # channels_last is ~20% faster for these small convolutions on CPU (oneDNN).
    cl = torch.channels_last
    model = build_model().to(memory_format=cl)
    x_test = x_test.contiguous(memory_format=cl)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: ResNet-20, {n_params:,} trainable parameters", flush=True)

    n = len(x_train)
    steps_per_epoch = (n + args.batch_size - 1) // args.batch_size
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": args.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, momentum=0.9, nesterov=True,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch,
        pct_start=0.25, div_factor=10.0, final_div_factor=100.0,
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    gen = torch.Generator().manual_seed(SEED)

    history = []
    t_start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        for step in range(steps_per_epoch):
            idx = perm[step * args.batch_size: (step + 1) * args.batch_size]
            xb = augment(x_train[idx], gen).contiguous(memory_format=cl)
            yb = y_train[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(idx)
            if args.log_every and (step + 1) % args.log_every == 0:
                print(f"  epoch {epoch} step {step + 1}/{steps_per_epoch} "
                      f"loss {loss_sum / seen:.4f} ({time.perf_counter() - t0:.0f}s)", flush=True)
        train_time = time.perf_counter() - t0
        test_acc = evaluate(model, x_test, y_test)
        rec = {
            "epoch": epoch, "train_loss": round(loss_sum / seen, 4),
            "train_acc": round(correct / seen, 4), "test_acc": round(test_acc, 4),
            "seconds": round(train_time, 1),
        }
        history.append(rec)
        print(f"epoch {epoch}/{args.epochs}: train loss {rec['train_loss']:.4f} "
              f"train acc {rec['train_acc']:.4f}  test acc {test_acc:.4f}  "
              f"({train_time:.0f}s, lr {sched.get_last_lr()[0]:.4g})", flush=True)
    total_time = time.perf_counter() - t_start
    model = model.to(memory_format=torch.contiguous_format).eval()
    return model, history, total_time, n_params, (x_test.contiguous(), y_test)


# ------------------------------------------------------------------------- export
def export_onnx(model, args):
    """Export with the TorchScript exporter (folds Conv+BN); return an onnx.ModelProto."""
    import io

    import onnx
    import torch

    model.eval()
    dummy = torch.rand(2, 1, 28, 28)
    buf = io.BytesIO()
    torch.onnx.export(
        model, (dummy,), buf,
        dynamo=False,
        export_params=True,
        opset_version=OPSET,
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    proto = onnx.load_from_string(buf.getvalue())
    bn = [n.name for n in proto.graph.node if n.op_type == "BatchNormalization"]
    if bn:
        raise RuntimeError(f"BatchNormalization was not folded: {bn}")
    rename_initializers(proto)
    proto.ir_version = IR_VERSION
    return proto


def rename_initializers(proto):
    """Give folded weights readable names (the exporter calls them onnx::Conv_123).

    A node named /layer1/layer1.0/conv1/Conv (scope of module layer1.0.conv1)
    gets weight "layer1.0.conv1.weight" and bias "layer1.0.conv1.bias"; these
    are the conv weights with the following BatchNorm folded in.
    """
    inits = {i.name for i in proto.graph.initializer}
    mapping = {}
    for node in proto.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        path = []
        for part in [p for p in node.name.split("/") if p][:-1]:  # drop the op part
            # children of a Sequential appear as "<seq>.<i>" right after "<seq>"
            if path and part.startswith(path[-1] + "."):
                path = path[:-1] + part.split(".")
            else:
                path = path + [part]
        if not path:
            continue
        for inp, suffix in zip(node.input[1:], ("weight", "bias")):
            if inp in inits and inp.startswith("onnx::"):
                mapping[inp] = ".".join(path) + "." + suffix
    new_names = set(mapping.values())
    if len(new_names) != len(mapping) or new_names & (inits - set(mapping)):
        print("warning: initializer renaming skipped (name clash)")
        return
    for init in proto.graph.initializer:
        init.name = mapping.get(init.name, init.name)
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]


def ort_session(proto):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def ort_accuracy(sess, images_u8, labels, batch_size=1000):
    correct = 0
    for i in range(0, len(images_u8), batch_size):
        x = (images_u8[i: i + batch_size].astype(np.float32) / 255.0)[:, None]
        logits = sess.run(["logits"], {"input": x})[0]
        correct += int((logits.argmax(1) == labels[i: i + batch_size]).sum())
    return correct / len(images_u8)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--out-dir", default=HERE, help="output folder (default: this script's folder)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="torch CPU threads (default: all cores)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.2, help="peak learning rate (OneCycle)")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--train-limit", type=int, default=0,
                   help="use only the first N training images (smoke tests; 0: all)")
    p.add_argument("--log-every", type=int, default=100, help="steps between progress lines (0: off)")
    args = p.parse_args(argv)

    data = load_fashion_mnist(args.data_dir)  # exits with an apt-get hint if missing
    if args.train_limit:
        data["train_images"] = data["train_images"][: args.train_limit]
        data["train_labels"] = data["train_labels"][: args.train_limit]

    import onnx
    import onnxruntime
    import torch

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out_dir, exist_ok=True)
    print(f"torch {torch.__version__}, {args.threads} threads; onnx {onnx.__version__}, "
          f"onnxruntime {onnxruntime.__version__}", flush=True)

    model, history, train_time, n_params, (x_test, y_test) = train(args, data)
    torch_acc = history[-1]["test_acc"] if history else evaluate(model, x_test, y_test)
    print(f"training done in {train_time:.0f}s (incl. per-epoch evaluation); "
          f"torch test accuracy {torch_acc:.4f}", flush=True)

    # ---- export + check against torch
    proto = export_onnx(model, args)
    sess = ort_session(proto)
    x = x_test[:256]
    with torch.no_grad():
        ref = model(x).numpy()
    got = sess.run(["logits"], {"input": x.numpy()})[0]
    max_diff = float(np.abs(ref - got).max())
    same_argmax = bool((ref.argmax(1) == got.argmax(1)).all())
    print(f"onnxruntime vs torch on 256 test images: max |logit diff| {max_diff:.2e}, "
          f"identical argmax: {same_argmax}", flush=True)
    if not (max_diff < 1e-4 and same_argmax):
        sys.exit("error: ONNX model does not match torch")

    test_images, test_labels = data["test_images"], data["test_labels"]
    onnx_acc = ort_accuracy(sess, test_images, test_labels)
    print(f"ONNX (onnxruntime) accuracy on {len(test_images)} test images: {onnx_acc:.4f}", flush=True)

    meta = {"source": "models/fashion_mnist/train.py", "dataset": "Fashion-MNIST",
            "test_accuracy": f"{onnx_acc:.4f}"}
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(proto, full_check=True)
    onnx_path = os.path.join(args.out_dir, ONNX_NAME)
    onnx.save(proto, onnx_path)

    # ---- test data
    npz_path = os.path.join(args.out_dir, NPZ_NAME)
    n_keep = len(test_images)
    np.savez_compressed(npz_path, images=test_images.astype(np.uint8),
                        labels=test_labels.astype(np.uint8))
    if os.path.getsize(npz_path) > NPZ_MAX_BYTES:
        n_keep = 5000
        print(f"note: {NPZ_NAME} over {NPZ_MAX_BYTES} bytes; keeping the first {n_keep} images")
        np.savez_compressed(npz_path, images=test_images[:n_keep].astype(np.uint8),
                            labels=test_labels[:n_keep].astype(np.uint8))

    # ---- model card
    card = {
        "model": ONNX_NAME,
        "architecture": "ResNet-20 (3 stages x 3 basic blocks, 16/32/64 channels, "
                        "1x1-conv projection shortcuts, global average pool, linear 10); "
                        "BatchNorm folded into Conv",
        "dataset": "Fashion-MNIST (Debian package dataset-fashion-mnist)",
        "classes": CLASSES,
        "input": {"name": "input", "dtype": "float32", "shape": ["batch", 1, 28, 28],
                  "range": [0.0, 1.0], "normalization_inside_model": {"mean": MEAN, "std": STD}},
        "output": {"name": "logits", "dtype": "float32", "shape": ["batch", 10]},
        "test_accuracy": round(onnx_acc, 4),
        "test_accuracy_torch": round(torch_acc, 4),
        "test_images": len(test_images),
        "onnx_vs_torch_max_abs_logit_diff": max_diff,
        "epochs": args.epochs,
        "history": history,
        "training_seconds": round(sum(h["seconds"] for h in history), 1),
        "training_wall_seconds_incl_eval": round(train_time, 1),
        "threads": args.threads,
        "recipe": {"optimizer": "SGD nesterov momentum 0.9", "lr_schedule": "OneCycle",
                   "peak_lr": args.lr, "weight_decay": args.weight_decay,
                   "batch_size": args.batch_size, "label_smoothing": args.label_smoothing,
                   "augmentation": "random crop (zero pad 2) + horizontal flip", "seed": SEED},
        "parameters": n_params,
        "onnx_initializer_values": int(sum(np.prod(i.dims) for i in proto.graph.initializer)),
        "onnx_initializers": len(proto.graph.initializer),
        "opset": OPSET,
        "ir_version": proto.ir_version,
        "onnx_file_bytes": os.path.getsize(onnx_path),
        "onnx_sha256": file_sha256(onnx_path),
        "test_data": NPZ_NAME,
        "test_data_images": n_keep,
        "test_data_bytes": os.path.getsize(npz_path),
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "onnxruntime_version": onnxruntime.__version__,
    }
    card_path = os.path.join(args.out_dir, CARD_NAME)
    with open(card_path, "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    print(f"wrote {onnx_path} ({card['onnx_file_bytes']:,} bytes), "
          f"{npz_path} ({card['test_data_bytes']:,} bytes), {card_path}", flush=True)


if __name__ == "__main__":
    main()
