"""Shared pieces of the golden-file generators (run with Debian's python3-torch).

- save_safetensors(): writes the safetensors format that scratchnet reads.
- Rng: a bit-exact port of scratchnet's Rng (include/scratchnet/rng.h), so large weights can
  be regenerated from a seed on both sides instead of being stored.
"""
import json
import struct

import numpy as np
import torch

MASK = (1 << 64) - 1


def save_safetensors(path, tensors, metadata=None):
    """tensors: name -> torch tensor or numpy array (stored as F32, names sorted)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        a = np.asarray(t, dtype="<f4")
        a = np.ascontiguousarray(a).reshape(a.shape)  # keeps 0-d tensors 0-d
        data = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {k: v if isinstance(v, str) else json.dumps(v)
                                  for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


class Rng:
    """xoshiro256** seeded by splitmix64, exactly as scratchnet::Rng."""

    def __init__(self, seed=0):
        x = seed & MASK
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            self.s.append(z ^ (z >> 31))

    def next_u64(self):
        s = self.s
        result = (_rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def uniform(self, low=0.0, high=1.0):
        """float32 in [low, high), rounded exactly as the C++ float arithmetic."""
        u = np.float32(self.next_u64() >> 40) * np.float32(2.0 ** -24)
        low, high = np.float32(low), np.float32(high)
        return np.float32(low + np.float32(high - low) * u)

    def uniform_tensor(self, shape, low=-1.0, high=1.0):
        n = int(np.prod(shape)) if len(shape) else 1
        vals = np.empty(n, dtype=np.float32)
        for i in range(n):
            vals[i] = self.uniform(low, high)
        return torch.from_numpy(vals.reshape(shape))
