"""gradcam_cmp.py: fd-gradcam against the grad-cam package's GradCAM
(pytorch-grad-cam 1.5.7, in .venv) on the same torchvision model, weights and
input, for every architecture. Usage: gradcam_cmp.py FD_GRADCAM PACK DIR CASE...
where CASE is arch:layer:target[:K] (layer "-" = fd's default; K outputs,
default 1; target fake, real or a class index). For each case it
makes seeded weights (batchnorm running statistics randomised so eval mode is
not the identity), saves them as DIR/arch.pth, runs fd-gradcam on the pack's
first rows, runs GradCAM on the same images (ToTensor + Normalize(ImageNet) in
float32, as fd's loader) and compares the map at the layer's resolution
(get_cam_image then np.maximum(cam, 0)), the upsampled normalised map GradCAM
returns, and the overlay PNGs (show_cam_on_image(use_rgb=True) of fd's map).
Prints one line per case: "ok|not ok CASE cam E1 heatmap E2 overlay E3 (n=N)"
with E the worst error as a share of the tolerance. The layer map's tolerance
takes 4 x torch's own float32 error (the same GradCAM in float64); a case
also fails unless its map 1% off fails that tolerance (the control)."""
import copy
import os
import subprocess
import sys

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.numpy import load_file
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from twins import SimpleCNN  # noqa: E402  the torch twin of fd's simplecnn

DEFAULT = {"simplecnn": "features", "resnet18": "layer4", "resnet50": "layer4",
           "efficientnet_b0": "features", "mobilenet_v3_small": "features", "convnext_tiny": "features"}
N = 4


class Negated:
    """The 'real' target of a one-logit model: the logit's negation."""

    def __call__(self, out):
        return -out[0] if out.dim() == 1 else -out[:, 0]


def build(arch, k):
    torch.manual_seed(1234)
    m = SimpleCNN(k) if arch == "simplecnn" else getattr(torchvision.models, arch)(num_classes=k)
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
    return m.eval()


def worst(a, r, atol, rtol):
    a = np.asarray(a, np.float64)
    r = np.asarray(r, np.float64)
    if a.shape != r.shape:
        return float("inf"), "shape %s vs %s" % (a.shape, r.shape)
    tol = atol + rtol * np.abs(r)
    share = np.abs(a - r) / tol
    share[np.isnan(share)] = np.inf  # a NaN fails
    i = int(np.argmax(share))
    return float(share.flat[i]), "max |err| %.3g at %s" % (float(np.abs(a - r).flat[i]), np.unravel_index(i, a.shape))


def main():
    exe, pack, out = sys.argv[1:4]
    st = load_file(pack)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    fails = 0
    for case in sys.argv[4:]:
        arch, layer, target, k = (case.split(":") + ["1"])[:4]
        k = int(k)
        layer = DEFAULT[arch] if layer == "-" else layer
        m = build(arch, k)
        pth = os.path.join(out, "%s_%d.pth" % (arch, k))
        if not os.path.exists(pth):
            torch.save(m.state_dict(), pth)
        d = os.path.join(out, case.replace(":", "_"))
        r = subprocess.run([exe, "-q", "--threads", "1", "--model", pth, "--arch", arch, "--pack", pack,
                            "--num-classes", str(k), "--layer", layer, "--target", target, "-n", str(N), "-o", d],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("not ok %s fd-gradcam failed: %s" % (case, r.stderr.strip()))
            fails += 1
            continue
        h = load_file(os.path.join(d, "heatmaps.safetensors"))
        rows = h["row"]
        img = st["images"][rows]                                  # [n,S,S,3] u8
        x = (img.astype(np.float32) / np.float32(255) - mean) / std
        x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        if k == 1:
            tgt = [ClassifierOutputTarget(0) if target == "fake" else Negated()] * len(rows)
        else:
            tgt = [ClassifierOutputTarget({"fake": 1, "real": 0}.get(target) if target in ("fake", "real")
                                          else int(target))] * len(rows)
        cam = GradCAM(model=m, target_layers=[dict(m.named_modules())[layer]])
        heat = cam(input_tensor=x, targets=tgt)
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        low = np.maximum(cam.get_cam_image(x, None, tgt, acts, grads, False), 0)
        # the layer map is a float32 sum over channels of w_c A_c whose terms
        # cancel: its rounding error scales with sum_c |w_c A_c|, not with the sum;
        # and w_c, a mean of gradients that cancel too, carries the rounding of
        # the backward pass: so the tolerance also takes 4 x torch's own float32
        # error, against the same GradCAM run in float64 (per image)
        wts = cam.get_cam_weights(x, None, tgt, acts, grads)
        scale = float(np.abs(wts[:, :, None, None] * acts).sum(1).max())
        m64 = copy.deepcopy(m).double()
        cam64 = GradCAM(model=m64, target_layers=[dict(m64.named_modules())[layer]])
        cam64(input_tensor=x.double(), targets=tgt)
        a64 = cam64.activations_and_grads.activations[0].numpy()
        g64 = cam64.activations_and_grads.gradients[0].numpy()
        low64 = np.maximum(cam64.get_cam_image(x.double(), None, tgt, a64, g64, False), 0)
        err32 = np.abs(low.astype(np.float64) - low64).reshape(len(low), -1).max(1)[:, None, None]
        if not np.isfinite(err32).all():
            err32 = np.full_like(err32, np.nan)  # a NaN in torch's run fails below
        atol = 1e-5 * scale + 4 * err32
        e1, w1 = worst(h["cam"], low, atol, 1e-4)
        # control: fd's layer map 1% off must fail under that tolerance
        ctl = worst(h["cam"] * np.float32(1.01), low, atol, 1e-4)[0]
        # the normalised map in [0, 1]: min-max divides the layer map's error by
        # its range, so its tolerance is the layer map's carried through (twice:
        # the value and the minimum), plus float32 rounding of the resize
        rng = (low.reshape(len(low), -1).max(1) - low.reshape(len(low), -1).min(1))[:, None, None]
        e2, w2 = worst(h["heatmap"], heat, 1e-5 + 2 * atol / np.maximum(rng, 1e-30), 1e-4)
        e3 = 0.0
        for k, row in enumerate(rows):
            ref = show_cam_on_image(img[k].astype(np.float32) / 255, h["heatmap"][k], use_rgb=True)
            got = np.asarray(Image.open(os.path.join(d, "%d.png" % row)).convert("RGB"))
            e3 = max(e3, worst(got, ref, 1, 0)[0])  # one level: float32 rounding at .5 steps
        # a map of zeros (every weighted sum negative: a valid result, compared
        # too) proves little: at least half the images must have a live map
        live = int((heat.reshape(len(rows), -1).max(1) > 0.99).sum())
        ok = e1 <= 1 and e2 <= 1 and e3 <= 1 and len(rows) == N and 2 * live >= N and ctl > 1
        fails += not ok
        print("%s %s cam %.3f (%s; 1e-5 x scale %.3g, torch32 err %.3g; 1%% off: %.3g) heatmap %.3f (%s) overlay %.3f "
              "(n=%d, %d non-zero, %dx%d -> %dx%d)" %
              ("ok" if ok else "not ok", case, e1, w1, 1e-5 * scale, float(err32.max()), ctl, e2, w2, e3, len(rows),
               live, low.shape[1], low.shape[2], heat.shape[1], heat.shape[2]))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
