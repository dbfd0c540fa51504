"""Per-class accuracy and the confusion matrix behind ``fw run --report``."""

from dataclasses import dataclass

import numpy as np


@dataclass
class ClassReport:
    """``confusion[i, j]``: how many examples of true class i were predicted as class j."""

    confusion: np.ndarray
    class_names: list[str]

    @classmethod
    def from_labels(cls, true, predicted, class_names):
        k = len(class_names)
        true = true.argmax(axis=1) if true.ndim == 2 else true
        confusion = np.bincount(true.astype(np.int64) * k + predicted, minlength=k * k).reshape(k, k)
        return cls(confusion, list(class_names))

    @property
    def totals(self):
        return self.confusion.sum(axis=1)

    @property
    def correct(self):
        return np.diag(self.confusion)

    def to_dict(self) -> dict:
        per_class = [
            {
                "label": i,
                "name": name,
                "correct": int(c),
                "total": int(n),
                "accuracy": float(c / n) if n else None,
            }
            for i, (name, c, n) in enumerate(zip(self.class_names, self.correct, self.totals))
        ]
        return {"class_names": self.class_names, "per_class": per_class, "confusion_matrix": self.confusion.tolist()}

    def to_text(self) -> str:
        names = self.class_names
        k = len(names)
        label_w = max(len(str(k - 1)), len("label"))
        name_w = max(map(len, names), default=0)
        name_w = max(name_w, len("class"))
        digits = len(str(int(self.totals.max(initial=0))))
        ok_w, n_w = max(digits, len("correct")), max(digits, len("total"))
        lines = [
            "Per class:",
            f"  {'label':>{label_w}}  {'class':<{name_w}}  accuracy  {'correct':>{ok_w}}  {'total':>{n_w}}",
        ]
        for i, (name, c, n) in enumerate(zip(names, self.correct, self.totals)):
            acc = f"{c / n:.4f}" if n else "-"
            lines.append(f"  {i:>{label_w}}  {name:<{name_w}}  {acc:>8}  {c:>{ok_w}}  {n:>{n_w}}")
        cell = max(len(str(int(self.confusion.max(initial=0)))), len(str(k - 1)))
        lead = f"  {'label':>{label_w}}  {'class':<{name_w}}"
        lines += ["", "Confusion matrix (rows: true class, columns: predicted label):"]
        lines.append(lead + "".join(f"  {j:>{cell}}" for j in range(k)))
        for i, name in enumerate(names):
            row = "".join(f"  {v:>{cell}}" for v in self.confusion[i])
            lines.append(f"  {i:>{label_w}}  {name:<{name_w}}{row}")
        return "\n".join(lines)
