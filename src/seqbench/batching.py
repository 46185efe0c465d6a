"""torch Datasets over prepared arrays, and the batching that goes with them."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset


class WindowDataset(Dataset):
    """Windows of `lookback` rows ending at each row index in `ends`.

    Every window is a view into the one `features` array: nothing is copied lookback times.
    """

    def __init__(self, features: np.ndarray, target: np.ndarray, ends: np.ndarray, lookback: int):
        self.features = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        self.target = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32))
        self.ends = np.asarray(ends, dtype=np.int64)
        self.lookback = lookback

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i):
        end = int(self.ends[i]) + 1
        return self.features[end - self.lookback : end], self.target[end - 1]

    @classmethod
    def of_split(cls, arrays: dict, meta: dict, split: str) -> WindowDataset:
        """The windows of a prepared forecasting dataset's split."""
        return cls(arrays["features"], arrays["target"], arrays[f"ends_{split}"], meta["lookback"])

    def loader(self, batch_size: int, shuffle: bool, seed: int = 0):
        """Batches for training (shuffled per epoch from (seed, epoch)) or evaluation. No worker
        processes: the runs themselves are already spread over the cores."""
        from torch.utils.data import DataLoader

        sampler = EpochShuffle(len(self), seed) if shuffle else None
        return DataLoader(self, batch_size=batch_size, sampler=sampler)


class RaggedDataset(Dataset):
    """Variable-length sequences stored flat: sequence j is values[offsets[j]:offsets[j+1]]."""

    def __init__(self, values: np.ndarray, offsets: np.ndarray, labels: np.ndarray, index: np.ndarray):
        dtype = np.int64 if np.issubdtype(values.dtype, np.integer) else np.float32
        self.values = torch.from_numpy(np.ascontiguousarray(values, dtype=dtype))
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.index = np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        j = int(self.index[i])
        return self.values[self.offsets[j] : self.offsets[j + 1]], self.labels[j]

    @classmethod
    def of_split(cls, arrays: dict, meta: dict, split: str) -> RaggedDataset:
        """The sequences of a prepared classification dataset's split."""
        return cls(arrays["values"], arrays["offsets"], arrays["labels"], arrays[f"idx_{split}"])

    def loader(self, batch_size: int, shuffle: bool, seed: int = 0):
        """Padded batches: for training, of similar lengths and shuffled per epoch from (seed,
        epoch); for evaluation, in order. No worker processes: the runs themselves are already
        spread over the cores."""
        from torch.utils.data import DataLoader

        if shuffle:
            sampler = BucketBatchSampler(np.diff(self.offsets)[self.index], batch_size, seed)
            return DataLoader(self, batch_sampler=sampler, collate_fn=collate_ragged)
        return DataLoader(self, batch_size=batch_size, collate_fn=collate_ragged)


def collate_ragged(batch):
    """(padded [batch, max_len, ...], lengths [batch], labels [batch]); the model packs them."""
    sequences, labels = zip(*batch)
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    return pad_sequence(sequences, batch_first=True), lengths, torch.stack(labels)


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for one epoch of one run: the shuffle (and dropout) of epoch k depend on (seed, k)
    only, so a run resumed from a checkpoint draws what an uninterrupted one would have."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class EpochShuffle(torch.utils.data.Sampler):
    """A permutation per epoch, from (seed, epoch). Lightning calls `set_epoch` before each epoch."""

    def __init__(self, size: int, seed: int = 0):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


class BucketBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of similar-length sequences, so a batch is not padded to one outlier.

    Each epoch: shuffle, cut into pools of `pool` batches, sort each pool by length, cut it
    into batches, shuffle the batches. Seeded by (seed, epoch), so runs are repeatable and a
    resumed run shuffles as an uninterrupted one would.
    """

    def __init__(self, lengths, batch_size: int, seed: int = 0, pool: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.pool = pool * batch_size
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng(epoch_seed(self.seed, self.epoch))
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.pool):
            chunk = order[start : start + self.pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        for i in rng.permutation(len(batches)):
            yield batches[i].tolist()

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)
