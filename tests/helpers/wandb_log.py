"""Read an offline W&B run file (`run-<id>.wandb`) back into protobuf records, so a test can check what was
logged without a server. The file is a 7-byte header, then LevelDB-style log records in 32 KiB blocks:
crc (4 bytes), length (2, little-endian), type (1: full, 2: first, 3: middle, 4: last), payload."""
from pathlib import Path

BLOCK, HEADER, RECORD_HEADER = 32768, 7, 7


def records(path: Path):
    from wandb.proto import wandb_internal_pb2

    data, pos, pending = Path(path).read_bytes(), HEADER, b""
    while pos + RECORD_HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < RECORD_HEADER:  # the rest of a block too short for a record header is padding
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        pending += data[pos + RECORD_HEADER:pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""
