"""gradcam_vs_torch.py: the PyTorch side of bench/gradcam.sh. Runs the
grad-cam package's GradCAM (1.5.7) on the first N images of a pack with the
same weights (.pth), layer, target, batch and threads as fd-gradcam, and
prints "torch SECONDS IMAGES" for the GradCAM calls (forward, backward, CAM,
cv2 upsampling and normalisation; the images are normalised beforehand).
Usage: gradcam_vs_torch.py PACK PTH ARCH LAYER N BATCH THREADS"""
import sys
import time

import numpy as np
import torch
import torchvision
from safetensors.numpy import load_file
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from twins import SimpleCNN  # noqa: E402

pack, pth, arch, layer, n, batch, threads = sys.argv[1:8]
n, batch, threads = int(n), int(batch), int(threads)
torch.set_num_threads(threads)
m = SimpleCNN(1) if arch == "simplecnn" else getattr(torchvision.models, arch)(num_classes=1)
m.load_state_dict(torch.load(pth))
img = load_file(pack)["images"][:n]
mean = np.array([0.485, 0.456, 0.406], np.float32)
std = np.array([0.229, 0.224, 0.225], np.float32)
x = torch.from_numpy(np.ascontiguousarray(((img.astype(np.float32) / np.float32(255) - mean) / std).transpose(0, 3, 1, 2)))
cam = GradCAM(model=m, target_layers=[dict(m.named_modules())[layer]])
t = time.perf_counter()
for i in range(0, n, batch):
    xb = x[i:i + batch]
    cam(input_tensor=xb, targets=[ClassifierOutputTarget(0)] * len(xb))
print("torch %.3f %d" % (time.perf_counter() - t, n))
