"""Learning statistics (``slayer.utils.LearningStats``): loss/accuracy bookkeeping per epoch.

Same API as lava-dl's, without its failures: an epoch with no samples or no correct samples is
logged (as None / 0.0) instead of raising in ``update()``, and plotting imports matplotlib only
when asked.
"""

from __future__ import annotations

__all__ = ["LearningStat", "LearningStats"]


class LearningStat:
    """Running loss/accuracy of one phase (training, validation or testing).

    Accumulate ``loss_sum``, ``correct_samples`` and ``num_samples`` during an epoch, then call
    :meth:`update` (logs the epoch and tracks the best values) and :meth:`reset`.
    """

    def __init__(self):
        self.loss_sum = 0
        self.correct_samples = 0
        self.num_samples = 0
        self.min_loss = None
        self.max_accuracy = None
        self.loss_log = []
        self.accuracy_log = []
        self.best_loss = False
        self.best_accuracy = False

    def reset(self):
        """Clear the running sums (keeps the logs and best values)."""
        self.loss_sum = 0
        self.correct_samples = 0
        self.num_samples = 0

    @property
    def loss(self):
        """Mean loss of the epoch so far, or None without samples."""
        return self.loss_sum / self.num_samples if self.num_samples > 0 else None

    @property
    def accuracy(self):
        """Accuracy of the epoch so far, or None when no correct counts were recorded."""
        if self.num_samples > 0 and self.correct_samples > 0:
            return self.correct_samples / self.num_samples
        return None

    @property
    def valid_loss_log(self):
        """True when some epoch logged a loss."""
        return any(v is not None for v in self.loss_log)

    @property
    def valid_accuracy_log(self):
        """True when some epoch logged an accuracy."""
        return any(v is not None for v in self.accuracy_log)

    def update(self):
        """Log the epoch's loss and accuracy and update the best values."""
        loss, accuracy = self.loss, self.accuracy
        self.loss_log.append(loss)
        self.best_loss = loss is not None and (self.min_loss is None or loss < self.min_loss)
        if self.best_loss:
            self.min_loss = loss
        self.accuracy_log.append(accuracy)
        self.best_accuracy = accuracy is not None and (
            self.max_accuracy is None or accuracy > self.max_accuracy
        )
        if self.best_accuracy:
            self.max_accuracy = accuracy

    def __str__(self):
        if self.loss is None:
            return ""
        text = f"loss = {self.loss:11.5f}"
        if self.min_loss is not None:
            text += f" (min = {self.min_loss:11.5f})"
        if self.accuracy is not None:
            text += f"    accuracy = {self.accuracy:7.5f}"
            if self.max_accuracy is not None:
                text += f" (max = {self.max_accuracy:7.5f})"
        return text


class LearningStats:
    """Training, validation and testing :class:`LearningStat` with printing, plots and files."""

    def __init__(self):
        self.lines_printed = 0
        self.training = LearningStat()
        self.testing = LearningStat()
        self.validation = LearningStat()

    def _phases(self):
        return (("Train", self.training), ("Valid", self.validation), ("Test", self.testing))

    def update(self):
        """Log and reset every phase (call at the end of an epoch)."""
        for _, stat in self._phases():
            stat.update()
            stat.reset()

    def new_line(self):
        """Start the next :meth:`print` on a new line instead of overwriting."""
        self.lines_printed = 0

    def __str__(self):
        parts = [f"Train {self.training}"]
        for name, stat in self._phases()[1:]:
            text = str(stat)
            if text:
                parts.append(f"{name:5s} {text}")
        return " | ".join(parts)

    def print(self, epoch, iter=None, time_elapsed=None, header=None, dataloader=None):
        """Print the stats in place (ANSI cursor movement), as lava-dl."""
        print(f"\033[{self.lines_printed}A")
        self.lines_printed = 1
        line = f"Epoch {epoch:4d}"
        if iter is not None and dataloader is not None:
            total, percent = len(dataloader.dataset), 100.0 * iter / len(dataloader)
            line += f": {iter * dataloader.batch_size}/{total} ({percent:.0f}%)"
        elif iter is not None:
            line += f": i = {iter:5d} "
        if time_elapsed is not None:
            line += f", {time_elapsed * 1000:12.4f} ms elapsed"
        for h in header or []:
            print("\033[2K" + str(h))
            self.lines_printed += 1
        print(line + " " * 8)
        self.lines_printed += 1
        for part in str(self).split(" | "):
            print(part)
            self.lines_printed += 1

    def plot(self, figures=(1, 2), figsize=None, path=None):
        """Plot the loss (log scale) and accuracy curves; save them under ``path`` if given."""
        import matplotlib.pyplot as plt

        for fig, attr, valid, log in ((figures[0], "loss_log", "valid_loss_log", True),
                                      (figures[1], "accuracy_log", "valid_accuracy_log", False)):
            curves = [(n, getattr(s, attr)) for n, s in self._phases() if getattr(s, valid)]
            if not curves:
                continue
            plt.figure(fig, figsize=figsize)
            plt.cla()
            for name, values in curves:
                (plt.semilogy if log else plt.plot)(values, label=name)
            plt.xlabel("Epoch")
            plt.ylabel("Loss" if log else "Accuracy")
            plt.legend()
            if path is not None:
                plt.savefig(path + ("loss.png" if log else "accuracy.png"))

    def save(self, path=""):
        """Write ``loss.txt`` and ``accuracy.txt`` (one row per epoch, one column per phase)."""
        for attr, valid, name in (("loss_log", "valid_loss_log", "loss.txt"),
                                  ("accuracy_log", "valid_accuracy_log", "accuracy.txt")):
            phases = [(n, getattr(s, attr)) for n, s in self._phases() if getattr(s, valid)]
            if not phases:
                continue
            with open(path + name, "w") as f:
                f.write("#" + "".join(f" {n:12s}" for n, _ in phases) + "\r\n")
                for row in zip(*(log for _, log in phases)):
                    f.write("".join("" if v is None else f"{v:12.6f} " for v in row) + "\r\n")
