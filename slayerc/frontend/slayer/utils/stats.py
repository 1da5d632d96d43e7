"""Learning statistics (``slayer.utils.LearningStats``): loss/accuracy bookkeeping per epoch.

Same API as lava-dl's (``LearningStats(loss_str=, loss_unit=, accuracy_str=, accuracy_unit=)``
names the quantities in prints, plots and file names), without its failures: an epoch with no
samples is logged as None instead of raising in ``update()``, plotting imports matplotlib only
when asked, and :meth:`LearningStats.load` reads back what :meth:`LearningStats.save` wrote
(lava-dl's ``load`` does nothing).  As in lava-dl, the accuracy is ``correct/num_samples``
(0.0 when nothing was classified correctly, also in regression runs).
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
        self.loss_str = "loss"
        self.loss_unit = ""
        self.accuracy_str = "accuracy"
        self.accuracy_unit = ""

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
        """Accuracy of the epoch so far (``correct/num_samples``), or None without samples."""
        return self.correct_samples / self.num_samples if self.num_samples > 0 else None

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
        # lava-dl's text, character for character (its spacing included), in every case it
        # prints; the cases where lava-dl's str() fails print the same fields the same way
        if self.loss is None:
            return ""
        loss = f"{self.loss_str} = {self.loss:11.5f}"
        if self.min_loss is not None:
            loss += f" (min = {self.min_loss:11.5f})"
        if self.accuracy is None:
            return loss
        acc = f"{self.accuracy_str} = {self.accuracy:7.5f} "
        if self.max_accuracy is not None:
            acc += f"(max = {self.max_accuracy:7.5f}) "
        if self.min_loss is None:
            return f"{loss}  {self.loss_unit}{' ' * 24}{acc}{self.accuracy_unit}"
        return f"{loss} {self.loss_unit}{' ' * 4}{acc}{self.accuracy_unit}"

    def _set_logs(self, loss_log, accuracy_log):
        """Replace the logs and recompute the best values from them."""
        self.loss_log, self.accuracy_log = list(loss_log), list(accuracy_log)
        losses = [v for v in self.loss_log if v is not None]
        accuracies = [v for v in self.accuracy_log if v is not None]
        self.min_loss = min(losses) if losses else None
        self.max_accuracy = max(accuracies) if accuracies else None


class LearningStats:
    """Training, validation and testing :class:`LearningStat` with printing, plots and files."""

    def __init__(self, loss_str="loss", loss_unit="", accuracy_str="accuracy",
                 accuracy_unit=""):
        self.lines_printed = 0
        self.training = LearningStat()
        self.testing = LearningStat()
        self.validation = LearningStat()
        for _, stat in self._phases():
            stat.loss_str, stat.loss_unit = loss_str, loss_unit
            stat.accuracy_str, stat.accuracy_unit = accuracy_str, accuracy_unit

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
            what, unit = ((self.training.loss_str, self.training.loss_unit) if log else
                          (self.training.accuracy_str, self.training.accuracy_unit))
            plt.xlabel("Epoch")
            plt.ylabel(f"{what.capitalize()} {unit}".strip())
            plt.legend()
            if path is not None:
                plt.savefig(path + ("loss.png" if log else "accuracy.png"))

    def _files(self, path):
        return ((path + self.training.loss_str + ".txt", "loss_log", "valid_loss_log"),
                (path + self.testing.accuracy_str + ".txt", "accuracy_log",
                 "valid_accuracy_log"))

    def save(self, path=""):
        """Write ``<loss_str>.txt`` and ``<accuracy_str>.txt`` under the prefix ``path`` (one row
        per epoch, one column per phase that logged a value, as lava-dl)."""
        for name, attr, valid in self._files(path):
            phases = [(n, getattr(s, attr)) for n, s in self._phases() if getattr(s, valid)]
            if not phases:
                continue
            with open(name, "w") as f:
                f.write("#" + "".join(f" {n:12s}" for n, _ in phases) + "\r\n")
                for row in zip(*(log for _, log in phases)):
                    f.write("".join("" if v is None else f"{v:12.6f} " for v in row) + "\r\n")

    def load(self, path=""):
        """Read the logs written by :meth:`save` under the prefix ``path`` (missing files are
        skipped) and recompute the best loss and accuracy, e.g. to resume a training run.

        A row with fewer values than phases (an epoch some phase did not log) fills the first
        columns; the rest read as None.
        """
        stats = {"Train": self.training, "Valid": self.validation, "Test": self.testing}
        for name, attr, _ in self._files(path):
            try:
                with open(name) as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                continue
            phases = lines[0].lstrip("#").split() if lines else []
            columns = {p: [] for p in phases}
            for line in lines[1:]:
                values = [float(v) for v in line.split()]
                for i, p in enumerate(phases):
                    columns[p].append(values[i] if i < len(values) else None)
            for p, log in columns.items():
                stat = stats[p]
                other = "accuracy_log" if attr == "loss_log" else "loss_log"
                logs = {attr: log, other: getattr(stat, other)}
                stat._set_logs(logs["loss_log"], logs["accuracy_log"])
