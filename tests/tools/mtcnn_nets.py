"""mtcnn_nets.py OUT.safetensors: seeded inputs and facenet-pytorch 2.5.3's
PNet, RNet, ONet outputs on them (the pretrained weights of the wheel), plus
an area resample of a random uint8 image as detect_face's imresample does it,
for tests/unit/t_mtcnn.c. Run under .venv/bin/python (tests/tools/facecrop.t)."""
import os
import sys

import torch
from torch.nn.functional import interpolate

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ref"))
import stio  # noqa: E402
from facenet_pytorch.models.mtcnn import PNet, RNet, ONet  # noqa: E402

torch.manual_seed(0)
torch.set_num_threads(1)
out = {}
with torch.no_grad():
    # images in the normalised range, as detect_face feeds them
    x = (torch.randint(0, 256, (2, 3, 37, 51)).float() - 127.5) * 0.0078125
    reg, prob = PNet().eval()(x)
    out.update(pnet_x=x, pnet_reg=reg, pnet_prob=prob)
    x = (torch.randint(0, 256, (5, 3, 24, 24)).float() - 127.5) * 0.0078125
    reg, prob = RNet().eval()(x)
    out.update(rnet_x=x, rnet_reg=reg, rnet_prob=prob)
    x = (torch.randint(0, 256, (3, 3, 48, 48)).float() - 127.5) * 0.0078125
    reg, lm, prob = ONet().eval()(x)
    out.update(onet_x=x, onet_reg=reg, onet_lm=lm, onet_prob=prob)
    # imresample: interpolate(mode='area') on a uint8-valued float image,
    # down (crop to 24), up (to 48) and to a pyramid size, then normalised
    img = torch.randint(0, 256, (1, 3, 61, 83), dtype=torch.uint8)
    out["img"] = img[0].permute(1, 2, 0).contiguous()
    for name, size in (("area24", (24, 24)), ("area48", (48, 48)), ("area37x51", (37, 51))):
        r = interpolate(img.float(), size=size, mode="area")
        out[name] = (r - 127.5) * 0.0078125
stio.save(sys.argv[1], {k: v.contiguous() for k, v in out.items()}, {"source": "facenet-pytorch 2.5.3"})
