"""twins.py: PyTorch twins of fd models that torchvision lacks, for the
benchmarks (tests/ref/models.py holds the conformance copy).

SimpleCNN is fd's simplecnn (doc/models.md): four conv3x3(no bias)-BN-ReLU-
maxpool2 stages (32, 64, 128, 256 channels), global average pool, dropout 0.5,
linear head; torchvision's default initialisation."""
import torch
import torch.nn as nn


class SimpleCNN(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        L, c = [], 3
        for o in (32, 64, 128, 256):
            L += [nn.Conv2d(c, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
            c = o
        self.features = nn.Sequential(*L)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
