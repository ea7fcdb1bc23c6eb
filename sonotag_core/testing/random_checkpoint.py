"""Build an OpenFLAM checkpoint with random weights in the Hugging Face cache layout.

The real weights can't be downloaded everywhere (CI, air-gapped machines), yet the code
users run must be tested for real. This writes exactly what ``OpenFLAM("v1-base")`` and
our loader look up with ``HF_HUB_OFFLINE=1``::

    models--roberta-base/{refs/main, snapshots/<rev>/{config.json, model.safetensors,
                          vocab.json, merges.txt, ...}, blobs/<sha256>}
    models--kechenadobe--OpenFLAM/{refs/main, snapshots/<rev>/open_flam_oct17.pth, blobs/...}

The audio branch is always the real HTSAT-base. The text branch keeps hidden size 768
(OpenFLAM's text projection needs it); tests may make it shallow and narrow-vocabulary
for speed, the benchmark builds it at roberta-base's full size. Random weights: the
numbers mean nothing, the shapes and code paths are the real ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sonotag_core.inference.model import CHECKPOINT_FILE, OPENFLAM_REPO, TEXT_MODEL

# Words the test tokenizer is trained on: label-like phrases so tokens are realistic.
_CORPUS = """dog barking siren applause speech music male female voice singing guitar piano
drum car engine horn train airplane helicopter rain thunder wind water splash footsteps door
knock glass breaking bird chirping cat meowing baby crying laughter cough sneeze clapping
typing keyboard phone ringing alarm clock bell church gunshot explosion fireworks crowd cheering
vacuum cleaner blender microwave washing machine toilet flush shower frying sizzling kettle
whistle chainsaw hammer drill saw motorcycle truck bus ambulance police fire engine dog bark
silence noise hum buzz beep click tone sine wave white pink static speech in the background"""


@dataclass(frozen=True)
class RandomCheckpoint:
    """Where the generated cache lives and what it holds."""

    cache_dir: Path
    checkpoint_path: Path
    text_layers: int
    vocab_size: int


def _revision(files: dict[str, Path]) -> str:
    h = hashlib.sha1()
    for name in sorted(files):
        h.update(name.encode())
        h.update(_sha256(files[name]).encode())
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_hub_snapshot(cache_dir: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """Place ``files`` into ``cache_dir`` as the hub cache would (blobs + snapshot symlinks)."""
    repo_dir = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    rev = _revision(files)
    snap = repo_dir / "snapshots" / rev
    blobs = repo_dir / "blobs"
    snap.mkdir(parents=True, exist_ok=True)
    blobs.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        blob = blobs / _sha256(src)
        if not blob.exists():
            shutil.copyfile(src, blob)
        link = snap / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(rev)
    return snap


def _write_text_model(
    out: Path, *, layers: int, vocab_size: int, intermediate: int, seed: int
) -> None:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel

    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(
        [_CORPUS] * 4,
        vocab_size=min(vocab_size, 1000),
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    tok.save_model(str(out))
    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=768,
        num_hidden_layers=layers,
        num_attention_heads=12,
        intermediate_size=intermediate,
        max_position_embeddings=514,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    RobertaModel(config).save_pretrained(str(out), safe_serialization=True)
    (out / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))


def build_random_checkpoint(
    cache_dir: Path,
    *,
    text_layers: int = 2,
    vocab_size: int = 1000,
    text_intermediate: int = 1024,
    seed: int = 0,
) -> RandomCheckpoint:
    """Write a random-weight OpenFLAM v1-base (+ text encoder) into ``cache_dir``.

    Needs ``HF_HUB_OFFLINE=1`` in the environment before huggingface_hub is imported, so
    that building the model resolves roberta-base from ``cache_dir`` and nothing else.
    Full roberta-base size: ``text_layers=12, vocab_size=50265, text_intermediate=3072``.
    """
    import torch

    from sonotag_core.inference.model import build_flam

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        text_dir = Path(tmp) / "text"
        text_dir.mkdir()
        _write_text_model(
            text_dir,
            layers=text_layers,
            vocab_size=vocab_size,
            intermediate=text_intermediate,
            seed=seed,
        )
        write_hub_snapshot(cache_dir, TEXT_MODEL, {p.name: p for p in text_dir.iterdir()})
        torch.manual_seed(seed + 1)
        flam = build_flam(str(cache_dir))
        ckpt = Path(tmp) / CHECKPOINT_FILE
        torch.save(flam.state_dict(), ckpt)
        del flam
        snap = write_hub_snapshot(cache_dir, OPENFLAM_REPO, {CHECKPOINT_FILE: ckpt})
    return RandomCheckpoint(cache_dir, snap / CHECKPOINT_FILE, text_layers, vocab_size)
