"""Distillation from the float model: the QAT student learns the float teacher's logits.

`DistillationNet` runs both and returns [student logits | teacher logits] (one tensor, so MindSpore's
train cells, mixed precision and data parallelism wrap it unchanged); `DistillationLoss` splits them.
"""

from __future__ import annotations

from mindspore import nn, ops
from mindspore import dtype as mstype

DISTILL_LOSSES = ("mse", "kl")


class DistillationNet(nn.Cell):
    def __init__(self, student: nn.Cell, teacher: nn.Cell):
        super().__init__()
        names = {id(p): p.name for p in student.get_parameters()}
        self.student, self.teacher = student, teacher
        for param in student.get_parameters():  # the student's names are the checkpoint's
            param.name = names[id(param)]
        for name, param in teacher.parameters_and_names():
            param.name, param.requires_grad = f"teacher.{name}", False

    def construct(self, x):
        student = self.student(x).astype(mstype.float32)
        teacher = ops.stop_gradient(self.teacher(x).astype(mstype.float32))
        return ops.concat((student, teacher), 1)


class DistillationLoss(nn.LossBase):
    """`mse` (of the logits: what logits SQNR measures) or `kl` (softened by `temperature`), plus
    `label_weight` x cross-entropy against the labels."""

    def __init__(self, num_classes: int, kind: str = "mse", label_weight: float = 0.0, temperature: float = 1.0):
        super().__init__()
        if kind not in DISTILL_LOSSES:
            raise ValueError(f"distillation loss must be one of {DISTILL_LOSSES}, got {kind!r}")
        self.num_classes, self.mse = num_classes, kind == "mse"
        self.label_weight, self.temperature = label_weight, temperature
        self.cross_entropy = nn.CrossEntropyLoss()

    def construct(self, logits, labels):
        student, teacher = logits[:, :self.num_classes], logits[:, self.num_classes:]
        if self.mse:
            loss = ops.mean((student - teacher) ** 2)
        else:
            t = self.temperature
            target = ops.softmax(teacher / t, axis=1)
            loss = ops.mean(ops.sum(target * (ops.log(target + 1e-12)
                                              - ops.log_softmax(student / t, axis=1)), 1)) * t * t
        if self.label_weight > 0:
            loss = loss + self.label_weight * self.cross_entropy(student, labels)
        return loss
